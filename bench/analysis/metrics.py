"""Per task (problem, optimized objectives, budget): anytime curves, normalized regret, ranks,
area under the curve, bootstrap confidence intervals, hypervolume, and the Friedman test with
its post-hoc critical difference (autorank).

Every run is reduced to an anytime *loss*: for one objective, the best value so far (turned to
minimisation); for several, minus the hypervolume of the non-dominated results so far. Like
``Optimizer.incumbent``, a run returns only results at the highest fidelity it has evaluated (a
lower fidelity is an estimate), and curves run over the budget used, in full-fidelity evaluations,
so a multi-fidelity run's cheap trials count as the fractions they cost.
Normalized regret is ``(loss - best) / (random - best)``: 0 is the best value known for the
task (the problem's declared optimum, a table's best real measurement, or else the best any run on
the board reached), 1 is the median of random search's final value at the same budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.optimizer import non_dominated
from bench.problem import Objective
from bench.space import Fidelity

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
TIME_POINTS = 101
ALPHA = 0.05


@dataclass
class Task:
    problem: str
    objectives: list[Objective]  # the optimized objectives, in order
    budget: float
    runs: list[dict[str, Any]]
    surrogate: str = ""  # the surrogate family that answered unmeasured configurations ("" where none did)
    losses: dict[int, np.ndarray] = field(default_factory=dict)  # run_id -> anytime loss by trial (NaN: none yet)
    points: dict[int, np.ndarray] = field(default_factory=dict)  # run_id -> ok results at its top fidelity, as losses
    failed: dict[int, int] = field(default_factory=dict)  # run_id -> trials that failed
    spent: dict[int, np.ndarray] = field(default_factory=dict)  # run_id -> budget used after each trial
    ends: dict[int, np.ndarray] = field(default_factory=dict)  # run_id -> simulated end time of each trial
    measured: dict[int, int] = field(default_factory=dict)  # run_id -> trials whose value was measured, not predicted
    reference: np.ndarray | None = None  # hypervolume reference point (losses), several objectives only

    @property
    def signs(self) -> np.ndarray:
        """Multiply the objectives' values by these to turn them into losses."""
        return np.array([float(o.sign) for o in self.objectives])

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def label(self) -> str:
        family = f" · {self.surrogate} surrogate" if self.surrogate else ""
        return f"{self.problem} · {' + '.join(o.name for o in self.objectives)}{family}"

    @property
    def slug(self) -> str:
        family = f"-{self.surrogate}" if self.surrogate else ""
        return f"{self.problem.replace('/', '-')}-{'+'.join(o.name for o in self.objectives)}{family}"

    @property
    def sanity(self) -> bool:
        """An analytic problem run as itself (not from a table): its optimum is known, so it checks the optimizers."""
        return self.runs[0]["card"]["mode"] != "table"

    @property
    def default_family(self) -> bool:
        """Run as a plain ``bench run`` runs it: no surrogate family named (the table's first), or no table."""
        return self.runs[0]["card"].get("surrogate") is None

    def optimizers(self) -> list[str]:
        return sorted({run["optimizer"] for run in self.runs})


