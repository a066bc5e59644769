"""The LoRA HPO search space of the source (docs/methods.md section 1), as used by its tables."""

from ConfigSpace import ConfigurationSpace, Float, Integer


def lora_space(max_rank: int = 64) -> ConfigurationSpace:
    return ConfigurationSpace({
        "lora_rank": Integer("lora_rank", (2, max_rank)),
        "lora_alpha": Integer("lora_alpha", (1, 64)),
        "lora_dropout": Float("lora_dropout", (0.0, 0.5)),
        "learning_rate": Float("learning_rate", (1e-10, 1e-1), log=True),
        "weight_decay": Float("weight_decay", (1e-5, 1e-1), log=True),
    })
