"""Which output folders `sweeper data build` may replace: it deletes the old folder, so it must never be
one that holds anything else (`--out .` once emptied the working directory, the input CSV included)."""
from __future__ import annotations

import json
from pathlib import Path

from trm_core.errors import ConfigError

DATASET_FILES = frozenset({"metadata.json", *(f"{split}_{key}.npy" for split in ("train", "test")
                                              for key in ("inputs", "labels", "ratings"))})
"""Every file a build writes; a folder holding anything else is not replaced."""


def _protected(inputs: list[Path]) -> list[tuple[Path, str]]:
    places = [(Path.cwd(), "the working directory"), (Path.home(), "your home folder")]
    places += [(Path(p).expanduser().parent, f"the folder of {p}") for p in inputs]
    return [(p.resolve(), what) for p, what in places]


def check_out_dir(out_dir: str | Path, inputs: list[Path]) -> None:
    """Raise ConfigError (one line) unless `out_dir` may be created or replaced by a build.

    Allowed: a folder that does not exist, an empty folder, or a dataset folder a build wrote (a
    metadata.json with a format_version, and only files a build writes). Refused: `.`, `..`, `~`, `/`,
    the working directory, the home folder, the folder of an input file, and any folder containing one
    of those; a path that is not a folder.
    """
    raw = str(out_dir)
    out = Path(out_dir).expanduser()
    if raw.rstrip("/") in ("", ".", "..", "~"):
        raise ConfigError(f"--out {raw}: refusing to replace this folder; name a new folder for the dataset")
    target = out.resolve()
    for place, what in _protected(inputs):
        if target == place or target in place.parents:
            rel = "is" if target == place else "contains"
            raise ConfigError(f"--out {raw}: {rel} {what}; refusing to replace it, name a new folder for the dataset")
    if not (out.exists() or out.is_symlink()):
        return
    if not out.is_dir():
        raise ConfigError(f"--out {raw}: exists and is not a folder; refusing to replace it")
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return
    try:
        version = json.loads((out / "metadata.json").read_text()).get("format_version")
    except (OSError, ValueError, AttributeError):
        version = None
    if version is None:
        raise ConfigError(f"--out {raw}: exists and is not a dataset built by 'sweeper data build' (no metadata.json "
                          "with a format_version); refusing to replace it: choose a new folder or empty it yourself")
    extra = [n for n in names if n not in DATASET_FILES]
    if extra:
        raise ConfigError(f"--out {raw}: holds {extra[0]!r}, which a build does not write; refusing to replace it: "
                          "move that file out or choose a new folder")
