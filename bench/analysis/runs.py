"""What `bench show` reports per run: its inputs, trial and failure counts, where its values came from, the
best value per objective and, for several optimized objectives, its Pareto front: both of what the run returns,
its ok results at the highest fidelity it evaluated (as ``Optimizer.incumbent`` chooses them)."""

from __future__ import annotations

import math
from typing import Any

from bench.problem import Objective
from bench.store import Store
from bench.trial import StoredTrial


def summarize_runs(store: Store, problem: str | None = None) -> list[dict[str, Any]]:
    """Per run: its inputs, trial and failure counts, where values came from, best per objective."""
    out = []
    for run in store.runs(problem):
        trials = store.trials(run["id"])
        ok = [st.result for st in returned(trials)]
        sources: dict[str, int] = {}
        for st in trials:
            sources[st.result.source] = sources.get(st.result.source, 0) + 1
        objectives = [Objective.from_dict(o) for o in run["card"]["problem_info"]["objectives"]]
        best = {}
        for objective in objectives:
            values = [objective.sign * r.objectives[objective.name] for r in ok]
            best[objective.name] = objective.sign * min(values) if values else None
        optimized = run["card"].get("optimized_objectives") or []
        out.append({
            "run": run["id"], "problem": run["problem"], "optimizer": run["optimizer"], "seed": run["seed"],
            "mode": run["mode"], "status": run["status"], "trials": len(trials), "optimized": optimized,
            "failed": sum(not st.result.ok for st in trials), "sources": sources, "best": best,
        })
        if len(optimized) > 1:
            by_name = {o.name: o for o in objectives}
            out[-1]["pareto_front"] = run_front(trials, [by_name[n] for n in optimized])
    return out


def returned(trials: list[StoredTrial]) -> list[StoredTrial]:
    """The ok trials at the highest fidelity evaluated (None: full), among which a run's result is chosen."""
    ok = [st for st in trials if st.result.ok]
    level = lambda st: math.inf if st.result.fidelity is None else st.result.fidelity  # noqa: E731
    top = max((level(st) for st in ok), default=math.inf)
    return [st for st in ok if level(st) == top]


def run_front(trials: list[StoredTrial], objectives: list[Objective]) -> list[dict[str, Any]]:
    """The non-dominated trials on ``objectives`` of those the run returns, sorted by the first objective."""
    import numpy as np

    from bench.optimizer import non_dominated

    ok = returned(trials)
    if not ok:
        return []
    values = np.array([[o.sign * st.result.objectives[o.name] for o in objectives] for st in ok])
    front = [{"trial": st.number, **{o.name: st.result.objectives[o.name] for o in objectives}}
             for st, keep in zip(ok, non_dominated(values)) if keep]
    return sorted(front, key=lambda row: objectives[0].sign * row[objectives[0].name])
