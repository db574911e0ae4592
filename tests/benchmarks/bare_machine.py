"""Run a benchmark script as it would run on a bare GPU machine: a Python with torch, numpy, numba (and
what they depend on) and nothing else, the repository on PYTHONPATH.

`bare_python(tmp)` makes such a Python: a fresh virtual environment (no pip) whose site-packages holds
links to exactly those distributions of the test's own environment. Anything else (PyYAML, Ray, Optuna,
MLflow, Typer, Rich, pydantic, scipy, tqdm) is really absent there, for the script and for every child
process it starts with sys.executable, and `importlib.util.find_spec` answers None for it, as it would
on the bare machine.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

INSTALLED = ("torch", "numpy", "numba", "llvmlite", "typing_extensions", "sympy", "mpmath", "networkx", "jinja2",
             "markupsafe", "filelock", "fsspec", "setuptools")
"""What `pip install torch numpy numba` brings (their declared dependencies; CUDA wheels add nvidia-*, triton)."""
FORBIDDEN = ("ray", "optuna", "mlflow", "typer", "rich", "pydantic")
"""Never imported by the scripts."""


def bare_python(tmp: Path) -> Path:
    """A Python executable whose site-packages has only INSTALLED (linked, not copied)."""
    root = tmp / "bare_venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    for name in INSTALLED:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        source = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            link = purelib / top
            if top != "__pycache__" and (source / top).exists() and not link.exists():
                link.symlink_to(source / top)
    return root / "bin" / "python"


def run_bare(script: str, args: list[str], tmp: Path, timeout: float = 240) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run benchmarks/<script> on the bare Python. Returns (process, wall seconds, CPU seconds of it and its children)."""
    python = bare_python(tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(REPO), SWEEPER_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run([str(python), str(REPO / "benchmarks" / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def load(path: Path) -> dict:
    return json.loads(path.read_text())


if __name__ == "__main__":  # make one and print it, to poke at by hand
    print(bare_python(Path(sys.argv[1])))
