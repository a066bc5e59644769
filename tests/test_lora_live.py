"""The live LoRA path end to end on a tiny random Llama (seconds, CPU, offline)."""

from __future__ import annotations

import math

import pytest

from bench.hookspecs import ProblemSpec
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from bench.trial import Status
from tiny_lm import make_tiny_lm

CONFIG = {"lora_rank": 4, "lora_alpha": 8, "lora_dropout": 0.1, "learning_rate": 1e-3, "weight_decay": 0.01}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


def tiny_spec(tiny, **live) -> ProblemSpec:
    setup = {"model": tiny["model"], "data": tiny["data"], "task_dir": tiny["task_dir"], "steps": 6, "curve": (2, 4), "curve_eval_limit": 6,
             "batch_size": 4, "max_length": 48, "warmup_steps": 2, "target_modules": ("q_proj", "v_proj"), **live}
    return ProblemSpec("lora-hpo/tiny", "tiny random Llama", "bench_lora.problem:LoraHPO", ("tiny_acc",),
                       modes=("live",), multi_fidelity=True, kwargs={"objectives": {"tiny_acc": {"task": "tiny_mc", "metric": "acc"}},
                                                "default_objective": "tiny_acc", "live": setup})


@pytest.fixture(scope="module")
def problem(tiny):
    return tiny_spec(tiny).create("live")


def test_a_live_run_stores_real_results_with_learning_curves_and_costs(tiny, tmp_path):
    registry = Registry()
    registry.problems["lora-hpo/tiny"] = tiny_spec(tiny)
    store = Store(tmp_path / "live.sqlite")
    trials = store.trials(run(RunSpec("lora-hpo/tiny", "random", 0, 2, "live"), store, registry))
    assert len(trials) == 2
    for st in trials:
        result = st.result
        assert result.status is Status.OK and result.source == "live" and result.fidelity == 6
        assert [point["steps"] for point in result.extra["curve"]] == [2, 4, 6]
        for earlier, point in zip(result.extra["curve"], result.extra["curve"][1:]):  # the table build's contract
            assert 0 < earlier["cpu_seconds"] < point["cpu_seconds"] and earlier["wall_seconds"] < point["wall_seconds"]
        assert all(0 <= point["tiny_acc_stderr"] < 1 for point in result.extra["curve"])  # 0 where all items agree
        assert 0.0 <= result.objectives["tiny_acc"] <= 1.0
        assert result.objectives["tiny_acc"] == result.extra["curve"][-1]["tiny_acc"]
        # on a CPU the cost is CPU seconds (load-independent), wall seconds kept beside them
        assert result.cost == pytest.approx(result.extra["train_cpu_seconds"] + result.extra["eval_cpu_seconds"])
        assert result.cost == result.extra["curve"][-1]["cpu_seconds"] and result.extra["wall_seconds"] > 0
        costs = [point["cpu_seconds"] for point in result.extra["curve"]]
        assert costs == sorted(costs) and [point["items"] for point in result.extra["curve"]] == [6, 6, 12]
        assert result.extra["peak_memory_mb"] > 0 and len(result.extra["losses"]) == 6
        assert result.extra["tiny_acc_stderr"] == result.extra["curve"][-1]["tiny_acc_stderr"]


def test_a_lower_fidelity_is_the_full_run_stopped_early(problem):
    """The schedule spans the full fidelity, so a table's curve point is what a live run stopped there gives."""
    full, stopped = problem.evaluate(CONFIG, 6, seed=3), problem.evaluate(CONFIG, 4, seed=3)
    assert stopped.extra["losses"] == full.extra["losses"][:4]
    assert [p["tiny_acc"] for p in stopped.extra["curve"]] == [p["tiny_acc"] for p in full.extra["curve"][:2]]


def test_packed_training_loss_equals_the_padded_transformers_loss(problem):
    import random

    import torch

    from bench_lora.packing import packed_loss

    model = problem.live.adapted(dict(CONFIG, lora_dropout=0.0), seed=0).eval()
    examples = problem.live._examples(random.Random(0))
    batch = [next(examples) for _ in range(5)]
    width = max(len(ids) for ids, _ in batch)
    ids = torch.tensor([i + [0] * (width - len(i)) for i, _ in batch])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        for row_tokens in (8, 40, 1000):  # one example a row, a few, all in one
            assert float(packed_loss(model, batch, row_tokens)) == pytest.approx(float(padded), rel=1e-5)


def test_packed_scoring_equals_lm_evals_own_hf_model(problem):
    """Each context once, several continuations after it: the same log-likelihoods and greedy flags."""
    from lm_eval.models.huggingface import HFLM

    from bench_lora.live import packed_lm_class

    model, tok = problem.live.adapted(CONFIG, seed=0).eval(), problem.live.tokenizer
    requests = []
    for context in ("the cat that one sees near the", "Definition: the dog Word:", "rock"):
        for continuation in (" fish", " tree rock", " sun moon leaf", " cat"):
            pair = (tok(context)["input_ids"], tok(continuation, add_special_tokens=False)["input_ids"])
            requests.append(((context, continuation), *pair))
    expected = HFLM(pretrained=model, tokenizer=tok, batch_size=4)._loglikelihood_tokens(requests, disable_tqdm=True)
    for row_tokens in (4, 64):
        got = packed_lm_class()(pretrained=model, tokenizer=tok, batch_size=2,
                                row_tokens=row_tokens)._loglikelihood_tokens(requests)
        assert [g for _, g in got] == [g for _, g in expected]
        assert [ll for ll, _ in got] == pytest.approx([ll for ll, _ in expected], abs=1e-4)


