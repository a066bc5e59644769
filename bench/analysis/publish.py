"""The published board's run matrix: every built-in optimizer that supports the problem, on every
problem with a board entry, at the source study's budget, seeds 0-9; runs go to separate processes.

Which problems appear, at which budget and with which objectives, is each problem spec's ``board``
(e.g. the LoRA tables: 50 evaluations as in their source study, once on the default objective and
once on two objectives together for the multi-objective optimizers; the synthetic problems as a
sanity section). A table problem runs once under each surrogate family its table ships, so a
verdict can be checked against a second inductive bias.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

SEEDS = tuple(range(10))
# Slowest first, so two processes finish close together (smac-gp spends 1-3 s per suggestion).
SLOW_FIRST = ("smac-gp", "bamsoo", "smac-rf", "ngopt")
PUBLISHED = {"origin": "bench leaderboard publish"}  # the provenance of the board's own runs


def run_matrix(registry) -> list:
    """Every (table problem, objectives, supported built-in optimizer, seed) of the published board."""
    from bench.optimizer import Unsupported, check_supported
    from bench.runner import RunSpec

    built_in_problems = _built_in(registry, registry.pm.hook.bench_problems)
    built_in_optimizers = _built_in(registry, registry.pm.hook.bench_optimizers)
    specs = []
    for name, spec in registry.problems.items():
        mode = (spec.board or {}).get("mode", "table")
        if not spec.board or mode not in spec.modes or name not in built_in_problems:
            continue
        problem = spec.create(mode)
        # the table's default family as a plain run has it (no --surrogate), then the others by name
        families = [None] + list(problem.describe().get("surrogate_quality", {}))[1:]
        for objectives in [tuple(names) or None for names in spec.board["objectives"]]:
            for optimizer, opt_spec in registry.optimizers.items():
                if optimizer not in built_in_optimizers or not opt_spec.board or \
                        optimizer not in spec.board.get("optimizers", [optimizer]):
                    continue
                try:
                    check_supported(optimizer, opt_spec.capabilities, problem, problem.select_objectives(objectives))
                except Unsupported:
                    continue
                specs += [RunSpec(name, optimizer, seed, float(spec.board["budget"]), mode, 1, None, objectives,
                                  surrogate=family) for family in families for seed in SEEDS]
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    return sorted(specs, key=lambda s: (rank.get(s.optimizer, len(rank)), s.problem, s.optimizer,
                                        s.objectives or (), s.surrogate or "", s.seed))


def _built_in(registry, hook) -> set[str]:
    """Names a hook's implementations shipped with bench itself provide (not outside plugins)."""
    ours = {p.name for p in registry.plugins if p.distribution == "bench-llm"}
    return {spec.name for impl in hook.get_hookimpls() if impl.plugin_name in ours for spec in impl.function()}


_worker_store = None


def _run_one(spec, folder: str) -> float:
    """Run one spec into this process's own store file; return the wall seconds it took."""
    global _worker_store
    from bench import runner
    from bench.registry import Registry
    from bench.store import Store

    if _worker_store is None:
        _worker_store = (Store(Path(folder) / f"runs-{os.getpid()}.sqlite"), Registry())
    store, registry = _worker_store
    started = time.perf_counter()
    runner.run(spec, store, registry)
    store.flush()
    return time.perf_counter() - started


def run_all(specs, folder: Path, jobs: int, progress=None) -> list[Path]:
    """Run ``specs`` in ``jobs`` processes; return the store files written."""
    folder.mkdir(parents=True, exist_ok=True)
    if jobs <= 1:
        for i, spec in enumerate(specs):
            _run_one(spec, str(folder))
            if progress:
                progress(i + 1, spec)
    else:
        from bench.executors import exit_with_parent

        pool = ProcessPoolExecutor(jobs, initializer=exit_with_parent)
        try:
            futures = {pool.submit(_run_one, spec, str(folder)): spec for spec in specs}
            for i, future in enumerate(as_completed(futures)):
                future.result()
                if progress:
                    progress(i + 1, futures[future])
        finally:  # on any exit, runs not started are dropped (a plain `with` would run them all first)
            pool.shutdown(cancel_futures=True)
    return sorted(folder.glob("runs-*.sqlite"))
