"""Training throughput of the live LoRA evaluator against a bare transformers + peft loop.

Same model (a random Llama of SmolLM2-135M's width, 4 layers), same LoRA, batch and
autocast, in the same process, steps interleaved; tokens per CPU second = batch x length /
median step time on one thread. The ratio live / bare (``extra_info``, shown with
``--benchmark-json``) is the figure to report (target: at least 0.95).
"""

import statistics
import time

import pytest
import torch

from bench_lora.live import LiveLoRA, LiveSetup
from tiny_lm import make_tiny_lm

CONFIG = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "learning_rate": 2e-4, "weight_decay": 0.01}
BATCH, LENGTH = 8, 128
ROUNDS = 20


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    paths = make_tiny_lm(tmp_path_factory.mktemp("throughput"))
    config = LlamaConfig(vocab_size=64, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=512,
                         pad_token_id=1, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(paths["model"])
    setup = LiveSetup(model=paths["model"], data=paths["data"], task_dir=paths["task_dir"],
                      objectives={"acc": ("tiny_mc", "acc")}, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
                      batch_size=BATCH, max_length=LENGTH)
    return LiveLoRA(setup)


def fixed_batches(live):
    """Full-length batches, so both loops see exactly the same tokens."""
    ids = torch.randint(4, 64, (BATCH, LENGTH))
    while True:
        yield ids, ids.clone(), torch.ones_like(ids)


def optimizer_for(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=CONFIG["learning_rate"], weight_decay=CONFIG["weight_decay"])


def bare_step(live):
    """One step of a bare transformers + peft loop on a model built like the live one."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(live.base.__class__(live.base.config), LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM"))
    optimizer = optimizer_for(model)
    ids, labels, mask = next(fixed_batches(live))
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=live.autocast_dtype or torch.float32, enabled=live.autocast_dtype is not None):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()

    return step


@pytest.fixture
def one_thread():
    """One torch thread, timed in CPU seconds: a step's cost then does not depend on what else the
    machine runs (on a loaded machine wall-clock step times varied 10x between rounds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.benchmark(group="lora-training-step", timer=time.process_time)
def test_live_evaluator_against_bare_loop(benchmark, live, one_thread):
    """The benchmark times live steps; a bare step runs before each (untimed by pytest-benchmark,
    timed here), so both loops are measured alike and in turn."""
    from transformers import get_cosine_schedule_with_warmup

    model = live.adapted(CONFIG, seed=0)
    optimizer = optimizer_for(model)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 10, 1000)
    batches = fixed_batches(live)
    bare, bare_seconds = bare_step(live), []

    def timed_bare_step():
        started = time.process_time()
        bare()
        bare_seconds.append(time.process_time() - started)

    for _ in range(2):  # warm-up of both
        timed_bare_step()
        live.train_steps(model, optimizer, scheduler, batches, 1)
    bare_seconds.clear()
    benchmark.pedantic(live.train_steps, args=(model, optimizer, scheduler, batches, 1), setup=timed_bare_step,
                       rounds=ROUNDS, iterations=1)
    if benchmark.stats is not None:  # None with --benchmark-disable
        live_tokens = BATCH * LENGTH / benchmark.stats.stats.median
        bare_tokens = BATCH * LENGTH / statistics.median(bare_seconds)
        benchmark.extra_info.update(live_tokens_per_cpu_s=round(live_tokens), bare_tokens_per_cpu_s=round(bare_tokens),
                                    live_over_bare=round(live_tokens / bare_tokens, 3))
