"""Shared helpers: run the real CLI in a subprocess, install throwaway plugins by entry point, a registry
of this checkout's plugins."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from bench.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def bench_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run ``python -m bench ARGS`` and return the CompletedProcess (never raises on exit code)."""
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def outputs_under_two_hash_seeds(script: str, timeout: float = 300) -> tuple:
    """Run ``script`` in two fresh processes with different PYTHONHASHSEED and return both JSON printouts:
    what "the same seed gives the same trials in another process" is checked with."""
    import json

    runs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": str(hash_seed)}) for hash_seed in (1, 2)]
    return tuple(json.loads(run.communicate(timeout=timeout)[0]) for run in runs)


def assert_rebuilt_table(rebuilt: Path, shipped: Path, name: str) -> None:
    """A table rebuilt from its source rows is the shipped one: the Parquet, the forest and the manifest
    byte for byte, but for the GP, whose fit differs in its last bits between CPU types (their BLAS kernels sum
    in other orders; hyperparameters agree to about 1e-7): its predictions must agree within 1e-6."""
    import json

    import numpy as np

    from bench.tables import GaussianProcess

    for suffix in (".parquet", ".surrogate.safetensors"):
        assert (rebuilt / f"{name}{suffix}").read_bytes() == (shipped / f"{name}{suffix}").read_bytes(), suffix
    manifests = [json.loads((folder / f"{name}.json").read_text()) for folder in (rebuilt, shipped)]
    for manifest in manifests:
        manifest["surrogates"]["gp"].pop("sha256")
    assert manifests[0] == manifests[1]
    if (rebuilt / f"{name}.gp.safetensors").read_bytes() != (shipped / f"{name}.gp.safetensors").read_bytes():
        gps = [GaussianProcess.load(folder / f"{name}.gp.safetensors") for folder in (rebuilt, shipped)]
        x = np.random.default_rng(0).random((1000, gps[1].x.shape[1]))
        ours, theirs = gps[0].predict_many(x), gps[1].predict_many(x)
        assert all(np.max(np.abs(ours[o] - theirs[o])) < 1e-6 for o in theirs)


def assert_documented_build_rewrites(tmp_path: Path, shipped: Path, name: str, build: list[str]) -> None:
    """The documented ``bench table build`` command, given only the table's committed rows, writes the shipped
    table (so it measured nothing anew), which then verifies."""
    import shutil

    shutil.copy(shipped / f"{name}.trials.jsonl", tmp_path)
    result = bench_cli(*build, "--out", str(tmp_path), env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert_rebuilt_table(tmp_path, shipped, name)
    assert bench_cli("table", "verify", name, env={**os.environ, "BENCH_TABLES": str(tmp_path)}).returncode == 0


def query_store(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` from a store another process may be creating (nothing until its tables exist)."""
    import sqlite3

    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def install_plugin(site: Path, name: str, source: str) -> dict[str, str]:
    """Install a one-module distribution with a ``bench`` entry point into ``site`` (as pip would lay it
    out: the module plus a dist-info folder) and return an environment that puts ``site`` on the path."""
    module = f"bench_test_{name}"
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"bench_test_{name}-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: bench-test-{name}\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[bench]\n{name} = {module}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def checkout_registry() -> Registry:
    """The installed plugins, plus the built-in ones this checkout's pyproject.toml declares and the
    installed metadata lacks (an editable install made before they were added), through the same hooks."""
    registry = Registry()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["bench"]
    installed = {p.name for p in registry.plugins} | {b.name for b in registry.broken}
    for name, module in declared.items():
        if name not in installed:
            plugin = importlib.import_module(module)
            for hook, table in (("bench_problems", registry.problems), ("bench_optimizers", registry.optimizers)):
                for spec in getattr(plugin, hook, lambda: [])():
                    table.setdefault(spec.name, spec)
    return registry


@pytest.fixture
def store(tmp_path):
    return tmp_path / "results.sqlite"
