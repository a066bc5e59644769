"""LoRA fine-tuning HPO (METHODS.md section 1): a configuration fine-tunes a causal LM with
LoRA and lm-eval scores it. Table mode answers from real GPU measurements."""

from bench.hookspecs import ProblemSpec, hookimpl

_OBJECTIVES = ("hellaswag_acc", "hellaswag_acc_norm", "mmlu_acc")


@hookimpl
def bench_problems():
    return [
        ProblemSpec("lora-hpo/llama-3.2-1b-alpaca",
                    "LoRA HPO of Llama-3.2-1B on Alpaca, hellaswag/mmlu zero-shot; 203 real A100 measurements",
                    "bench_lora.problem:LoraHPO", _OBJECTIVES, modes=("table",),
                    kwargs={"table": "lora-hpo-llama-3.2-1b-alpaca", "max_rank": 64}),
        ProblemSpec("lora-hpo/llama-3.2-3b-alpaca",
                    "LoRA HPO of Llama-3.2-3B on Alpaca (rank up to 512), hellaswag/mmlu; 150 real A100 measurements",
                    "bench_lora.problem:LoraHPO", _OBJECTIVES, modes=("table",),
                    kwargs={"table": "lora-hpo-llama-3.2-3b-alpaca", "max_rank": 512}),
    ]
