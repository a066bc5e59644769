"""Live LoRA fine-tuning: transformers + peft training, lm-eval scoring of the in-memory model.

One evaluation: copy the base model, attach LoRA adapters with the configuration's rank,
alpha and dropout, train with AdamW (learning rate, weight decay), linear warm-up and the
instance's cosine schedule, stopped after ``steps`` optimizer steps (the fidelity), and score
with lm-eval at each of the instance's curve levels up to ``steps`` (a learning curve), without
merging or saving. A lower fidelity is a prefix of the full run, so a table's curve points are
what a live evaluation at that fidelity returns. Batches are packed without padding and scored
with each context computed once (bench_lora.packing). bf16 autocast runs where the hardware has
it (CUDA, or a CPU with AVX-512 bf16 / AMX).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench.runner import cpu_model
from bench.trial import Result, Status
from bench_llm.runtime import LiveSetupError, device_and_dtype, meant_as_path, peak_memory_mb
from bench_lora.packing import packed_loglikelihoods, packed_loss


@dataclass(frozen=True)
class LiveSetup:
    """Everything an instance fixes: which model, data and tasks, and how to train."""

    model: str  # a local folder, or a hub id where a hub is reachable
    data: str  # Alpaca-format JSON or JSON Lines: instruction, input, output
    objectives: dict[str, tuple[str, str]]  # objective name -> (lm-eval task, metric)
    steps: int = 60  # the schedule's length: the full fidelity; a lower fidelity stops this schedule early
    task_dir: str | None = None  # folder of task YAMLs ("{data_dir}" becomes its absolute path); None: lm-eval's own
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
    max_length: int = 128
    batch_size: int = 8
    gradient_accumulation: int = 1
    warmup_steps: int = 10
    eval_batch_size: int = 16
    eval_limit: int | None = None  # items scored at the full fidelity (None: all)
    curve: tuple[int, ...] = ()  # steps at which the learning curve is scored (the fidelity levels)
    curve_eval_limit: int | None = None  # items scored below the full fidelity (None: as eval_limit)
    row_tokens: int = 256  # tokens packed into one row of a padding-free forward pass

    def items_at(self, steps: int) -> int | None:
        """How many items a curve point is scored on: fewer before the full fidelity, where only
        the ranking of runs, not the final value, is needed."""
        if steps >= self.steps or self.curve_eval_limit is None:
            return self.eval_limit
        return self.curve_eval_limit


def render_tasks(task_dir: Path) -> Path:
    """The task YAMLs with ``{data_dir}`` replaced by the absolute data folder (lm-eval resolves
    data files against the working directory otherwise), in a temporary folder named by their
    content, so repeated loads reuse it. Each file is staged and renamed: workers rendering the
    same folder at once never read one another's half-written file."""
    task_dir = task_dir.resolve()
    texts = {y.name: y.read_text().replace("{data_dir}", str(task_dir)) for y in sorted(task_dir.glob("*.yaml"))}
    digest = hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"bench-lm-eval-{digest}"
    out.mkdir(exist_ok=True)
    for name, text in texts.items():
        handle, staged = tempfile.mkstemp(suffix=".staged", dir=out)
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(staged, out / name)
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

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.setup.model)
            model = AutoModelForCausalLM.from_pretrained(self.setup.model, dtype=torch.float32)
        except OSError as exc:
            raise LiveSetupError(f"cannot load model {self.setup.model}: {str(exc).splitlines()[0]}") from exc
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, model.to(self.device)

    def _examples(self, rng: random.Random):
        """Endless shuffled (token ids, labels with the prompt masked), truncated to max_length."""
        tok, size = self.tokenizer, self.setup.max_length
        order: list[int] = []
        while True:
            if not order:
                order = list(range(len(self.examples)))
                rng.shuffle(order)
            item = self.examples[order.pop()]
            prompt = tok(prompt_of(item), add_special_tokens=False)["input_ids"]
            answer = tok(item["output"] + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
            yield (prompt + answer)[:size], ([-100] * len(prompt) + answer)[:size]

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

    def train_steps(self, model, optimizer, scheduler, examples, steps: int) -> list[float]:
        """Run ``steps`` optimizer steps on packed batches; return the loss of each. Stops at a
        non-finite loss."""
        losses = []
        model.train()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for _ in range(self.setup.gradient_accumulation):
                batch = [next(examples) for _ in range(self.setup.batch_size)]
                with self.autocast():
                    loss = packed_loss(model, batch, self.setup.row_tokens)
                (loss / self.setup.gradient_accumulation).backward()
                total += loss.item() / self.setup.gradient_accumulation
            losses.append(total)
            if not math.isfinite(total):
                return losses
            optimizer.step()
            scheduler.step()
        return losses

    def score(self, model, seed: int, limit: int | None) -> tuple[dict[str, tuple[float, float]], int]:
        """lm-eval on the in-memory model (the first ``limit`` items of each task): objective ->
        (value, standard error), and how many items were scored."""
        from lm_eval import simple_evaluate

        model.eval()
        lm = packed_lm_class()(pretrained=model, tokenizer=self.tokenizer, batch_size=self.setup.eval_batch_size,
                               max_length=self.setup.max_length * 4, row_tokens=self.setup.row_tokens)
        tasks = sorted({task for task, _ in self.setup.objectives.values()})
        with self.autocast():
            out = simple_evaluate(model=lm, tasks=tasks, task_manager=self.task_manager, limit=limit,
                                  random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                  fewshot_random_seed=seed, log_samples=False, verbosity="ERROR")
        scores = {}
        for name, (task, metric) in self.setup.objectives.items():
            results = out["results"][task]
            scores[name] = (float(results[f"{metric},none"]), float(results.get(f"{metric}_stderr,none", math.nan)))
        return scores, sum(out["n-samples"][task]["effective"] for task in tasks)

    def evaluate(self, config: dict[str, Any], steps: int, seed: int) -> Result:
        """Train ``steps`` steps of the instance's schedule, scoring at each curve level on the way.

        The cost is the process's CPU seconds on a CPU (it does not depend on what else the machine
        runs), wall seconds on a GPU; both are kept in ``extra`` and cumulatively at each curve point,
        where they are what an evaluation stopped there costs."""
        import torch
        from transformers import get_cosine_schedule_with_warmup

        clock = _Clock()
        rng = random.Random(seed)
        model = self.adapted(config, seed)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config["learning_rate"], weight_decay=config["weight_decay"])
        scheduler = get_cosine_schedule_with_warmup(optimizer, self.setup.warmup_steps, self.setup.steps)
        examples = self._examples(rng)
        levels = sorted({level for level in self.setup.curve if level < steps} | {steps})
        curve: list[dict[str, Any]] = []
        losses: list[float] = []
        done = 0
        try:
            for level in levels:
                with clock.part("train"):
                    losses += self.train_steps(model, optimizer, scheduler, examples, level - done)
                done = level
                if not math.isfinite(losses[-1]):
                    return Result.failure(f"non-finite training loss {losses[-1]} at step {len(losses)}",
                                          clock.cost(self.device), Status.DIVERGED, fidelity=steps,
                                          extra={"losses": losses, "curve": curve, **clock.totals()})
                with clock.part("eval"):
                    scores, items = self.score(model, seed, self.setup.items_at(level))
                curve.append({"steps": level, "train_loss": losses[-1], "items": items,
                              **{k: v for k, (v, _) in scores.items()},
                              **{f"{k}_stderr": se for k, (_, se) in scores.items()},
                              "cost_seconds": clock.cost(self.device), **clock.totals()})
        except torch.OutOfMemoryError as exc:
            return Result.failure(f"OutOfMemoryError: {str(exc).splitlines()[0]}", clock.cost(self.device),
                                  fidelity=steps, extra={"losses": losses, "curve": curve, **clock.totals()})
        extra = {
            "curve": curve, "losses": losses, **clock.totals(), "peak_memory_mb": peak_memory_mb(self.device),
            "device": str(self.device), "autocast": str(self.autocast_dtype), "cpu": cpu_model(),
            "torch_threads": torch.get_num_threads(), **{f"{k}_stderr": stderr for k, (_, stderr) in scores.items()},
        }
        return Result({k: v for k, (v, _) in scores.items()}, cost=clock.cost(self.device), source="live",
                      fidelity=steps, extra=extra)