def build_tasks(board) -> list[Task]:
    from bench.trial import MEASURED

    tasks = []
    for (problem, names, budget, surrogate), runs in board.tasks().items():
        described = {o["name"]: Objective.from_dict(o) for o in runs[0]["card"]["problem_info"]["objectives"]}
        task = Task(problem, [described[n] for n in names], budget, runs, surrogate)
        signs = task.signs
        fidelity = runs[0]["card"]["problem_info"].get("fidelity")
        fraction = Fidelity(**fidelity).fraction if fidelity else (lambda _: 1.0)  # of the budget, as the runner counts
        trials = board.trials[board.trials["run_id"].isin([r["run_id"] for r in runs])]
        by_run = dict(iter(trials.groupby("run_id")))
        observed, true, levels = {}, {}, {}
        for run in runs:
            group = by_run.get(run["run_id"], trials.iloc[:0]).sort_values(["end", "number"], kind="stable")
            ok = (group["status"] == "ok").to_numpy()
            seen = group[[f"objective.{n}" for n in names]].to_numpy(dtype=float) * signs
            # a noisy observation is scored by its noise-free value; a measurement is its own truth
            columns = [group[f"noise_free.{n}"] if f"noise_free.{n}" in group else group[f"objective.{n}"] for n in names]
            truth = np.column_stack([c.to_numpy(dtype=float) for c in columns]) * signs if len(group) else seen
            truth = np.where(np.isnan(truth), seen, truth)
            seen[~ok], truth[~ok] = np.nan, np.nan
            observed[run["run_id"]], true[run["run_id"]] = seen, truth
            # a trial without a fidelity ran at full fidelity
            level = np.nan_to_num(group["fidelity"].to_numpy(dtype=float), nan=np.inf)
            levels[run["run_id"]] = level
            top = level[ok].max() if ok.any() else np.inf
            task.points[run["run_id"]] = truth[ok & (level == top)]
            task.failed[run["run_id"]] = int((~ok).sum())
            task.spent[run["run_id"]] = np.cumsum([fraction(None if np.isinf(v) else v) for v in level])
            task.ends[run["run_id"]] = group["end"].to_numpy(dtype=float)
            task.measured[run["run_id"]] = int(group["source"].isin(MEASURED).sum())
        task.reference = _reference_point(task)
        task.losses = {run_id: _anytime(observed[run_id], true[run_id], task.reference, levels[run_id])
                       for run_id in observed}
        tasks.append(task)
    return tasks


def _reference_point(task: Task) -> np.ndarray | None:
    """Hypervolume reference, as losses: each objective's worst bound, else 10% beyond the worst seen."""
    if not task.multi:
        return None
    seen = np.vstack([p for p in task.points.values() if len(p)] or [np.zeros((0, len(task.objectives)))])
    reference = []
    for j, o in enumerate(task.objectives):
        if o.bounds:
            reference.append(o.bounds[1] if o.direction == "min" else -o.bounds[0])
        else:
            worst, best = seen[:, j].max(), seen[:, j].min()
            reference.append(worst + 0.1 * (worst - best or 1.0))
    return np.array(reference)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """pymoo's hypervolume of loss vectors against ``reference`` (0 for none)."""
    from pymoo.indicators.hv import HV

    inside = points[np.all(points < reference, axis=1)] if len(points) else points
    return float(HV(ref_point=reference)(inside)) if len(inside) else 0.0


def pareto_front(points: np.ndarray) -> np.ndarray:
    """The non-dominated loss vectors (each once), sorted by the first objective."""
    if not len(points):
        return points
    front = np.unique(points[non_dominated(points)], axis=0)
    return front[np.argsort(front[:, 0], kind="stable")]


def _anytime(observed: np.ndarray, true: np.ndarray, reference: np.ndarray | None, levels: np.ndarray) -> np.ndarray:
    """Loss after each trial of what the run would return then, chosen by what it observed among its ok trials at
    the highest fidelity so far (``levels``, inf for full) and scored by its noise-free value: the incumbent's (one
    objective, the first of equals), or minus the hypervolume of its front (several)."""
    out = np.full(len(observed), np.nan)
    ok = ~np.isnan(observed).any(axis=1)
    top = -np.inf
    for i in range(len(observed)):
        top = max(top, levels[i]) if ok[i] else top
        done = np.flatnonzero(ok[: i + 1] & (levels[: i + 1] == top))
        if not len(done):
            continue
        if reference is None:
            out[i] = true[done[np.argmin(observed[done, 0])], 0]
        else:
            out[i] = -hypervolume(true[done[non_dominated(observed[done])]], reference)
    return out


@dataclass
class Normalizer:
    best: float
    random: float
    scale: float
    worst: float
    note: str

    def regret(self, loss: np.ndarray) -> np.ndarray:
        """Normalized regret; a run with no successful trial yet counts as the worst value seen."""
        return (np.where(np.isnan(loss), self.worst, loss) - self.best) / self.scale


