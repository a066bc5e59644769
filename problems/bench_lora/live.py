"""Live LoRA fine-tuning: transformers + peft training, lm-eval scoring of the in-memory model.

One evaluation: copy the base model, attach LoRA adapters with the configuration's rank,
alpha and dropout, train with AdamW (learning rate, weight decay), linear warm-up and a
cosine schedule for ``steps`` optimizer steps, and score with lm-eval at each of the
instance's curve levels up to ``steps`` (a learning curve), without merging or saving.
bf16 autocast runs where the hardware has it (CUDA, or a CPU with AVX-512 bf16 / AMX).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.trial import Result, Status


class LiveSetupError(ValueError):
    """A model, data set or task that cannot be used; raised before any training."""


@dataclass(frozen=True)
class LiveSetup:
    """Everything an instance fixes: which model, data and tasks, and how to train."""

    model: str  # a local folder, or a hub id where a hub is reachable
    data: str  # Alpaca-format JSON or JSON Lines: instruction, input, output
    objectives: dict[str, tuple[str, str]]  # objective name -> (lm-eval task, metric)
    task_dir: str | None = None  # folder of task YAMLs ("{data_dir}" becomes its absolute path); None: lm-eval's own
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
    gguf_file: str | None = None
    max_length: int = 128
    batch_size: int = 8
    gradient_accumulation: int = 1
    warmup_steps: int = 10
    eval_batch_size: int = 16
    eval_limit: int | None = None
    curve: tuple[int, ...] = ()  # steps at which the learning curve is scored (the fidelity levels)
    extra: dict[str, Any] = field(default_factory=dict)


def meant_as_path(location: str) -> bool:
    """An absolute or ./-relative location names a local file, never a hub id: if it is missing,
    that is the user's error to report, not a download to try."""
    return Path(location).is_absolute() or location.startswith(".")


def device_and_dtype():
    """CUDA with bf16 where supported; else the CPU, with bf16 autocast on CPUs that run it fast."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    fast_bf16 = torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") or "avx512_bf16" in _cpu_flags()
    return torch.device("cpu"), (torch.bfloat16 if fast_bf16 else None)


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def render_tasks(task_dir: Path) -> Path:
    """The task YAMLs with ``{data_dir}`` replaced by the absolute data folder (lm-eval resolves
    data files against the working directory otherwise), in a temporary folder named by their
    content, so repeated loads reuse it."""
    task_dir = task_dir.resolve()
    texts = {y.name: y.read_text().replace("{data_dir}", str(task_dir)) for y in sorted(task_dir.glob("*.yaml"))}
    digest = hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"bench-lm-eval-{digest}"
    out.mkdir(exist_ok=True)
    for name, text in texts.items():
        (out / name).write_text(text)
    return out


_MC_TASK = """task: NAME
dataset_path: json
dataset_kwargs:
  data_files:
    test: "{data_dir}/eval.jsonl"
