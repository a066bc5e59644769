"""The plugin's own tests: bench's conformance suite for its optimizer, and a run of its problem, both found
through the installed entry point."""

import pytest

from bench.registry import Registry
from bench.testing import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_the_hill_climber_passes_benchs_conformance_suite(check, tmp_path):
    check(Registry(), "example-hillclimb", tmp_path)


def test_the_sphere_runs_and_the_hill_climber_descends_it(tmp_path):
    from bench.api import run
    from bench.store import Store

    [run_id] = run("example/sphere", "example-hillclimb", budget=40, store=tmp_path / "runs.sqlite")
    values = [st.result.objectives["value"] for st in Store(tmp_path / "runs.sqlite").trials(run_id)]
    assert len(values) == 40 and min(values) < values[0]
