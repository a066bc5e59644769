"""A tiny random-initialised Llama with an offline word-level tokenizer, Alpaca-format data and
a local 4-choice lm-eval task: the whole live LoRA path in seconds, with nothing downloaded."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench_lora.live import multiple_choice_task

WORDS = "cat dog bird fish tree rock river cloud sun moon leaf stone".split()


def make_tiny_lm(root: Path) -> dict[str, str]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    definitions = {w: f"the {w} that one sees near the {WORDS[(i + 3) % len(WORDS)]}" for i, w in enumerate(WORDS)}
    items = [{"instruction": "Which word matches this definition?", "input": d, "output": w}
             for w, d in definitions.items()]
    (root / "train.jsonl").write_text("\n".join(json.dumps(i) for i in items))
    tasks = root / "tasks"
    tasks.mkdir()
    rng = random.Random(0)
    evaluation = []
    for word, definition in definitions.items():
        choices = rng.sample([w for w in WORDS if w != word], 3) + [word]
        rng.shuffle(choices)
        evaluation.append({"definition": definition, "choices": choices, "label": choices.index(word)})
    (tasks / "eval.jsonl").write_text("\n".join(json.dumps(e) for e in evaluation))
    (tasks / "tiny_mc.yaml").write_text(multiple_choice_task("tiny_mc"))
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [json.dumps(i) for i in items] + ["### Instruction: Input: Response: Definition: Word:"]
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    model_dir = root / "model"
    fast.save_pretrained(model_dir)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=1, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(model_dir)
    return {"model": str(model_dir), "data": str(root / "train.jsonl"), "task_dir": str(tasks)}