test_split: test
output_type: multiple_choice
doc_to_text: "Definition: {{definition}}\\nWord:"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
"""


def multiple_choice_task(name: str, metrics: tuple[str, ...] = ("acc",)) -> str:
    """An lm-eval task YAML for ``eval.jsonl`` items {definition, choices, label} beside it."""
    return _MC_TASK.replace("NAME", name) + "".join(
        f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true\n" for m in metrics)


def load_examples(source: str) -> list[dict[str, str]]:
    """Alpaca-format items from a JSON / JSON Lines file, or from a hub data set id."""
    path = Path(source)
    if path.exists():
        text = path.read_text()
        items = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                         if line.strip()]
    elif meant_as_path(source):
        raise LiveSetupError(f"training data {source} does not exist; pass an Alpaca-format JSON/JSONL file")
    else:
        from datasets import load_dataset

        try:
            items = list(load_dataset(source, split="train"))
        except Exception as exc:
            raise LiveSetupError(f"cannot load data set {source!r} ({type(exc).__name__}); pass a local "
                                 f"Alpaca-format file instead") from exc
    for item in items[:1]:
        missing = {"instruction", "output"} - set(item)
        if missing:
            raise LiveSetupError(f"{path} is not in Alpaca format (missing {sorted(missing)})")
    return items


def prompt_of(item: dict[str, str]) -> str:
    """The Alpaca prompt; the loss is taken on the response only."""
    if item.get("input"):
        return (f"### Instruction:\n{item['instruction']}\n\n### Input:\n{item['input']}\n\n### Response:\n")
    return f"### Instruction:\n{item['instruction']}\n\n### Response:\n"


class LiveLoRA:
    """Loads once (model, tokenizer, data, tasks), then evaluates configurations."""

    def __init__(self, setup: LiveSetup) -> None:
        self.setup = setup
        model_path = Path(setup.model)
        if not model_path.exists() and meant_as_path(setup.model):
            raise LiveSetupError(f"model path {setup.model} does not exist; pass an existing folder or a hub id")
        self.examples = load_examples(setup.data)
        self._check_tasks()
        self.device, self.autocast_dtype = device_and_dtype()
        self.tokenizer, self.base = self._load_model()

    def _check_tasks(self) -> None:
        from lm_eval.tasks import TaskManager

        if self.setup.task_dir:
            rendered = render_tasks(Path(self.setup.task_dir))
            self.task_manager = TaskManager(include_path=str(rendered), include_defaults=False)
        else:
            self.task_manager = TaskManager()
        known = set(self.task_manager.all_tasks)
        for task, _ in self.setup.objectives.values():
            if task not in known:
                where = self.setup.task_dir or "lm-eval's task registry"
                raise LiveSetupError(f"unknown lm-eval task {task!r} in {where}; add its YAML to the task folder "
                                     f"or fix the name (`lm_eval ls tasks` lists the built-in ones)")

    def _load_model(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {"dtype": torch.float32}
        if self.setup.gguf_file:
            kwargs["gguf_file"] = self.setup.gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.setup.model, **({"gguf_file": self.setup.gguf_file}
                                                                            if self.setup.gguf_file else {}))
            model = AutoModelForCausalLM.from_pretrained(self.setup.model, **kwargs)
        except OSError as exc:
            raise LiveSetupError(f"cannot load model {self.setup.model}: {str(exc).splitlines()[0]}") from exc
        if getattr(model, "hf_quantizer", None) is not None:  # a GGUF file leaves its dequantizer attached
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, model.to(self.device)

    def _batches(self, rng: random.Random):
        """Endless shuffled batches of (input ids, labels with the prompt masked)."""
        import torch

        tok, size = self.tokenizer, self.setup.max_length
        order: list[int] = []
        while True:
            batch = []
            for _ in range(self.setup.batch_size):
                if not order:
                    order = list(range(len(self.examples)))
                    rng.shuffle(order)
                item = self.examples[order.pop()]
                prompt = tok(prompt_of(item), add_special_tokens=False)["input_ids"]
                answer = tok(item["output"] + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
                ids = (prompt + answer)[:size]
                labels = ([-100] * len(prompt) + answer)[:size]
                batch.append((ids, labels))
            width = max(len(ids) for ids, _ in batch)
            pad = tok.pad_token_id
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            yield input_ids.to(self.device), labels.to(self.device), mask.to(self.device)

    def adapted(self, config: dict[str, Any], seed: int):
        """A fresh copy of the base model with LoRA adapters for ``config`` (seeded init)."""
        import torch
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)
        lora = LoraConfig(r=config["lora_rank"], lora_alpha=config["lora_alpha"], lora_dropout=config["lora_dropout"],
                          target_modules=list(self.setup.target_modules), task_type="CAUSAL_LM")
        return get_peft_model(copy.deepcopy(self.base), lora)

    def autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_steps(self, model, optimizer, scheduler, batches, steps: int) -> list[float]:
        """Run ``steps`` optimizer steps; return the loss of each. Stops at a non-finite loss."""
        losses = []
        model.train()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(self.setup.gradient_accumulation):
                input_ids, labels, mask = next(batches)
                with self.autocast():
                    loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
                (loss / self.setup.gradient_accumulation).backward()
                total += loss.item() / self.setup.gradient_accumulation
            losses.append(total)
            if not math.isfinite(total):
                return losses
            optimizer.step()
            scheduler.step()
        return losses

    def score(self, model, seed: int) -> dict[str, tuple[float, float]]:
        """lm-eval on the in-memory model: objective -> (value, standard error)."""
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        model.eval()
        lm = HFLM(pretrained=model, tokenizer=self.tokenizer, batch_size=self.setup.eval_batch_size,
                  max_length=self.setup.max_length * 4)
        tasks = sorted({task for task, _ in self.setup.objectives.values()})
        with self.autocast():
            out = simple_evaluate(model=lm, tasks=tasks, task_manager=self.task_manager, limit=self.setup.eval_limit,
                                  random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                  fewshot_random_seed=seed, log_samples=False, verbosity="ERROR")
        scores = {}
        for name, (task, metric) in self.setup.objectives.items():
            results = out["results"][task]
            scores[name] = (float(results[f"{metric},none"]), float(results.get(f"{metric}_stderr,none", math.nan)))
        self.items = sum(out.get("n-samples", {}).get(task, {}).get("effective", 0) for task in tasks) or None
        return scores

    def evaluate(self, config: dict[str, Any], steps: int, seed: int) -> Result:
        import torch
        from transformers import get_cosine_schedule_with_warmup

        started, cpu_started = time.perf_counter(), time.process_time()
        rng = random.Random(seed)
        model = self.adapted(config, seed)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config["learning_rate"], weight_decay=config["weight_decay"])
        scheduler = get_cosine_schedule_with_warmup(optimizer, min(self.setup.warmup_steps, steps), steps)
        batches = self._batches(rng)
        levels = sorted({level for level in self.setup.curve if level < steps} | {steps})
        curve, losses, train_seconds, eval_seconds, done = [], [], 0.0, 0.0, 0
        try:
            for level in levels:
                tick = time.perf_counter()
                losses += self.train_steps(model, optimizer, scheduler, batches, level - done)
                train_seconds += time.perf_counter() - tick
                done = level
                if not math.isfinite(losses[-1]):
                    return Result.failure(f"non-finite training loss {losses[-1]} at step {len(losses)}",
                                          time.perf_counter() - started, Status.DIVERGED, fidelity=steps,
                                          extra={"losses": losses, "curve": curve})
                tick = time.perf_counter()
                scores = self.score(model, seed)
                eval_seconds += time.perf_counter() - tick
                # the learning-curve contract of bench table build: what an evaluation stopped here costs
                curve.append({"steps": level, "train_loss": losses[-1], **{k: v for k, (v, _) in scores.items()},
                              **{f"{k}_stderr": stderr for k, (_, stderr) in scores.items()}, "items": self.items,
                              "cpu_seconds": time.process_time() - cpu_started,
                              "wall_seconds": time.perf_counter() - started})
        except torch.OutOfMemoryError as exc:
            return Result.failure(f"OutOfMemoryError: {str(exc).splitlines()[0]}", time.perf_counter() - started,
                                  fidelity=steps, extra={"losses": losses, "curve": curve})
        extra = {
            "curve": curve, "losses": losses, "train_seconds": train_seconds, "eval_seconds": eval_seconds,
            "peak_memory_mb": peak_memory_mb(self.device), "device": str(self.device),
            "autocast": str(self.autocast_dtype), "tokens_per_step": self.setup.batch_size * self.setup.max_length
            * self.setup.gradient_accumulation,
            **{f"{k}_stderr": stderr for k, (_, stderr) in scores.items()},
        }
        return Result({k: v for k, (v, _) in scores.items()}, cost=train_seconds + eval_seconds, source="live",
                      fidelity=steps, extra=extra)


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