def normalizer(task: Task) -> Normalizer:
    finals = {r["run_id"]: task.losses[r["run_id"]][-1] for r in task.runs if len(task.losses.get(r["run_id"], []))}
    random = [finals[r["run_id"]] for r in task.runs if r["optimizer"] == "random" and r["run_id"] in finals]
    if not random:
        raise ValueError(f"{task.label}: normalized regret needs random search runs on the board")
    if task.multi:
        everything = np.vstack([p for p in task.points.values() if len(p)])
        best, worst = -hypervolume(everything, task.reference), 0.0
    else:
        seen = np.concatenate([p[:, 0] for p in task.points.values()])
        best, worst = float(np.min(seen)), float(np.max(seen))
        objective = task.objectives[0]
        measured = (task.runs[0]["card"]["problem_info"].get("best_measured") or {}).get(objective.name)
        if objective.optimum is not None:
            best = min(best, objective.optimum * objective.sign)
        elif measured is not None:  # a table's best real measurement, not a surrogate's (possibly better) guess
            best = measured * objective.sign
    median = float(np.nanmedian(np.where(np.isnan(random), worst, random)))
    if median > best:
        return Normalizer(best, median, median - best, worst, "1 = random search's median final value")
    return Normalizer(best, median, (worst - best) or 1.0, worst,
                      "random search's median reached the best value, so 1 = the worst value seen")


def budget_points(task: Task) -> int:
    """L, the full-fidelity evaluations the longest run of the task used (its trials, without a fidelity)."""
    return int(np.ceil(max((s[-1] for s in task.spent.values() if len(s)), default=0.0) - 1e-9))


def by_budget(task: Task, run: dict[str, Any], values: np.ndarray, fill: float) -> np.ndarray:
    """A run's per-trial ``values`` after 1..L full-fidelity evaluations of budget: the value after the last trial
    finished within it (a run that stopped early keeps its last value), ``fill`` before any."""
    done = np.searchsorted(task.spent[run["run_id"]], np.arange(1, budget_points(task) + 1) + 1e-9, side="right")
    return np.where(done > 0, values[np.maximum(done - 1, 0)], fill) if len(values) else np.full(len(done), fill)


def padded(task: Task, runs: list[dict[str, Any]], norm: Normalizer) -> np.ndarray:
    """Regret after 1..L full-fidelity evaluations of budget (see ``by_budget``), runs x L."""
    worst = norm.regret(np.array([np.nan]))[0]
    return np.array([by_budget(task, run, norm.regret(task.losses[run["run_id"]]), worst) for run in runs])


def over_time(task: Task, runs: list[dict[str, Any]], norm: Normalizer, grid: np.ndarray) -> np.ndarray:
    """Regret at each simulated time in ``grid``: the best of the trials finished by then; runs x grid."""
    out = np.empty((len(runs), len(grid)))
    for i, run in enumerate(runs):
        ends, regret = task.ends[run["run_id"]], norm.regret(task.losses[run["run_id"]])
        done = np.searchsorted(ends, grid, side="right")
        out[i] = np.where(done > 0, regret[np.maximum(done - 1, 0)], norm.regret(np.array([np.nan]))[0])
    return out


