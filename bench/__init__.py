"""bench: a plugin-based benchmark suite for HPO and NAS on large language models.

The core imports no torch, transformers, smac or nevergrad: those load lazily,
only when a problem or optimizer that needs them is created.
"""

import os
import shutil
from pathlib import Path

__version__ = "0.1.0"

_API = ("run", "results", "objective", "EvaluationFailed")


def __getattr__(name: str):
    """``bench.run``, ``bench.results``, ``bench.objective``: the Python API (bench/api.py), loaded on first use."""
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def cache_dir(name: str) -> Path:
    """A folder of the user's cache for what bench derives once per machine (converted weights, compiled
    kernels): rebuilt if deleted, never shipped."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bench" / name


def remove_dead_staging(parent: Path, prefix: str) -> None:
    """Remove the folders ``prefix<pid>`` in ``parent`` whose process is gone: what a writer that stages in a
    folder of its own process, then renames it into place, left when it was killed."""
    for staging in parent.glob(f"{prefix}*"):
        pid = staging.name[len(prefix):]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
