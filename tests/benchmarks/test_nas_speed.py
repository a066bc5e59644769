"""Masked-LM training step of the NAS model: logits at the masked positions only (what the live
evaluator does) against logits at every position, and against transformers' BertForMaskedLM.

A random BERT of all-MiniLM-L6-v2's width (2 layers to keep it short), batch 16 x 128, bf16
autocast on CPU as the evaluator uses it. Report the ratios every-position / masked-only and
transformers / ours, measured in the same run. Then the masked-only step at fp32, at bf16 and at bf16 with its
matrix products in fp32 (bench_llm.runtime.bf16_matmuls_in_fp32, what a CPU that emulates bf16 runs): report
each against fp32. With ``--benchmark-disable`` (the normal test run) a
batch of 2 x 16 runs instead, so the code stays exercised without minutes of bf16 steps.
"""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from bench_llm.runtime import bf16_matmuls_in_fp32
from bench_nas.genotype import Genotype
from bench_nas.model import ParentWeights, build

VOCAB = 30522


@pytest.fixture(scope="module")
def models(pytestconfig):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=VOCAB, hidden_size=384, num_hidden_layers=2, num_attention_heads=12,
                        intermediate_size=1536)
    torch.manual_seed(0)
    hf = BertForMaskedLM(config)
    parent = ParentWeights.from_hf(hf)
    ours, _ = build(Genotype.parent(parent.dims), parent, seed=0)
    measuring = pytestconfig.getoption("benchmark_enable") or not pytestconfig.getoption("benchmark_disable")
    ids = torch.randint(1000, VOCAB, (16, 128) if measuring else (2, 16))
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape) < 0.15
    labels[chosen] = ids[chosen]
    return hf, ours, ids, labels


def step(model, loss_fn, precision="bf16"):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def run():
        autocast = contextlib.nullcontext() if precision == "fp32" else torch.autocast("cpu", dtype=torch.bfloat16)
        with bf16_matmuls_in_fp32() if precision == "bf16, products in fp32" else contextlib.nullcontext():
            with autocast:
                loss = loss_fn(model)
            optimizer.zero_grad(set_to_none=True)
            loss.float().backward()
            optimizer.step()
    run()  # warm-up
    return run


def masked_only(ids, labels):
    where = labels != -100
    return lambda model: F.cross_entropy(model.mlm_logits(model.encode(ids, torch.ones_like(ids))[where]).float(),
                                         labels[where])


@pytest.mark.benchmark(group="nas-mlm-step")
def test_masked_positions_only(benchmark, models):
    _, ours, ids, labels = models
    benchmark.pedantic(step(ours, masked_only(ids, labels)), rounds=5, iterations=1)


@pytest.mark.benchmark(group="nas-mlm-step-precision")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "bf16, products in fp32"])
def test_masked_positions_only_at_precision(benchmark, models, precision):
    _, ours, ids, labels = models
    benchmark.pedantic(step(ours, masked_only(ids, labels), precision), rounds=5, iterations=1)


@pytest.mark.benchmark(group="nas-mlm-step")
def test_every_position(benchmark, models):
    _, ours, ids, labels = models

    def loss(model):
        logits = model.mlm_logits(model.encode(ids, torch.ones_like(ids)))
        return F.cross_entropy(logits.float().view(-1, VOCAB), labels.view(-1))
    benchmark.pedantic(step(ours, loss), rounds=5, iterations=1)


@pytest.mark.benchmark(group="nas-mlm-step")
def test_transformers_bert_for_masked_lm(benchmark, models):
    hf, _, ids, labels = models
    benchmark.pedantic(step(hf, lambda model: model(input_ids=ids, labels=labels).loss), rounds=5, iterations=1)
