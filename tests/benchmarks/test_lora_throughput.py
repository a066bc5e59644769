"""Training throughput of the live LoRA evaluator against a bare transformers + peft loop.

Same model (a random Llama of SmolLM2-135M's width, 4 layers), same LoRA, batch and
autocast, in the same process; tokens/s = batch x length / median step time. The ratio
bare / live is the figure to report (target: live at least 0.95 of bare).
"""

import pytest
import torch

from bench_lora.live import LiveLoRA, LiveSetup
from tiny_lm import make_tiny_lm

CONFIG = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "learning_rate": 2e-4, "weight_decay": 0.01}
BATCH, LENGTH = 8, 128


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


@pytest.mark.benchmark(group="lora-training-step")
def test_live_evaluator_step(benchmark, live):
    from transformers import get_cosine_schedule_with_warmup

    model = live.adapted(CONFIG, seed=0)
    optimizer = optimizer_for(model)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 10, 1000)
    batches = fixed_batches(live)
    live.train_steps(model, optimizer, scheduler, batches, 2)  # warm-up
    benchmark.pedantic(live.train_steps, args=(model, optimizer, scheduler, batches, 1), rounds=15, iterations=1)


@pytest.mark.benchmark(group="lora-training-step")
def test_bare_transformers_peft_step(benchmark, live):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(live.base.__class__(live.base.config), LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM"))
    optimizer = optimizer_for(model)
    ids = next(fixed_batches(live))[0]
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=live.autocast_dtype or torch.float32, enabled=live.autocast_dtype is not None):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()

    step()
    step()
    benchmark.pedantic(step, rounds=15, iterations=1)