class _Clock:
    """CPU and wall seconds of an evaluation, by part (train, eval)."""

    def __init__(self) -> None:
        self.cpu = {"train": 0.0, "eval": 0.0}
        self.wall = {"train": 0.0, "eval": 0.0}

    @contextmanager
    def part(self, name: str):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[name] += time.process_time() - cpu
            self.wall[name] += time.perf_counter() - wall

    def totals(self) -> dict[str, float]:
        return {"cpu_seconds": sum(self.cpu.values()), "wall_seconds": sum(self.wall.values()),
                "train_cpu_seconds": self.cpu["train"], "eval_cpu_seconds": self.cpu["eval"],
                "train_seconds": self.wall["train"], "eval_seconds": self.wall["eval"]}

    def cost(self, device) -> float:
        return sum(self.cpu.values()) if device.type == "cpu" else sum(self.wall.values())


@cache
def packed_lm_class():
    """lm-eval's HFLM, scoring log-likelihood requests with packed forward passes (each context
    once, logits only where a continuation token is predicted); a request longer than the
    model's window goes to HFLM's own path. lm-eval still builds the requests, takes the metrics
    and aggregates them."""
    from lm_eval.models.huggingface import HFLM

    class PackedHFLM(HFLM):
        def __init__(self, *args, row_tokens: int, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.row_tokens = row_tokens

        def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
            results: list[tuple[float, bool] | None] = [None] * len(requests)
            fits = [i for i, (_, ctx, cont) in enumerate(requests) if len(ctx) + len(cont) <= self.max_length]
            chunk: list[int] = []
            tokens = 0
            for i in fits + [None]:
                size = 0 if i is None else len(requests[i][1]) + len(requests[i][2])
                if chunk and (i is None or tokens + size > self.row_tokens * self.batch_size):
                    pairs = [(requests[j][1], requests[j][2]) for j in chunk]
                    for j, answer in zip(chunk, packed_loglikelihoods(self.model, pairs, self.row_tokens)):
                        results[j] = answer
                        self.cache_hook.add_partial("loglikelihood", requests[j][0], answer)
                    chunk, tokens = [], 0
                if i is not None:
                    chunk.append(i)
                    tokens += size
            rest = [i for i in range(len(requests)) if results[i] is None]
            if rest:
                for i, answer in zip(rest, super()._loglikelihood_tokens([requests[i] for i in rest], disable_tqdm,
                                                                         override_bs)):
                    results[i] = answer
            return results

    return PackedHFLM
