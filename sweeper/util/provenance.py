"""Where a result came from: the code's git commit (and whether it was dirty), library versions, device."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

LIBRARIES = ("torch", "ray", "optuna", "mlflow", "numpy")


def provenance() -> dict[str, str]:
    """{'git_commit', 'git_dirty', 'version.<lib>', 'device'} as strings ('unknown' where not known)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {**_git(), "device": _device()}
    for lib in LIBRARIES:
        try:
            out[f"version.{lib}"] = version(lib)
        except PackageNotFoundError:
            out[f"version.{lib}"] = "not installed"
    return out


def _git() -> dict[str, str]:
    """The commit of the sweeper checkout. fsmonitor is off: a repository's config must not run programs."""
    here = Path(__file__).resolve().parent
    git = ["git", "-c", "core.fsmonitor=false"]
    try:
        sha = subprocess.run([*git, "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    if sha.returncode != 0:
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": sha.stdout.strip(), "git_dirty": str(bool(dirty.stdout.strip())).lower()}


def _device() -> str:
    from sweeper.util.gpus import gpu_count

    count = gpu_count()
    if count:
        import torch  # gpu_count has imported it

        return f"cuda x{count} ({torch.cuda.get_device_name(0)})"
    return f"cpu x{len(os.sched_getaffinity(0))}"
