"""Performance estimation as in the source: pre-training phase 0 (masked LM, only the new modules
trainable), phase 1 (masked LM, all weights), extractive-QA fine-tuning, SQuAD F1 / exact match.

The fidelity is the number of pre-training steps (phase 0 first, then phase 1); the MLM
validation loss is recorded along the way (the learning curve), so the source's cutoff between
the phases is a fidelity decision a multi-fidelity optimizer can make. Fine-tuning and scoring
always run in full, so every fidelity gives a real QA score. MLM logits are computed at the
masked positions only (half the cost of a full-vocabulary projection at every position); a batch
of QA windows is cut to its longest window, and padded positions are never an answer, so the
loss and the answers are those of the full width. On a CPU, whose cost is per token, a fine-tuning
batch runs as sub-batches of windows of like length (the same gradient, a quarter fewer tokens),
and scoring takes the windows in order of length. bf16 autocast runs where the hardware has it, or
as the setup's ``precision`` pins it (bench_llm.runtime.device_and_dtype); on a CPU that emulates bf16 its
matrix products run in fp32 from the bf16 operands (bench_llm.runtime.bf16_matmuls_in_fp32), ten times faster.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner import cpu_model
from bench.trial import Result, Status
from bench_llm.runtime import (LiveSetupError, bf16_matmuls_in_fp32, device_and_dtype, emulates_bf16, meant_as_path,
                               peak_memory_mb)

MAX_ANSWER_TOKENS = 48
EXPLODED = 100.0  # an MLM or QA loss above this (ln of a 30k vocabulary is 10.3) has exploded
CPU_QA_PARTS = 4  # sub-batches of a QA fine-tuning batch on a CPU (on a GPU a sub-batch costs about a whole one)


@dataclass(frozen=True)
class NasSetup:
    parent: str  # folder or hub id of a DistilBERT/BERT model with its tokenizer
    corpus: str  # text file (one document a line), or hub id[:config] with a "text" column
    qa: str  # folder with SQuAD-format train.json and test.json, one SQuAD-format file, or a hub id
    phase0_steps: int = 100
    phase1_steps: int = 100
    qa_steps: int = 150
    batch_size: int = 16
    max_length: int = 128
    stride: int = 32
    eval_items: int = 500
    curve_every: int = 25
    phase0_lr: float = 5e-4
    phase1_lr: float = 1e-4
    qa_lr: float = 1e-4
    mlm_probability: float = 0.15
    valid_batches: int = 4
    dropout: float = 0.1
    score_cutoff: bool = False  # past the cutoff, also fine-tune and score a copy there (a table's phase-0 level)
    precision: str = "auto"  # autocast: auto (bf16 where fast), bf16 or fp32 (bench_llm.runtime.device_and_dtype)
    mlm_head: str | None = None  # a head fitted for a parent that ships none (bench_nas.mlm_head)


def _load_lines(source: str) -> tuple[list[str], list[str]]:
    """Training and validation documents: a local text file (every 50th line validates), or a hub data set."""
    path = Path(source)
    if path.exists():
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        return [x for i, x in enumerate(lines) if i % 50], lines[::50]
    if meant_as_path(source):
        raise LiveSetupError(f"MLM corpus {source} does not exist; pass a text file or a hub data set id")
    from datasets import load_dataset

    name, _, config = source.partition(":")
    try:
        data = load_dataset(name, config or None)
    except Exception as exc:
        raise LiveSetupError(f"cannot load MLM corpus {source!r} ({type(exc).__name__}); pass a local text file") \
            from exc
    text = lambda split: [t for t in data[split]["text"] if t.strip()]  # noqa: E731
    return text("train"), text("validation")


def flatten_squad(document: dict) -> list[dict[str, Any]]:
    """SQuAD v1.1 JSON layout -> one item per question: id, context, question, answers {text, answer_start}."""
    items = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                items.append({"id": qa["id"], "context": paragraph["context"], "question": qa["question"],
                              "answers": {"text": [a["text"] for a in qa["answers"]],
                                          "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return items


def split_train_test(items: list[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """The source's split of SQuAD's train set: 80 % train, 20 % test (validation kept aside)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = int(0.8 * len(items))
    return [items[i] for i in order[:cut]], [items[i] for i in order[cut:]]


