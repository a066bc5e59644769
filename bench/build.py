"""``bench table build``: measure a table with the suite's own live code.

A build evaluates a fixed space-filling design (scrambled Sobol) live, through the ordinary
runner and store: one run for the first seed over all N design points, and one run per
further seed over K of them (repeats, for the noise model). The store makes a killed build
resumable by the runner's replay. After every trial the runs are also rewritten as JSON Lines
(``DIR/<name>.trials.jsonl``): the text people commit, the canonical measured data. The store
can be rebuilt from it, and the table is always written from it alone, so a table rebuilt
from committed rows is byte-identical.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.hookspecs import Capabilities, load_factory
from bench.optimizer import Optimizer
from bench.problem import Problem
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.space import from_unit
from bench.store import Store, read_jsonl
from bench.tables import TableError, level_key, read_manifest, space_of, tables_dir, write_table
from bench.trial import Status, Trial

DESIGNS = ("sobol",)
VOLATILE_SETUP = ("libraries",)  # problem_info fields that may differ between builds of one table


class BuildError(ValueError):
    """Input a build refuses before any evaluation; the message names the fix."""


@dataclass(frozen=True)
class Design:
    kind: str
    points: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.points}"


def parse_design(text: str, kinds: tuple[str, ...] = DESIGNS) -> Design:
    """``kind:N``, the kind one of ``kinds`` (sobol and those of the problem's own)."""
    match = re.fullmatch(r"\s*([a-z]+)\s*:\s*(\d+)\s*", text)
    if not match or match[1] not in kinds or int(match[2]) < 1:
        raise BuildError(f"{text!r} is not a design; write it like sobol:64 (kinds: {', '.join(kinds)};"
                         " at least 1 point)")
    return Design(match[1], int(match[2]))


def design_configs(problem: Problem, design: Design) -> list[dict[str, Any]]:
    """The first N points of a scrambled Sobol sequence (seed 0), mapped into the problem's space; or the
    problem's own design of that kind."""
    if design.kind != "sobol":
        return problem.design(design.kind, design.points)
    from scipy.stats import qmc

    space = problem.space
    sobol = qmc.Sobol(d=len(space), scramble=True, seed=0)
    n = design.points
    with warnings.catch_warnings():  # N not a power of two: the user chose to give up Sobol balance
        warnings.simplefilter("ignore", UserWarning)
        unit = sobol.random_base2(n.bit_length() - 1) if n & (n - 1) == 0 else sobol.random(n)
    return [from_unit(space, u) for u in unit]


class FixedDesign(Optimizer):
    """Proposes a fixed list of configurations, in order, each at the problem's full fidelity."""

    capabilities = Capabilities(multi_objective=True)

    def __init__(self, space, objectives, configs: list[dict[str, Any]], *, fidelity=None, seed=0, budget=None):
        super().__init__(space, objectives, fidelity=fidelity, seed=seed, budget=budget)
        self.configs = configs
        self.proposed = 0

    def ask(self, n: int = 1) -> list[Trial]:
        full = None if self.fidelity is None else self.fidelity.max
        start, self.proposed = self.proposed, min(self.proposed + n, len(self.configs))
        return [Trial(dict(config), full) for config in self.configs[start:self.proposed]]


def table_name(problem: str) -> str:
    return problem.replace("/", "-")


def comparable_setup(info: dict[str, Any]) -> Any:
    """A run card's ``problem_info`` without what may differ between builds of one table: library
    versions (reported, not compared) and where local files sit (only their names count)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_SETUP}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str) and os.path.isabs(value):
            return Path(value).name
        return value

    return strip(json.loads(json.dumps(info)))


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if a == b else f"{where}: {b!r} here, {a!r} in the table"


@dataclass
class _Plan:
    problem_name: str
    design: Design
    seeds: list[int]
    repeats: int
    out: Path
    name: str
    store: Path
    rows: Path


def _plan(registry: Registry, problem_name: str, design: str | Design, seeds: list[int], repeats: int, out: Path,
          store: str | Path | None) -> _Plan:
    """Every check that needs no problem instance, so bad input is refused in milliseconds."""
    spec = registry.problem(problem_name)
    if "live" not in spec.modes:
        raise BuildError(f"problem {problem_name} has no live mode (modes: {', '.join(spec.modes)}); a table is"
                         " measured live, so choose a problem with a live mode")
    kinds = DESIGNS + tuple(getattr(load_factory(spec.factory), "designs", {}))
    design = parse_design(design, kinds) if isinstance(design, str) else design
    if not seeds:
        raise BuildError("no seeds given; write --seeds like 0 or 0-2")
    if not 0 <= repeats <= design.points:
        raise BuildError(f"--repeats {repeats} must be between 0 and the design's {design.points} points")
    if len(seeds) > 1 and repeats == 0:
        raise BuildError(f"--seeds lists {len(seeds)} seeds but --repeats is 0; give --repeats K to measure K"
                         " design points again on each further seed")
    if len(seeds) == 1 and repeats:
        raise BuildError(f"--repeats {repeats} needs more than one seed (the first seed measures every point);"
                         " give --seeds like 0-2")
    name = table_name(problem_name)
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out} is a file; give a folder")
    if (out / f"{name}.json").exists():
        try:
            held = read_manifest(name, out).get("problem")
        except TableError as exc:
            raise BuildError(f"--out {out} holds a table {name} that cannot be read ({exc}); give this build another"
                             " folder") from exc
        if held != problem_name:
            raise BuildError(f"--out {out} holds a table {name} of another problem; give this build another folder")
    return _Plan(problem_name, design, seeds, repeats, out, name,
                 Path(store) if store else out / f"{name}.build.sqlite", out / f"{name}.trials.jsonl")


def _runs(plan: _Plan, problem: Problem, workers: int) -> list[tuple[RunSpec, list[dict[str, Any]]]]:
    """One run per seed: the first over every design point, the others over the K repeated ones."""
    configs = design_configs(problem, plan.design)
    first, *others = plan.seeds
    runs = [(RunSpec(plan.problem_name, f"design:{plan.design}", first, len(configs), "live", workers), configs)]
    repeated = [configs[i * len(configs) // plan.repeats] for i in range(plan.repeats)]
    runs += [(RunSpec(plan.problem_name, f"design:{plan.design}:repeats:{plan.repeats}", seed, len(repeated),
                      "live", workers), repeated) for seed in others]
    return runs


def _base_runs(append: str, problem: Problem, problem_name: str) -> list[dict[str, Any]]:
    """The measured runs of the table to extend, refused unless it is this problem in this space and setup."""
    given = Path(append)
    manifest_path = given if given.suffix == ".json" else tables_dir() / f"{append}.json"
    manifest = read_manifest(manifest_path.stem, manifest_path.parent)
    name = manifest["name"]
    if manifest.get("problem") != problem_name:
        raise BuildError(f"--append {append}: table {name} is of problem {manifest.get('problem')}, not"
                         f" {problem_name}; append only onto a table of the same problem")
    if space_of(manifest) != problem.space:
        raise BuildError(f"--append {append}: table {name} was measured in another search space than"
                         f" {problem_name}'s; build a new table instead")
    rows = manifest_path.parent / f"{name}.trials.jsonl"
    if not rows.exists():
        raise BuildError(f"--append {append}: table {name} has no measured rows file {rows.name} (it was not made"
                         " by bench table build); build a new table instead")
    runs = read_jsonl(rows)
    mine = comparable_setup(problem.describe())
    for base in runs:
        difference = _first_difference(comparable_setup(base["card"]["problem_info"]), mine)
        if difference:
            raise BuildError(f"--append {append}: table {name} was measured with another live setup ({difference});"
                             " build a new table instead")
    return runs


def build(
    registry: Registry,
    problem_name: str,
    design: str | Design,
    seeds: list[int],
    out: str | Path,
    *,
    repeats: int = 0,
    workers: int = 1,
    executor=None,
    store: str | Path | None = None,
    resume: bool = False,
    append: str | None = None,
    progress: Callable[[RunSpec, int, float], None] | None = None,
) -> dict[str, Any]:
    """Measure (or resume, or just rewrite) the table of ``problem_name`` in folder ``out``; return its manifest.

    Every refusal happens before any evaluation and before the store or ``out`` changes.
    """
    out = Path(out)
    plan = _plan(registry, problem_name, design, seeds, repeats, out, store)
    registry = _building(registry, problem_name)
    problem = registry.problem(problem_name).create("live")
    runs = _runs(plan, problem, workers)
    base = _base_runs(append, problem, problem_name) if append else []
    keys = list(dict.fromkeys([b["run"] for b in base] + [spec.key for spec, _ in runs]))
    recorded = read_jsonl(plan.rows) if plan.rows.exists() else []
    foreign = [r for r in recorded if r["run"] not in keys]
    if foreign:
        card = foreign[0]["card"]
        raise BuildError(f"{plan.rows} holds runs of another build ({card['optimizer']}, seed {card['seed']},"
                         f" {card['workers']} workers); resume with the same --design, --seeds, --repeats and"
                         " --workers, or use another --out")
    if _complete(recorded, keys):
        return write_built_table(plan.name, problem, registry, recorded, out)

    results = Store(plan.store) if plan.store.exists() else None
    if results and _complete(_store_runs(results, keys), keys):
        results.write_jsonl(plan.rows, keys)
        return write_built_table(plan.name, problem, registry, read_jsonl(plan.rows), out)
    started = {r["run"] for r in recorded} | ({r["run"] for r in _store_runs(results, keys)} if results else set())
    if started - {b["run"] for b in base} and not resume:
        raise BuildError(f"{out} holds an unfinished build of {problem_name} (or one with fewer seeds); continue it"
                         " with --resume")

    out.mkdir(parents=True, exist_ok=True)
    results = results or Store(plan.store)
    results.load_jsonl(recorded + base)  # a store deleted (or never here) is rebuilt from the committed rows
    try:
        for spec, configs in runs:
            optimizer = FixedDesign(problem.space, problem.select_objectives(), configs, fidelity=problem.fidelity,
                                    seed=spec.seed, budget=spec.budget)

            def told(done: int, used: float, spec: RunSpec = spec) -> None:
                results.write_jsonl(plan.rows, keys)
                if progress:
                    progress(spec, done, used)

            run(spec, results, registry, problem=problem, optimizer=optimizer, resume=True, progress=told,
                executor=executor)
    finally:
        results.write_jsonl(plan.rows, keys)  # whatever was measured before a Ctrl-C or an error is kept
    return write_built_table(plan.name, problem, registry, read_jsonl(plan.rows), out)


def _building(registry: Registry, problem_name: str) -> Registry:
    """``registry`` with the problem's spec created with its ``table_build`` kwargs: process and Dask workers create
    the problem from the registry's spec, so they must measure the build's setup, which the run cards record."""
    spec = registry.problem(problem_name)
    if spec.table_build is None:
        return registry
    view = copy.copy(registry)
    view.problems = {**registry.problems, spec.name: replace(spec, kwargs=spec.table_build)}
    return view


def _complete(runs: list[dict[str, Any]], keys: list[str]) -> bool:
    status = {r["run"]: r["status"] for r in runs}
    return all(status.get(key) == "complete" for key in keys)


def _store_runs(store: Store, keys: list[str]) -> list[dict[str, Any]]:
    return [{"run": key, "status": "running" if store.unfinished_run(key) else "complete"}
            for key in keys if store.unfinished_run(key) or store.complete_run(key)]


# --- the table, from the measured rows alone -------------------------------------------------------------------

ROW_COLUMNS = ("seed", "items", "cost_seconds", "wall_seconds", "train_loss", "status", "error", "recorded")


def table_rows(runs: list[dict[str, Any]], params: list[str], objectives: list[str],
               fidelity: str | None, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per learning-curve point of every trial (a trial without a curve: one row at its fidelity);
    a failed or diverged trial adds a row at its fidelity with that status, NaN objectives and its error.
    ``columns``: the problem's own numbers, NaN where a point or result lacks one."""
    rows = []
    for run_ in runs:
        seed = run_["card"]["seed"]
        for trial in run_["trials"]:
            level = trial["result_fidelity"] if trial["result_fidelity"] is not None else trial["fidelity"]
            config = {p: trial["config"].get(p) for p in params}
            common = {"seed": seed, "recorded": trial["recorded"], "trial": (run_["run"], trial["number"])}
            curve = (trial["extra"].get("curve") or []) if fidelity else []
            for i, point in enumerate(curve):
                def need(key, point=point, i=i):
                    if key not in point:
                        raise BuildError(f"run {run_['card']['optimizer']} seed {seed}, trial {trial['number']}:"
                                         f" curve point {i} lacks {key!r}; the problem breaks the learning-curve"
                                         " contract (see bench/build.py)")
                    return point[key]

                rows.append({**config, fidelity: need(fidelity), **common,
                             **{o: float(need(o)) for o in objectives},
                             **{f"{o}_stderr": _number(point.get(f"{o}_stderr")) for o in objectives},
                             "items": point.get("items"),
                             "cost_seconds": float(point.get("cost_seconds", need("cpu_seconds"))),
                             "wall_seconds": float(need("wall_seconds")),
                             "train_loss": _number(point.get("train_loss")), "status": Status.OK.value, "error": None,
                             **{c: _number(point.get(c)) for c in columns}})
            if trial["status"] == Status.OK.value and curve and curve[-1][fidelity] == level:
                continue
            ok = trial["status"] == Status.OK.value
            extra = trial["extra"]
            rows.append({**config, **({fidelity: level} if fidelity else {}), **common,
                         **{o: float(trial["objectives"].get(o, math.nan)) if ok else math.nan for o in objectives},
                         **{f"{o}_stderr": _number(extra.get(f"{o}_stderr")) if ok else math.nan for o in objectives},
                         "items": extra.get("items") if ok else None, "cost_seconds": float(trial["cost"]),
                         "wall_seconds": float(trial["end"] - trial["start"]),
                         "train_loss": _number(extra.get("train_loss")) if ok else math.nan,
                         "status": trial["status"], "error": trial["error"],
                         **{c: _number(extra.get(c)) if ok else math.nan for c in columns}})
    return rows


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def write_built_table(name: str, problem: Problem, registry: Registry, runs: list[dict[str, Any]],
                      out: Path) -> dict[str, Any]:
    """Write ``out/name.{parquet,json,surrogate.safetensors}`` from the measured rows ``runs`` alone."""
    import pyarrow as pa

    cards = [r["card"] for r in runs]
    info = cards[0]["problem_info"]
    objectives = [o["name"] for o in info["objectives"]]
    params = list(problem.space.keys())
    fid = info["fidelity"]
    column = fid["name"] if fid else None
    own = tuple(problem.table_columns)
    rows = table_rows(runs, params, objectives, column, own)
    if fid:
        for row in rows:
            row[column] = int(row[column]) if fid["integer"] else float(row[column])
    order = params + ([column] if column else []) + objectives + [f"{o}_stderr" for o in objectives]
    order += list(ROW_COLUMNS) + list(own)
    columns = {c: [row[c] for row in rows] for c in order}
    types = {**{c: pa.float64() for c in objectives + [f"{o}_stderr" for o in objectives] + list(own)},
             "seed": pa.int64(), "items": pa.int64(), "cost_seconds": pa.float64(), "wall_seconds": pa.float64(),
             "train_loss": pa.float64(), "status": pa.string(), "error": pa.string(), "recorded": pa.string()}
    levels = sorted({row[column] for row in rows}) if column else [None]
    recorded = sorted(t["recorded"] for r in runs for t in r["trials"])
    manifest = {
        "problem": cards[0]["problem"],
        "description": f"{registry.problem(cards[0]['problem']).summary}; measured live by bench table build",
        "space": problem.space.to_serialized_dict(),
        **({"space_meta": problem.space.meta} if problem.space.meta else {}),
        "objectives": info["objectives"],
        **({"fidelity": {"name": column, "column": column, "levels": levels, "min": fid["min"], "max": fid["max"]}}
           if column else {}),
        "cost": "cost_seconds is the CPU time of an evaluation stopped at that row's level (load-independent: it"
                " drives the simulated clock), or the trial's cost where the problem reports no learning curve;"
                " wall_seconds its wall time",
        "extra_columns": [f"{o}_stderr" for o in objectives] + ["seed", "items", "wall_seconds", "train_loss"]
                         + list(own),
        **({"columns": dict(problem.table_columns)} if own else {}),
        "noise": noise_model(rows, params, info, column, levels),
        "curve_rank_correlation": curve_correlation(rows, objectives, column, levels),
        **({"signal_correlation": signal_correlation(rows, problem.table_signals, column, levels)}
           if problem.table_signals else {}),
        "provenance": {
            "built_by": "bench table build",
            "runs": [{"optimizer": c["optimizer"], "seed": c["seed"], "trials": len(r["trials"]),
                      "workers": c["workers"], "executor": c["executor"]["name"]} for r, c in zip(runs, cards)],
            "hardware": _distinct(c["hardware"] for c in cards),
            "versions": _versions(cards),
            "measured_from": recorded[0] if recorded else None,
            "measured_to": recorded[-1] if recorded else None,
            "live_setup": info,
        },
    }
    return write_table(name, columns, manifest, out, types=types, encoding=problem.encoding)


def _distinct(items) -> list:
    return list({json.dumps(item, sort_keys=True): item for item in items}.values())


def _versions(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """Suite, plugins and (where the problem reports them) libraries; several values when builds differed."""
    found: dict[str, list[str]] = {}
    for card in cards:
        named = {"bench": card["suite_version"], **card["plugins"], **card["problem_info"].get("libraries", {})}
        for key, value in named.items():
            found.setdefault(key, [])
            if value not in found[key]:
                found[key].append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in found.items()}


def _by_level(rows, column, level):
    return [r for r in rows if r["status"] == Status.OK.value and (column is None or r[column] == level)]


def noise_model(rows, params, info, column, levels) -> dict[str, Any]:
    """Seed-to-seed spread of the repeated configurations, and the binomial standard error that the
    evaluation set's size alone implies (for objectives that are proportions, bounded by [0, 1])."""
    objectives = [o["name"] for o in info["objectives"]]
    repeats: dict[str, dict] = {o: {} for o in objectives}
    evaluation: dict[str, dict] = {}
    for level in levels:
        key = level_key(level) if column else "all"
        groups: dict[tuple, list[dict]] = {}
        for row in _by_level(rows, column, level):
            groups.setdefault(tuple(row[p] for p in params), []).append(row)
        repeated = [g for g in groups.values() if len({r["seed"] for r in g}) > 1]
        for o in objectives:
            spreads = [float(np.std([r[o] for r in g], ddof=1)) for g in repeated]
            repeats[o][key] = {"configurations": len(repeated),
                               "mean_seed_std": round(statistics.fmean(spreads), 6) if spreads else None}
        sized = [r for r in _by_level(rows, column, level) if r["items"]]
        if sized:
            evaluation[key] = {"items": int(statistics.median(r["items"] for r in sized))}
            for o in (o["name"] for o in info["objectives"] if list(o.get("bounds") or []) == [0.0, 1.0]):
                stderr = [math.sqrt(r[o] * (1 - r[o]) / r["items"]) for r in sized]
                evaluation[key][o] = {"mean_binomial_stderr": round(statistics.fmean(stderr), 6)}
    return {"deterministic": info["deterministic"], "repeats": repeats, "evaluation": evaluation}


def curve_correlation(rows, objectives, column, levels) -> dict[str, Any]:
    """Per objective and lower level: Spearman rank correlation, over trials, of the value at that level with
    the value at the top level (how far a multi-fidelity optimizer can trust an early stop)."""
    from scipy.stats import spearmanr

    if column is None or len(levels) < 2:
        return {}
    top = {r["trial"]: r for r in _by_level(rows, column, levels[-1])}
    out: dict[str, dict] = {o: {} for o in objectives}
    for level in levels[:-1]:
        pairs = [(r, top[r["trial"]]) for r in _by_level(rows, column, level) if r["trial"] in top]
        for o in objectives:
            rho = float(spearmanr([a[o] for a, _ in pairs], [b[o] for _, b in pairs]).statistic) \
                if len(pairs) > 2 else math.nan
            out[o][level_key(level)] = {"trials": len(pairs), "spearman": None if math.isnan(rho) else round(rho, 4)}
    return out


def signal_correlation(rows, signals: dict[str, str], column, levels) -> dict[str, Any]:
    """Per early signal (a column, e.g. the MLM loss at the cutoff): Pearson and Spearman correlation of its value
    with the objective it stands for, over the ok rows at the top level (one a trial)."""
    from scipy.stats import pearsonr, spearmanr

    top = _by_level(rows, column, levels[-1])
    out = {}
    for signal, objective in signals.items():
        pairs = [(r[signal], r[objective]) for r in top if math.isfinite(r[signal])]
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        enough = len(pairs) > 2 and len(set(a)) > 1 and len(set(b)) > 1
        out[signal] = {"objective": objective, "trials": len(pairs),
                       "pearson": round(float(pearsonr(a, b).statistic), 4) if enough else None,
                       "spearman": round(float(spearmanr(a, b).statistic), 4) if enough else None}
    return out