def test_the_seed_fixes_data_order_lora_init_and_dropout(problem):
    first = problem.evaluate(CONFIG, 3, seed=5).extra["losses"]
    assert problem.evaluate(CONFIG, 3, seed=5).extra["losses"] == first
    assert problem.evaluate(CONFIG, 3, seed=6).extra["losses"] != first


def test_a_huge_learning_rate_diverges_and_is_stored_as_such(problem):
    result = problem.evaluate(dict(CONFIG, learning_rate=1e35), 6, seed=0)
    assert result.status is Status.DIVERGED and "non-finite" in result.error
    assert any(not math.isfinite(loss) for loss in result.extra["losses"])


def test_out_of_memory_is_a_failed_trial(problem, monkeypatch):
    import torch

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(problem.live, "train_steps", no_memory)
    result = problem.evaluate(CONFIG, 6, seed=0)
    assert result.status is Status.FAILED and result.error.startswith("OutOfMemoryError: CUDA out of memory")


def test_bad_model_path_or_task_fails_before_training_with_one_line(tiny, tmp_path):
    from bench_lora.live import LiveSetupError

    with pytest.raises(LiveSetupError, match="model path /nowhere/model does not exist"):
        tiny_spec(tiny, model="/nowhere/model").create("live")
    bad = tiny_spec(tiny)
    bad.kwargs["objectives"] = {"tiny_acc": {"task": "no_such_task", "metric": "acc"}}
    with pytest.raises(LiveSetupError, match="unknown lm-eval task 'no_such_task'") as error:
        bad.create("live")
    assert "\n" not in str(error.value)


def test_the_llama_instances_reproduce_the_tables_procedure_with_local_stand_ins(tiny, monkeypatch):
    monkeypatch.setenv("BENCH_LORA_MODEL", tiny["model"])
    monkeypatch.setenv("BENCH_LORA_DATA", tiny["data"])
    problem = Registry().problem("lora-hpo/llama-3.2-1b-alpaca").create("live")
    setup = problem.live.setup
    assert setup.model == tiny["model"] and setup.data == tiny["data"]
    assert set(setup.target_modules) == {"q_proj", "k_proj", "v_proj", "lm_head"}
    assert setup.batch_size * setup.gradient_accumulation == 16 and setup.warmup_steps == 100
    assert problem.fidelity.max == 3110  # one epoch of the 49,760 training items at global batch 16
    assert setup.objectives == {"hellaswag_acc": ("hellaswag", "acc"), "hellaswag_acc_norm": ("hellaswag", "acc_norm"),
                                "mmlu_acc": ("mmlu", "acc")}
    assert problem.select_objectives()[0].name == "hellaswag_acc"
    model = problem.live.adapted(CONFIG, seed=0)
    assert any("lm_head" in name for name, p in model.named_parameters() if p.requires_grad)


@pytest.mark.slow
def test_smollm2_on_wordnet_trains_and_scores_for_real():
    """The CPU instance's real model and data: a few steps, a few items."""
    from dataclasses import replace

    spec = Registry().problem("lora-hpo/smollm2-135m-wordnet")
    live = {**spec.kwargs["live"], "steps": 2, "curve": (1,), "batch_size": 2, "eval_limit": 12, "curve_eval_limit": 8}
    problem = replace(spec, kwargs={**spec.kwargs, "live": live}).create("live")
    result = problem.evaluate(dict(CONFIG, learning_rate=2e-4), 2, seed=0)
    assert result.status is Status.OK, result.error
    assert [point["steps"] for point in result.extra["curve"]] == [1, 2]
    assert 0.0 <= result.objectives["wordnet_acc"] <= 1.0 and 0.0 <= result.objectives["wordnet_acc_norm"] <= 1.0
    assert all(math.isfinite(loss) for loss in result.extra["losses"])


def test_a_table_built_live_answers_table_mode_at_every_fidelity(tiny, tmp_path, monkeypatch):
    """`bench table build` of a live LoRA problem, then the same problem in table mode: every curve
    point is a fidelity level, a fidelity between levels is answered at the next level up."""
    from bench.build import build
    from bench_lora.problem import LoraHPO

    registry = Registry()
    registry.problems["lora-hpo/tiny"] = tiny_spec(tiny)
    build(registry, "lora-hpo/tiny", "sobol:2", [0], tmp_path)
    monkeypatch.setenv("BENCH_TABLES", str(tmp_path))
    kwargs = tiny_spec(tiny).kwargs
    problem = LoraHPO("table", kwargs["objectives"], kwargs["default_objective"], table="lora-hpo-tiny")
    assert (problem.fidelity.name, problem.fidelity.min, problem.fidelity.max) == ("steps", 2, 6)
    measured = problem.table.configs[0]
    live = problem.table.lookup(measured, 0, "surrogate", 6)
    assert live.source == "table" and live.fidelity == 6
    early = problem.evaluate(measured, 3, seed=0)
    assert early.source == "table" and early.fidelity == 4 and early.cost < live.cost


def test_workers_rendering_the_same_tasks_at_once_never_read_half_a_file(tmp_path):
    """Two Dask workers render one content-named folder at the same time; one must not see the
    other's truncated file (lm-eval then reports the task unknown)."""
    import threading

    from bench_lora.live import multiple_choice_task, render_tasks

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    text = multiple_choice_task("race_mc") * 200
    (tasks / "race_mc.yaml").write_text(text)
    expected = text.replace("{data_dir}", str(tasks))
    seen: list[str] = []

    def render_and_read():
        for _ in range(200):
            seen.append((render_tasks(tasks) / "race_mc.yaml").read_text())

    threads = [threading.Thread(target=render_and_read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 800 and all(s == expected for s in seen)
