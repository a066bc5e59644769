"""One live evaluation of `lora-hpo/smollm2-135m-wordnet` (the table build's unit of work) against
its physical floor, and the packed paths against transformers' padded step and lm-eval's own HFLM.

Timed in CPU seconds on one torch thread, so the figures do not depend on what else the machine
runs. The floor is the evaluation's arithmetic at this CPU's matrix-multiply peak, measured in the
same run on one thread in the evaluation's dtype: 4 N FLOPs per training token (forward, and
backward to the inputs: the base weights are frozen) and 2 N per scored token, N the model's
parameters, counting the tokens the evaluation must see (every training token; each item's context
once and its continuations). Report ``extra_info``: seconds, ratio to the floor, final standard error.

With ``--benchmark-disable`` (the normal test run) a two-step, few-item version runs instead, so
the code stays exercised without the minutes a full evaluation takes.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.registry import Registry

CONFIG = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "learning_rate": 1e-3, "weight_decay": 0.01}
SMALL = {"steps": 2, "curve": (1,), "eval_limit": 12, "curve_eval_limit": 8}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def problem(request):
    spec = Registry().problem("lora-hpo/smollm2-135m-wordnet")
    config = request.config
    if config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"):
        spec = replace(spec, kwargs={**spec.kwargs, "live": {**spec.kwargs["live"], **SMALL}})
    return spec.create("live")


def matmul_peak(dtype) -> float:
    """FLOP/s of one thread on the model's own GEMM shape (rows x hidden @ hidden x intermediate)."""
    a, b = torch.randn(256, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    for _ in range(3):
        a @ b
    rounds, started = 40, time.process_time()
    for _ in range(rounds):
        a @ b
    return 2 * 256 * 576 * 1536 * rounds / (time.process_time() - started)


def scoring_requests(live, limit: int | None) -> list[tuple[list[int], list[int]]]:
    """The (context, continuation) token pairs lm-eval builds for the first ``limit`` items."""
    folder = Path(live.setup.task_dir)
    items = [json.loads(line) for line in (folder / "eval.jsonl").read_text().splitlines()][:limit]
    tok = live.tokenizer
    return [(tok(f"Definition: {item['definition']}\nWord:")["input_ids"],
             tok(f" {choice}", add_special_tokens=False)["input_ids"]) for item in items for choice in item["choices"]]


def floor_flops(live, seed: int) -> float:
    setup = live.setup
    examples = live._examples(random.Random(seed))
    train_tokens = sum(len(next(examples)[0]) for _ in range(setup.steps * setup.batch_size
                                                             * setup.gradient_accumulation))
    score_tokens = 0
    for level in sorted(set(setup.curve) | {setup.steps}):
        requests = scoring_requests(live, setup.items_at(level))
        contexts = {tuple(context) for context, _ in requests}
        score_tokens += sum(len(c) for c in contexts) + sum(len(cont) - 1 for _, cont in requests)
    n = sum(p.numel() for p in live.base.parameters())
    return 4 * n * train_tokens + 2 * n * score_tokens


@pytest.mark.slow
@pytest.mark.benchmark(group="lora-evaluation", timer=time.process_time)
def test_one_evaluation_against_the_floor(benchmark, problem, one_thread):
    live = problem.live
    peak = matmul_peak(live.autocast_dtype or torch.float32)
    result = benchmark.pedantic(problem.evaluate, args=(CONFIG, live.setup.steps, 0), rounds=1, iterations=1)
    assert result.ok, result.error
    assert [p["steps"] for p in result.extra["curve"]] == sorted(set(live.setup.curve) | {live.setup.steps})
    floor = floor_flops(live, 0) / peak
    benchmark.extra_info.update(
        cpu_seconds=round(result.cost, 1), train_cpu_seconds=round(result.extra["train_cpu_seconds"], 1),
        eval_cpu_seconds=round(result.extra["eval_cpu_seconds"], 1), floor_seconds=round(floor, 1),
        over_floor=round(result.cost / floor, 2), peak_gflops_one_thread=round(peak / 1e9, 1),
        final_items=result.extra["curve"][-1]["items"], final_stderr=round(result.extra["wordnet_acc_stderr"], 4),
        wordnet_acc=result.objectives["wordnet_acc"])


@pytest.mark.slow
@pytest.mark.benchmark(group="lora-evaluation-parts", timer=time.process_time)
def test_packed_paths_against_padded_training_and_hflm_scoring(benchmark, problem, one_thread):
    """The same 8 training examples through transformers' padded step and the packed one, and the same
    items through lm-eval's HFLM and the packed scorer; ratios measured in this run."""
    from lm_eval.models.huggingface import HFLM

    from bench_lora.live import packed_lm_class
    from bench_lora.packing import packed_loss

    live = problem.live
    model = live.adapted(CONFIG, seed=0)
    examples = live._examples(random.Random(0))
    batch = [next(examples) for _ in range(live.setup.batch_size)]
    width = max(len(ids) for ids, _ in batch)
    ids = torch.tensor([i + [0] * (width - len(i)) for i, _ in batch])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])

    def cpu(work, rounds: int) -> float:
        work()
        started = time.process_time()
        for _ in range(rounds):
            work()
        return (time.process_time() - started) / rounds

    padded_step = cpu(lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward(), 3)
    packed_step = cpu(lambda: packed_loss(model, batch, live.setup.row_tokens).backward(), 3)
    model.eval()
    requests = [(("", ""), context, continuation) for context, continuation in scoring_requests(live, 40)]
    hflm = HFLM(pretrained=model, tokenizer=live.tokenizer, batch_size=live.setup.eval_batch_size)
    packed = packed_lm_class()(pretrained=model, tokenizer=live.tokenizer, batch_size=live.setup.eval_batch_size,
                               row_tokens=live.setup.row_tokens)
    expected, got = [], []
    hflm_seconds = cpu(lambda: expected.append(hflm._loglikelihood_tokens(requests, disable_tqdm=True)), 1)
    packed_seconds = benchmark.pedantic(lambda: cpu(lambda: got.append(packed._loglikelihood_tokens(requests)), 1),
                                        rounds=1, iterations=1)
    benchmark.extra_info.update(padded_step_cpu_s=round(padded_step, 3), packed_step_cpu_s=round(packed_step, 3),
                                training_speedup=round(padded_step / packed_step, 2),
                                hflm_cpu_s_per_item=round(hflm_seconds / 40, 4),
                                packed_cpu_s_per_item=round(packed_seconds / 40, 4),
                                scoring_speedup=round(hflm_seconds / packed_seconds, 2))
    assert [ll for ll, _ in got[-1]] == pytest.approx([ll for ll, _ in expected[-1]], abs=1e-3)