def bootstrap_mean(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 with a percentile-bootstrap 95% interval (fixed seed: reproducible)."""
    from scipy.stats import bootstrap

    samples = np.asarray(samples, dtype=float)
    mean = samples.mean(axis=0)
    if len(samples) < 2 or np.all(samples == samples[0]):
        return mean, mean.copy(), mean.copy()
    ci = bootstrap((samples,), np.mean, axis=0, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                   method="percentile", rng=np.random.default_rng(0)).confidence_interval
    return mean, np.minimum(ci.low, mean), np.maximum(ci.high, mean)


def ranks(regrets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per seed (row), rank the optimizers (1 = lowest regret, ties averaged): {optimizer: seeds x ...}."""
    from scipy.stats import rankdata

    names = list(regrets)
    stacked = np.stack([regrets[n] for n in names])  # optimizers x seeds x ...
    ranked = rankdata(stacked, axis=0)
    return {n: ranked[i] for i, n in enumerate(names)}


def critical_difference(final: dict[str, np.ndarray]):
    """Friedman test + Nemenyi post-hoc (autorank, non-parametric) on final regret, seeds as blocks."""
    import contextlib
    import io
    import warnings

    import pandas as pd
    from autorank import autorank

    # autorank prints its choice of test, and its normality checks warn on tied columns (which it then ignores)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return autorank(pd.DataFrame(final), alpha=ALPHA, order="ascending", force_mode="nonparametric")


def across_tasks(tasks: list[Task]) -> dict[str, Any] | None:
    """One verdict across the board's single-objective tasks (each table under its default surrogate family, the
    others are checked against it in ``family_agreement``): the optimizers present in all of them, ranked on
    final regret with every (task, seed) as a block (Friedman + Nemenyi); None with fewer than 3 such
    optimizers or 5 blocks."""
    singles = [task for task in tasks if not task.multi and task.default_family]
    if not singles:
        return None
    names = sorted(set.intersection(*(set(task.optimizers()) for task in singles)))
    finals: dict[str, list[float]] = {name: [] for name in names}
    blocks = 0
    for task in singles:
        norm = normalizer(task)
        by_seed = {(r["optimizer"], r["seed"]): r for r in task.runs}
        seeds = sorted(set.intersection(*({s for o, s in by_seed if o == name} for name in names)))
        for seed in seeds:
            for name in names:
                finals[name].append(float(padded(task, [by_seed[(name, seed)]], norm)[0, -1]))
        blocks += len(seeds)
    if len(names) < 3 or blocks < 5:
        return None
    result = critical_difference({name: np.array(values) for name, values in finals.items()})
    ranks = result.rankdf["meanrank"].to_dict()
    return {"tasks": [task.label for task in singles], "blocks": blocks, "pvalue": float(result.pvalue),
            "critical_difference": float(result.cd), "alpha": ALPHA,
            "rows": [{"optimizer": name, "rank": float(ranks[name]), "regret": float(np.mean(finals[name]))}
                     for name in sorted(names, key=lambda n: (ranks[n], n))],
            "cd_result": result}


def summarize(task: Task) -> dict[str, Any]:
    """The task's aggregated results: per optimizer, curves and statistics over seeds."""
    from bench.analysis.data import origin_label

    norm = normalizer(task)
    by_optimizer = {name: sorted((r for r in task.runs if r["optimizer"] == name), key=lambda r: r["seed"])
                    for name in task.optimizers()}
    common = sorted(set.intersection(*({r["seed"] for r in runs} for runs in by_optimizer.values())))
    horizon = max(task.ends[r["run_id"]][-1] for r in task.runs if len(task.ends[r["run_id"]]))
    grid = np.linspace(0.0, horizon, TIME_POINTS)
    curves = {name: padded(task, runs, norm) for name, runs in by_optimizer.items()}
    paired = {name: curves[name][[r["seed"] in common for r in runs]] for name, runs in by_optimizer.items()}
    rank_curves = ranks(paired) if len(common) else {}
    rows, series = [], []
    for name, runs in by_optimizer.items():
        curve = curves[name]
        final, auc = curve[:, -1], curve.mean(axis=1)
        raw = np.array([_final_value(task, r) for r in runs])
        row = {"optimizer": name, "seeds": len(runs), "trials": int(sum(len(task.ends[r["run_id"]]) for r in runs))}
        for key, samples in (("regret", final), ("auc", auc), ("value", raw)):
            mean, low, high = bootstrap_mean(samples)
            row.update({key: float(mean), f"{key}_low": float(low), f"{key}_high": float(high)})
        if name in rank_curves:
            mean, low, high = bootstrap_mean(rank_curves[name][:, -1])
            row.update(rank=float(mean), rank_low=float(low), rank_high=float(high))
        row.update(_trial_counts(task, runs))
        row["origin"] = sorted({origin_label(r["provenance"]) for r in runs})
        rows.append(row)
        mean, low, high = bootstrap_mean(curve)
        series.append({"optimizer": name, "axis": "trials", "x": np.arange(1, curve.shape[1] + 1), "regret": mean,
                       "low": low, "high": high,
                       "rank": rank_curves[name].mean(axis=0) if name in rank_curves else np.full(curve.shape[1], np.nan)})
        mean, low, high = bootstrap_mean(over_time(task, runs, norm, grid))
        series.append({"optimizer": name, "axis": "seconds", "x": grid, "regret": mean, "low": low, "high": high,
                       "rank": np.full(len(grid), np.nan)})
    rows.sort(key=lambda row: (row.get("rank", np.inf), row["regret"], row["optimizer"]))
    summary = {"problem": task.problem, "objectives": [o.describe() for o in task.objectives], "budget": task.budget,
               "surrogate": task.surrogate, "seeds": common,
               "normalization": {"best": norm.best, "random_median": norm.random, "scale": norm.scale,
                                 "note": norm.note},
               "value_name": "hypervolume" if task.multi else task.objectives[0].name,
               "rows": rows, "series": series}
    if task.multi:
        summary["reference_point"] = [float(v) for v in task.reference]
    else:
        summary["regret_unit"] = norm.scale  # one unit of normalized regret in the objective's own units
    summary["table"] = _table_facts(task)
    if (noise := _noise_sd(task)) is not None and len(common) >= 5 and len(by_optimizer) >= 2:
        summary["equivalence"] = equivalence({n: paired[n][:, -1] for n in by_optimizer}, noise / norm.scale,
                                             [row["optimizer"] for row in rows])
        summary["equivalence"]["noise_sd"] = noise
    if len(by_optimizer) >= 3 and len(common) >= 5:
        result = critical_difference({n: paired[n][:, -1] for n in by_optimizer})
        summary["test"] = {"omnibus": result.omnibus, "posthoc": result.posthoc, "pvalue": float(result.pvalue),
                           "critical_difference": float(result.cd), "alpha": ALPHA, "blocks": len(common)}
        summary["cd_result"] = result
    return summary


EQUIVALENCE_SAMPLES = 10_000


def _table_facts(task: Task) -> dict[str, Any]:
    """What a table problem's run cards say about it, for the board to explain its numbers: the surrogate family
    the runs used and every family's held-out quality, the best real measurement and the default
    configuration's value (the optimized objectives), and the share of trial values that were measurements."""
    info = task.runs[0]["card"]["problem_info"]
    names = [o.name for o in task.objectives]
    facts: dict[str, Any] = {"measured_share": sum(task.measured.values()) / max(1, sum(map(len, task.ends.values())))}
    for key in ("best_measured", "default_value"):
        if info.get(key):
            facts[key] = {n: info[key][n] for n in names}
    if info.get("surrogate_quality"):
        facts["surrogate"] = info.get("surrogate")
        facts["surrogate_quality"] = {family: {n: quality[n] for n in names}  # sorted: as runs.json stores them
                                      for family, quality in sorted(info["surrogate_quality"].items())}
    return facts


def _noise_sd(task: Task) -> float | None:
    """One evaluation's noise SD in the objective's units, as the problem's run card records it (a table's noise
    model near its best measurement); None for several objectives or where no card records it."""
    if task.multi:
        return None
    recorded = task.runs[0]["card"]["problem_info"].get("noise_sd") or {}
    return recorded.get(task.objectives[0].name)


def equivalence(final: dict[str, np.ndarray], rope: float, order: list[str]) -> dict[str, Any]:
    """Each optimizer against the first in ``order`` (the best by mean rank) on paired final regret: Bayesian
    signed-rank posteriors (baycomp's, as autorank uses it) with a region of practical equivalence ``rope``
    (regret units: one evaluation's noise), and the verdict the data support: a winner only if every other
    optimizer is worse beyond the noise with probability >= 1 - ALPHA."""
    from baycomp import SignedRankTest

    best = order[0]
    decisions = {}
    for name in order[1:]:
        # baycomp's probabilities that x - y lies above the rope, within it, below it; x is this optimizer's final
        # regret, y the best's, and lower regret is better
        worse, equal, better = SignedRankTest(x=final[name], y=final[best], rope=rope, nsamples=EQUIVALENCE_SAMPLES,
                                              random_state=0).probs()
        decision = ("worse" if worse >= 1 - ALPHA else "equivalent" if equal >= 1 - ALPHA
                    else "better" if better >= 1 - ALPHA else "inconclusive")
        decisions[name] = {"p_worse": float(worse), "p_equivalent": float(equal), "p_better": float(better),
                           "decision": decision}
    tied = [best] + [n for n, d in decisions.items() if d["decision"] != "worse"]
    practically_equal = [best] + [n for n, d in decisions.items() if d["decision"] == "equivalent"]
    if len(tied) == 1:
        verdict = f"{best} wins: every other optimizer is worse beyond the measurement noise"
    else:
        equivalent = [n for n in tied[1:] if decisions[n]["decision"] == "equivalent"]
        verdict = (f"indistinguishable within measurement noise: {', '.join([best] + equivalent)}" if equivalent
                   else f"no winner: {best} leads") + (
            f"; undecided against {', '.join(n for n in tied[1:] if n not in equivalent)}"
            if len(tied) > 1 + len(equivalent) else "")
    return {"method": "Bayesian signed-rank test on paired final regret (baycomp), ROPE = one evaluation's noise SD",
            "rope": float(rope), "alpha": ALPHA, "best": best, "decisions": decisions, "tied_with_best": tied,
            "equivalent_to_best": practically_equal, "winner": best if len(tied) == 1 else None, "verdict": verdict}


def family_agreement(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task run under several surrogate families: Kendall's tau between the families' orderings (mean rank)
    of the optimizers they share, each family's verdict, and the verdict that holds under all of them: a winner
    only where the same optimizer wins under every family."""
    from itertools import combinations

    from scipy.stats import kendalltau

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for summary in summaries:
        if summary["surrogate"]:
            key = (summary["problem"], tuple(o["name"] for o in summary["objectives"]), summary["budget"])
            groups.setdefault(key, []).append(summary)
    out = []
    for (problem, objectives, budget), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        shared = sorted(set.intersection(*({row["optimizer"] for row in s["rows"]} for s in group)))
        ranks = {s["surrogate"]: [next(r.get("rank", np.nan) for r in s["rows"] if r["optimizer"] == name)
                                  for name in shared] for s in group}
        pairs = [{"families": [a, b], "kendall_tau": float(kendalltau(ranks[a], ranks[b]).statistic)}
                 for a, b in combinations(ranks, 2)]
        verdicts = {s["surrogate"]: s["equivalence"] for s in group if "equivalence" in s}
        winners = {family: eq["winner"] for family, eq in verdicts.items()}
        if len(verdicts) < len(group):
            overall = "no winner declared: practical equivalence is tested on one objective only"
        elif len(set(winners.values())) == 1 and None not in winners.values():
            overall = f"{next(iter(winners.values()))} wins under every surrogate family"
        else:
            overall = "no winner under every surrogate family: " + "; ".join(
                f"{family}: {eq['verdict']}" for family, eq in verdicts.items())
        out.append({"problem": problem, "objectives": list(objectives), "budget": budget, "optimizers": len(shared),
                    "pairs": pairs, "leaders": {s["surrogate"]: s["rows"][0]["optimizer"] for s in group},
                    "equivalent_to_best": {family: eq["equivalent_to_best"] for family, eq in verdicts.items()},
                    "verdict": overall})
    return out


def _final_value(task: Task, run: dict[str, Any]) -> float:
    """The run's final result in the objective's own units (hypervolume for several objectives)."""
    loss = task.losses[run["run_id"]]
    if not len(loss) or np.isnan(loss[-1]):
        return float("nan") if not task.multi else 0.0
    return float(-loss[-1]) if task.multi else float(loss[-1] * task.objectives[0].sign)


def _trial_counts(task: Task, runs: list[dict[str, Any]]) -> dict[str, float]:
    """Share of failed trials and of values that were measured (not predicted by a surrogate)."""
    total = sum(len(task.ends[r["run_id"]]) for r in runs)
    failed = sum(task.failed[r["run_id"]] for r in runs)
    measured = sum(task.measured[r["run_id"]] for r in runs)
    return {"failed_share": failed / total if total else 0.0,
            "measured_share": measured / total if total else 0.0}
