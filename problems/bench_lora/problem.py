"""The LoRA HPO problem; in table mode every answer comes from (or is predicted from) a table."""

from __future__ import annotations

from bench.problem import Objective, Problem
from bench.tables import Table, TableError
from bench.trial import Result
from bench_lora.spaces import lora_space

OBJECTIVES = (
    Objective("hellaswag_acc", "max", bounds=(0.0, 1.0)),
    Objective("hellaswag_acc_norm", "max", bounds=(0.0, 1.0)),
    Objective("mmlu_acc", "max", bounds=(0.0, 1.0)),
)


class LoraHPO(Problem):
    objectives = OBJECTIVES
    default_objectives = ("hellaswag_acc",)

    def __init__(self, mode: str, table: str, max_rank: int, lookup: str = "surrogate") -> None:
        super().__init__(mode)
        self.space = lora_space(max_rank)
        self.lookup = lookup
        self.table = Table(table)
        if self.table.space != self.space:
            raise TableError(f"table {table} was measured in another search space than this problem's; rebuild it")
        self.deterministic = self.table.manifest["noise"]["deterministic"]

    def evaluate(self, config, fidelity, seed) -> Result:
        return self.table.lookup(config, seed, self.lookup)

    def provenance(self):
        return {"table": self.table.name, "table_sha256": self.table.sha256, "lookup": self.lookup}