def _load_qa(source: str) -> tuple[list[dict], list[dict]]:
    path = Path(source)
    if path.is_dir():
        missing = [n for n in ("train.json", "test.json") if not (path / n).exists()]
        if missing:
            raise LiveSetupError(f"QA folder {source} lacks {missing}; it needs SQuAD-format train.json and test.json")
        return tuple(flatten_squad(json.loads((path / n).read_text())) for n in ("train.json", "test.json"))
    if path.exists():
        return split_train_test(flatten_squad(json.loads(path.read_text())))
    if meant_as_path(source):
        raise LiveSetupError(f"QA data {source} does not exist; pass a SQuAD-format file or folder, or a hub id")
    from datasets import load_dataset

    try:
        train = [dict(x) for x in load_dataset(source, split="train")]
    except Exception as exc:
        raise LiveSetupError(f"cannot load QA data set {source!r} ({type(exc).__name__}); pass a local "
                             "SQuAD-format file instead") from exc
    return split_train_test(train)


class NasLive:
    """Loads once (parent weights, tokenizer, corpus, QA features), then evaluates genotypes."""

    def __init__(self, setup: NasSetup) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from bench_nas.model import ParentWeights

        self.setup = setup
        path = Path(setup.parent)
        if not path.exists() and meant_as_path(setup.parent):
            raise LiveSetupError(f"parent model {setup.parent} does not exist; pass a folder or a hub id")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a missing MLM head is expected (phase 0 trains it), not news
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(setup.parent)
            hf, info = AutoModelForMaskedLM.from_pretrained(setup.parent, dtype=torch.float32,
                                                            output_loading_info=True)
        except OSError as exc:
            raise LiveSetupError(f"cannot load parent model {setup.parent}: {str(exc).splitlines()[0]}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        if hf.config.model_type not in ("bert", "distilbert"):
            raise LiveSetupError(f"parent {setup.parent} is a {hf.config.model_type}; a BERT or DistilBERT is needed")
        self.parent = ParentWeights.from_hf(hf, info["missing_keys"])
        del hf
        if setup.mlm_head:
            from bench_nas.mlm_head import load

            if self.parent.has_mlm_head:
                raise LiveSetupError(f"parent {setup.parent} ships a trained MLM head; set mlm_head to none")
            try:
                self.parent.tensors.update(load(setup.mlm_head, self.parent))
            except ValueError as exc:
                raise LiveSetupError(str(exc)) from exc
        self.dims = self.parent.dims
        if setup.max_length > self.dims.max_positions:
            raise LiveSetupError(f"max_length {setup.max_length} exceeds the parent's {self.dims.max_positions} "
                                 "positions; lower max_length")
        self.device, self.autocast_dtype = device_and_dtype(setup.precision)
        train_lines, valid_lines = _load_lines(setup.corpus)
        needed = (setup.phase0_steps + setup.phase1_steps) * setup.batch_size
        self.mlm_train = self._pack(train_lines, needed)
        self.mlm_valid = self._pack(valid_lines, setup.valid_batches * setup.batch_size)
        train, test = _load_qa(setup.qa)
        self.qa_train = self._qa_features(train[:setup.qa_steps * setup.batch_size], training=True)
        self.test = test[:setup.eval_items]
        self.qa_test = self._qa_features(self.test, training=False)

    # ----- data -----
    def _pack(self, lines: list[str], sequences: int):
        """Documents tokenised, joined with [SEP] and cut into [CLS] ... [SEP] sequences of max_length."""
        import torch

        tok, width = self.tokenizer, self.setup.max_length - 2
        ids: list[int] = []
        for line in lines:
            ids += tok(line, add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
            if len(ids) >= sequences * width:
                break
        rows = [[tok.cls_token_id] + ids[i:i + width] + [tok.sep_token_id]
                for i in range(0, len(ids) - width + 1, width)][:sequences]
        if not rows:
            raise LiveSetupError(f"MLM corpus {self.setup.corpus} is too short for one sequence")
        return torch.tensor(rows)

    def _qa_features(self, items: list[dict], training: bool) -> dict[str, Any]:
        """Question + context windows (max length, stride); start/end token labels for training,
        offsets and the item of each window for scoring."""
        import torch

        enc = self.tokenizer([x["question"] for x in items], [x["context"] for x in items], truncation="only_second",
                             max_length=self.setup.max_length, stride=self.setup.stride, padding="max_length",
                             padding_side="right", return_overflowing_tokens=True, return_offsets_mapping=True)
        sample = enc["overflow_to_sample_mapping"]
        features: dict[str, Any] = {"input_ids": torch.tensor(enc["input_ids"]),
                                    "attention_mask": torch.tensor(enc["attention_mask"])}
        if "token_type_ids" in enc and self.dims.type_vocab:
            features["token_type_ids"] = torch.tensor(enc["token_type_ids"])
        offsets = [[o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], enc.sequence_ids(i))]
                   for i in range(len(sample))]
        if not training:
            features.update(offsets=offsets, sample=list(sample))
            return features
        starts, ends = [], []
        for i, row in enumerate(offsets):
            answer = items[sample[i]]["answers"]
            begin = answer["answer_start"][0]
            stop = begin + len(answer["text"][0])
            inside = [j for j, o in enumerate(row) if o is not None]
            if not inside or row[inside[0]][0] > begin or row[inside[-1]][1] < stop:
                starts.append(0)  # the answer is not in this window: both point at [CLS]
                ends.append(0)
            else:
                starts.append(next(j for j in inside if row[j][1] > begin))
                ends.append(next(j for j in reversed(inside) if row[j][0] < stop))
        features.update(start=torch.tensor(starts), end=torch.tensor(ends))
        return features

    def _masked(self, ids, generator):
        """BERT's masking: 15 % of the ordinary tokens; of those 80 % [MASK], 10 % random, 10 % kept."""
        import torch

        tok = self.tokenizer
        labels = ids.clone()
        special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (ids == tok.pad_token_id)
        chosen = (torch.rand(ids.shape, generator=generator) < self.setup.mlm_probability) & ~special
        labels[~chosen] = -100
        inputs = ids.clone()
        draw = torch.rand(ids.shape, generator=generator)
        inputs[chosen & (draw < 0.8)] = tok.mask_token_id
        swap = chosen & (draw >= 0.8) & (draw < 0.9)
        inputs[swap] = torch.randint(len(tok), ids.shape, generator=generator)[swap]
        return inputs, labels

    # ----- training -----
    def autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _mlm_loss(self, model, ids, generator):
        import torch.nn.functional as F

        inputs, labels = self._masked(ids, generator)
        inputs, labels = inputs.to(self.device), labels.to(self.device)
        with self.autocast():
            hidden = model.encode(inputs, (inputs != self.tokenizer.pad_token_id).long())
            where = labels != -100
            logits = model.mlm_logits(hidden[where])
        return F.cross_entropy(logits.float(), labels[where])

    def mlm_validation_loss(self, model) -> float:
        import torch

        model.eval()
        generator = torch.Generator().manual_seed(0)  # the same masks for every candidate and step
        losses = []
        with torch.no_grad():
            for batch in self.mlm_valid.split(self.setup.batch_size):
                losses.append(self._mlm_loss(model, batch, generator).item())
        model.train()
        return sum(losses) / len(losses)

    @staticmethod
    def _optimizer(params, lr: float, steps: int):
        import torch

        # fused: one pass over the weights a step, not one per operation (an eighth of a CPU fine-tuning step)
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, fused=True)
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
        return optimizer, schedule

    def pretrain(self, model, new: set[str], steps: int, seed: int, at_cutoff=None,
                 cpu: dict[str, float] | None = None) -> tuple[list[dict], float]:
        """Phase 0 then phase 1 for ``steps`` steps in all; the curve and the seconds it took (``at_cutoff(model,
        curve)`` not counted, called between the phases when both run). Each phase's CPU seconds go into ``cpu``.
        Raises Diverged at a non-finite or exploding loss, with the curve so far."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.mlm_train), generator=generator)
        curve, started, done, aside = [], time.perf_counter(), 0, 0.0
        phases = [(0, min(steps, self.setup.phase0_steps), self.setup.phase0_lr),
                  (1, max(0, steps - self.setup.phase0_steps), self.setup.phase1_lr)]
        model.train()
        for phase, count, lr in phases:
            if count == 0:
                continue
            if phase == 1 and at_cutoff is not None:
                tick = time.perf_counter()
                at_cutoff(model, curve)
                aside += time.perf_counter() - tick
            phase_started = time.process_time()
            for name, p in model.named_parameters():
                p.requires_grad_(phase == 1 or (name in new and not name.startswith("qa.")))
            trainable = [p for p in model.parameters() if p.requires_grad]
            optimizer, schedule = self._optimizer(trainable, lr, count) if trainable else (None, None)
            recent: list[float] = []
            for _ in range(count):
                index = order[torch.arange(done * self.setup.batch_size, (done + 1) * self.setup.batch_size)
                              % len(order)]
                if optimizer is not None:  # a phase 0 with nothing new (the parent itself) trains nothing
                    loss = self._mlm_loss(model, self.mlm_train[index], generator)
                    value = loss.item()
                    recent.append(value)
                    if not math.isfinite(value) or value > EXPLODED:
                        raise Diverged(f"MLM loss {value} at pre-training step {done + 1} (phase {phase})", curve)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimizer.step()
                    schedule.step()
                done += 1
                if done % self.setup.curve_every == 0 or done in (steps, self.setup.phase0_steps):  # and the cutoff
                    curve.append({"steps": done, "phase": phase, "mlm_train_loss": _mean(recent),
                                  "mlm_val_loss": self.mlm_validation_loss(model)})
                    recent = []
            if cpu is not None:
                cpu[f"phase{phase}_cpu_seconds"] = time.process_time() - phase_started
        for p in model.parameters():
            p.requires_grad_(True)
        return curve, time.perf_counter() - started - aside

    def finetune(self, model, seed: int) -> list[float]:
        import torch
        import torch.nn.functional as F

        features = self.qa_train
        generator = torch.Generator().manual_seed(seed + 1)
        trainable = [p for n, p in model.named_parameters() if not n.startswith("mlm.")]
        optimizer, schedule = self._optimizer(trainable, self.setup.qa_lr, self.setup.qa_steps)
        order = torch.randperm(len(features["input_ids"]), generator=generator)
        widths = features["attention_mask"].sum(1)
        parts = 1 if self.device.type == "cuda" else CPU_QA_PARTS
        losses = []
        model.train()
        for step in range(self.setup.qa_steps):
            index = order[torch.arange(step * self.setup.batch_size, (step + 1) * self.setup.batch_size) % len(order)]
            index = index[widths[index].argsort(stable=True)]
            optimizer.zero_grad(set_to_none=True)
            value = 0.0
            for part in index.chunk(parts):  # the batch's mean loss, its windows' gradients summed a part at a time
                batch = _trimmed({k: features[k][part] for k in ("input_ids", "attention_mask", "token_type_ids",
                                                                 "start", "end") if k in features}, self.device)
                with self.autocast():
                    start, end = model.qa_logits(batch["input_ids"], batch["attention_mask"],
                                                 batch.get("token_type_ids"))
                padding = batch["attention_mask"] == 0  # never an answer: the loss is the same at any padded width
                start, end = start.float().masked_fill(padding, -math.inf), end.float().masked_fill(padding, -math.inf)
                loss = (F.cross_entropy(start, batch["start"], reduction="sum")
                        + F.cross_entropy(end, batch["end"], reduction="sum")) / (2 * len(index))
                loss.backward()
                value += loss.item()
            losses.append(value)
            if not math.isfinite(value) or value > EXPLODED:
                raise Diverged(f"QA loss {value} at fine-tuning step {step + 1}", [])
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
        return losses

    def predict(self, model) -> dict[str, str]:
        """The best answer span per question over its windows (end >= start, at most MAX_ANSWER_TOKENS)."""
        import torch

        features, best = self.qa_test, {}
        by_width = features["attention_mask"].sum(1).argsort(stable=True)  # windows of like length batched together
        model.eval()
        with torch.no_grad():
            for lo in range(0, len(by_width), 64):
                rows = by_width[lo:lo + 64]
                part = _trimmed({k: features[k][rows] for k in ("input_ids", "attention_mask", "token_type_ids")
                                 if k in features}, self.device)
                with self.autocast():
                    start, end = model.qa_logits(part["input_ids"], part["attention_mask"], part.get("token_type_ids"))
                for i, s, e in zip(rows.tolist(), start.float(), end.float()):
                    offsets = features["offsets"][i][:len(s)]
                    valid = torch.tensor([o is not None for o in offsets], device=s.device)
                    s, e = s.masked_fill(~valid, -math.inf), e.masked_fill(~valid, -math.inf)
                    pair = s[:, None] + e[None, :]
                    n = pair.shape[0]
                    allowed = torch.ones(n, n, dtype=torch.bool, device=s.device).triu().tril(MAX_ANSWER_TOKENS - 1)
                    pair = pair.masked_fill(~allowed, -math.inf)
                    flat = int(pair.argmax())
                    a, b = divmod(flat, n)
                    value = float(pair[a, b])
                    item = self.test[features["sample"][i]]
                    if math.isfinite(value) and value > best.get(item["id"], (-math.inf, ""))[0]:
                        best[item["id"]] = (value, item["context"][offsets[a][0]:offsets[b][1]])
        model.train()
        return {k: text for k, (_, text) in best.items()}

    def latency_ms(self, model, repeats: int = 5) -> float:
        """Median time of one QA forward pass on a fixed batch (batch size x max length) on this device."""
        import statistics

        import torch

        batch = {k: self.qa_test[k][:self.setup.batch_size].to(self.device) for k in
                 ("input_ids", "attention_mask", "token_type_ids") if k in self.qa_test}
        model.eval()
        times = []
        with torch.no_grad(), self.autocast():
            for i in range(repeats + 1):
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                tick = time.perf_counter()
                model.qa_logits(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                if i:  # the first pass warms up
                    times.append(time.perf_counter() - tick)
        model.train()
        return 1000 * statistics.median(times)

    def evaluate(self, genotype, steps: int, seed: int) -> Result:
        import contextlib

        emulated = emulates_bf16(self.device, self.autocast_dtype)
        with bf16_matmuls_in_fp32() if emulated else contextlib.nullcontext():
            return self._evaluate(genotype, steps, seed, emulated)

    def _evaluate(self, genotype, steps: int, seed: int, emulated: bool) -> Result:
        """Pre-train to ``steps``, fine-tune, score. The learning curve (``extra["curve"]``, a table's rows) has a
        point at ``steps`` and, with ``score_cutoff`` and ``steps`` past it, one at the cutoff, scored on a copy
        of the model with its own random numbers, so phase 1 goes on as if it had not been; each point's CPU and
        wall seconds are what an evaluation stopped there costs."""
        import copy

        import torch

        from bench_nas.genotype import Genotype, count_params
        from bench_nas.model import build

        started, cpu_started = time.perf_counter(), time.process_time()
        model, new = build(genotype, self.parent, seed, self.setup.dropout)
        model.to(self.device)
        params = float(count_params(genotype))
        extra: dict[str, Any] = {"new_modules": [f"block{i}.{m}" for i, m in genotype.new_modules()],
                                 "device": str(self.device), "autocast": str(self.autocast_dtype),
                                 "bf16_matmuls_in_fp32": emulated, "cpu": cpu_model(),
                                 "params_ratio": params / count_params(Genotype.parent(self.dims))}
        cpu: dict[str, float] = {}
        points: list[dict[str, Any]] = []
        aside = {"wall": 0.0, "cpu": 0.0}  # the cutoff's scoring, which an evaluation stopped later does not pay

        def at_cutoff(trained, curve) -> None:
            wall, cpu_now = time.perf_counter(), time.process_time()
            copied = copy.deepcopy(trained)
            for p in copied.parameters():  # as pre-training leaves a model: every weight trainable
                p.requires_grad_(True)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                point, _ = self._scored(copied, self.setup.phase0_steps, curve, cpu, params, seed)
            points.append({**point, "cpu_seconds": time.process_time() - cpu_started,
                           "wall_seconds": time.perf_counter() - started})
            aside["wall"] += time.perf_counter() - wall
            aside["cpu"] += time.process_time() - cpu_now

        try:
            curve, extra["pretrain_seconds"] = self.pretrain(
                model, new, steps, seed, at_cutoff if self.setup.score_cutoff else None, cpu)
            extra["mlm_curve"] = curve
            point, extra["qa_losses"] = self._scored(model, steps, curve, cpu, params, seed)
        except Diverged as exc:
            return Result.failure(str(exc), time.perf_counter() - started, Status.DIVERGED, fidelity=steps,
                                  extra={**extra, "mlm_curve": exc.curve, "curve": points})
        points.append({**point, "cpu_seconds": time.process_time() - cpu_started - aside["cpu"],
                       "wall_seconds": time.perf_counter() - started - aside["wall"]})
        extra.update({k: point[k] for k in ("f1", "exact_match", "finetune_seconds", "eval_seconds")},
                     curve=points, peak_memory_mb=peak_memory_mb(self.device))
        objectives = {name: point[name] for name in ("qa_score", "params", "latency_ms")}
        return Result(objectives, cost=time.perf_counter() - started - aside["wall"], source="live", fidelity=steps,
                      extra=extra)

    def _scored(self, model, steps: int, curve: list[dict], cpu: dict[str, float], params: float,
                seed: int) -> tuple[dict[str, Any], list[float]]:
        """``model`` pre-trained to ``steps``, fine-tuned and scored: its learning-curve point (the objectives, F1
        and EM, the MLM validation loss after each phase run so far, each stage's CPU seconds) and QA losses."""
        from bench_nas.squad import score

        tick, cpu_tick = time.perf_counter(), time.process_time()
        losses = self.finetune(model, seed)
        finetune = {"finetune_seconds": time.perf_counter() - tick,
                    "finetune_cpu_seconds": time.process_time() - cpu_tick}
        tick, cpu_tick = time.perf_counter(), time.process_time()
        scores = score(self.predict(model), {x["id"]: x["answers"]["text"] for x in self.test})
        latency = self.latency_ms(model)
        scoring = {"eval_seconds": time.perf_counter() - tick, "scoring_cpu_seconds": time.process_time() - cpu_tick}
        at = {c["phase"]: c["mlm_val_loss"] for c in curve if c["steps"] in (self.setup.phase0_steps, steps)}
        point = {"pretrain_steps": steps, "qa_score": (scores["f1"] + scores["exact_match"]) / 2, "params": params,
                 "latency_ms": latency, "f1": scores["f1"], "exact_match": scores["exact_match"],
                 "mlm_val_loss_phase0": at.get(0), "mlm_val_loss_phase1": at.get(1) if steps > self.setup.phase0_steps
                 else None, **cpu, **finetune, **scoring}  # cpu: the phases run so far
        return point, losses


def _trimmed(batch: dict, device) -> dict:
    """A batch of padded windows cut to its longest one (padding is on the right), on ``device``: QA windows
    of glosses are about half their max length, and padding costs as much as text."""
    width = int(batch["attention_mask"].sum(1).max())
    return {k: (v[:, :width] if v.dim() == 2 else v).to(device) for k, v in batch.items()}


class Diverged(Exception):
    def __init__(self, message: str, curve: list[dict]) -> None:
        super().__init__(message)
        self.curve = curve


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
