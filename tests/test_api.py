"""The Python API: the examples of docs/python-api.md run as written, and its DataFrame is `bench export`'s."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import bench.api
from conftest import REPO, bench_cli


def test_the_python_api_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(), re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)  # noqa: S102 - our own documentation


def test_the_dataframe_equals_bench_exports_file(tmp_path):
    store = tmp_path / "results.sqlite"
    bench.api.run("synthetic/zdt1", "nsga2", seeds=[0, 1], budget=12, store=store)
    bench_cli("run", "synthetic/branin", "-o", "random", "--budget", "5", "--store", str(store))
    out = tmp_path / "export.parquet"
    assert bench_cli("export", str(out), "--store", str(store)).returncode == 0
    pd.testing.assert_frame_equal(bench.api.results(store), pd.read_parquet(out))


def test_reading_never_creates_a_store_and_reruns_are_refused(tmp_path):
    from bench.runner import RunExists
    from bench.store import StoreError

    with pytest.raises(StoreError, match="no results store at"):
        bench.api.results(tmp_path / "typo.sqlite")
    assert not (tmp_path / "typo.sqlite").exists()
    store = tmp_path / "results.sqlite"
    bench.api.run("synthetic/branin", "random", budget=3, store=store)
    with pytest.raises(RunExists, match="continue it with --resume"):
        bench.api.run("synthetic/branin", "random", budget=3, store=store)
    assert bench.api.run("synthetic/branin", "random", budget=3, store=store, resume=True) == [1]


def test_an_objective_function_takes_a_fidelity_and_refuses_bad_configurations():
    from bench.space import InvalidConfiguration

    f = bench.api.objective("synthetic/hartmann6")
    assert f.fidelity is not None
    full, early = f(dict.fromkeys(f.space, 0.5)), f(dict.fromkeys(f.space, 0.5), fidelity=1)
    assert full["value"] != early["value"]
    with pytest.raises(InvalidConfiguration, match="invalid configuration"):  # bad input, not a failed evaluation
        f(dict.fromkeys(f.space, 7.0))


def test_the_api_is_bench_run_results_and_objective():
    import bench as top

    assert (top.run, top.results, top.objective) == (bench.api.run, bench.api.results, bench.api.objective)
    with pytest.raises(AttributeError):
        top.no_such_call
