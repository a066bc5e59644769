"""Where trials run: in-process on a simulated clock, in a local process pool, or on Dask.

The runner submits trials and waits for finished ones; each comes back as a StoredTrial with
the worker that ran it and its start and end in seconds since the run started (simulated for
``local``, real wall time otherwise). Only the client writes the store, so workers need no
shared file system. Remote workers get the problem's spec and mode, not the Problem: each
worker process creates it once and keeps it (a live problem holds a model).

A worker process that dies mid-trial (killed, out of host memory) loses that attempt; the
trial is submitted again up to ``retries`` times, then stored as failed. It is never lost
and never stored twice.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.clock import SimulatedClock
from bench.hookspecs import EXECUTORS
from bench.trial import Result, StoredTrial, Trial

if TYPE_CHECKING:  # light at import: the CLI reads EXECUTORS without loading ConfigSpace
    from bench.hookspecs import ProblemSpec
    from bench.problem import Problem

UNKNOWN_WORKER = -1  # the worker column of a trial whose every attempt died with its worker


class Executor(ABC):
    """Runs up to ``workers`` trials at once. ``open`` starts each run; ``close`` ends the executor."""

    name: str

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    @abstractmethod
    def open(self, problem: Problem, spec: ProblemSpec | None, seed: int, offset: float,
             timeout: float | None = None, options: dict | None = None) -> None:
        """Start a run of ``problem`` (created from ``spec`` with ``options``) with ``seed``; times count on from
        ``offset``; each trial is evaluated under ``timeout`` seconds (Problem.evaluate_trial)."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Trials submitted or replayed and not yet returned by ``wait``."""

    @property
    def free(self) -> int:
        return self.workers - self.pending

    @abstractmethod
    def submit(self, number: int, trial: Trial) -> StoredTrial | None:
        """Start a trial; return it when its result is known at once (in-process), else None."""

    @abstractmethod
    def replay(self, stored: StoredTrial) -> None:
        """Hand back a trial from the store (resume) as if it had just run."""

    @abstractmethod
    def wait(self) -> list[StoredTrial]:
        """Block until at least one pending trial has finished; return the finished ones in finish order."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class LocalExecutor(Executor):
    """In-process: evaluates at submit; a simulated clock of ``workers`` workers, each busy for the
    result's cost, decides when each result arrives (so table runs compare at equal simulated time)."""

    name = "local"

    def open(self, problem, spec, seed, offset, timeout=None, options=None):
        self.problem, self.seed, self.timeout = problem, seed, timeout
        self.clock = SimulatedClock(self.workers)

    @property
    def pending(self):
        return self.clock.pending

    def submit(self, number, trial):
        return self._start(number, trial, self.problem.evaluate_trial(trial, self.seed, self.timeout))

    def replay(self, stored):
        self._start(stored.number, stored.trial, stored.result)

    def _start(self, number: int, trial: Trial, result: Result) -> StoredTrial:
        event = self.clock.start(result.cost, (number, trial, result))
        return StoredTrial(number, trial, result, event.worker, event.start, event.end)

    def wait(self):
        event = self.clock.next()
        return [StoredTrial(*event.payload, event.worker, event.start, event.end)]


@dataclass
class _Attempt:
    number: int
    trial: Trial
    launched: float
    lost: tuple[str, ...] = ()  # errors of earlier attempts whose worker died


class _RemoteExecutor(Executor):
    """Shared by the process pool and Dask: futures in flight, retries, real times, worker ids."""

    def __init__(self, workers: int, retries: int = 1, gpus: tuple[str, ...] = ()) -> None:
        super().__init__(workers)
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.retries, self.gpus = retries, tuple(gpus)
        self._running: dict[Any, _Attempt] = {}
        self._ready: list[StoredTrial] = []
        self._workers: dict[str, int] = {}  # ids in the store for workers named otherwise than 0..N-1

    def open(self, problem, spec, seed, offset, timeout=None, options=None):
        if spec is None:
            raise ValueError(f"the {self.name} executor creates the problem on each worker from its spec;"
                             " register the problem (a plugin, or Registry.problems) or use --executor local")
        self._cancel(list(self._running))
        self._running.clear()
        self._ready.clear()
        self.task = (spec, problem.mode, dict(options or {}), seed, self.gpus, timeout)
        self.full_fidelity = problem.fidelity.max if problem.fidelity else None
        self.t0 = time.time() - offset

    @property
    def pending(self):
        return len(self._running) + len(self._ready)

    def submit(self, number, trial):
        self._running[self._launch(trial)] = _Attempt(number, trial, time.time())
        return None

    def replay(self, stored):
        self._ready.append(stored)

    def wait(self):
        while not self._ready:
            for future in self._first_done(list(self._running)):
                self._collect(future, self._running.pop(future))
        done, self._ready = sorted(self._ready, key=lambda st: (st.end, st.number)), []
        return done

    def _collect(self, future, attempt: _Attempt) -> None:
        try:
            result, who, start, end = future.result()
        except Exception as exc:  # noqa: BLE001 - only a lost worker is retried; anything else is a bug
            if not self._lost(exc):
                raise
            error = f"worker lost: {type(exc).__name__}: {exc}"
            if len(attempt.lost) < self.retries:
                self._running[self._launch(attempt.trial)] = replace(attempt, lost=(*attempt.lost, error))
                return
            now = time.time()
            fidelity = self.full_fidelity if attempt.trial.fidelity is None else attempt.trial.fidelity
            result = Result.failure(error, now - attempt.launched, fidelity=fidelity)
            worker, start, end = UNKNOWN_WORKER, attempt.launched, now
        else:
            worker = who if isinstance(who, int) else self._workers.setdefault(who, len(self._workers))
        if attempt.lost:
            result = replace(result, extra={**result.extra, "lost_attempts": list(attempt.lost)})
        self._ready.append(StoredTrial(attempt.number, attempt.trial, result, worker, start - self.t0, end - self.t0))

    def describe(self):
        return {**super().describe(), "retries": self.retries, "gpus": list(self.gpus)}

    @abstractmethod
    def _launch(self, trial: Trial) -> Any:
        """Submit one attempt of ``trial``; return its future."""

    @abstractmethod
    def _first_done(self, futures: list) -> list:
        """Block until at least one of ``futures`` is done; return the done ones."""

    @abstractmethod
    def _lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the worker running the attempt died."""

    @abstractmethod
    def _cancel(self, futures: list) -> None:
        """Drop attempts left over from an interrupted run."""


# Runs in each worker process: the problems it has created, and its slot in a process pool.
_problems: dict[str, Problem] = {}
_slot: int | None = None


def _worker_slot() -> int | str:
    if _slot is not None:
        return _slot
    from distributed import get_worker

    return get_worker().name


def evaluate_on_worker(spec: ProblemSpec, mode: str, options: dict, seed: int, gpus: tuple[str, ...],
                       timeout: float | None, trial: Trial):
    """Evaluate ``trial`` in a worker process: pin the process to its GPU, create the problem once,
    and report who ran it and when (epoch seconds, so the client can place it on the run's clock)."""
    who = _worker_slot()
    if gpus and not _problems:  # before anything in this process can have initialised CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(who) % len(gpus)]
    key = repr((spec, mode, sorted(options.items())))
    if key not in _problems:
        _problems[key] = spec.create(mode, **options)
    start = time.time()
    result = _problems[key].evaluate_trial(trial, seed, timeout)
    return result, who, start, time.time()


def exit_with_parent(poll: float = 0.5) -> None:
    """In a pool's worker process: exit as soon as the process that started it dies. A SIGKILLed client
    cannot shut its pool down, and its orphaned workers would otherwise compute on for nobody."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _take_slot(slots) -> None:
    global _slot
    _slot = slots.get()
    exit_with_parent()


class ProcessExecutor(_RemoteExecutor):
    """A local pool of ``workers`` processes (concurrent.futures); each process takes a slot
    0..workers-1 when it starts, which is its worker id and picks its GPU."""

    name = "process"

    def __init__(self, workers: int, retries: int = 1, gpus: tuple[str, ...] = ()) -> None:
        super().__init__(workers, retries, gpus)
        self._pool = None

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no fork of a client that may hold threads or CUDA
        slots = context.Queue()
        for slot in range(self.workers):
            slots.put(slot)
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_take_slot, initargs=(slots,))

    def _launch(self, trial):
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(evaluate_on_worker, *self.task, trial)
        except BrokenProcessPool:  # a process died: the pool is gone, every attempt in it is lost
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(evaluate_on_worker, *self.task, trial)

    def _first_done(self, futures):
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, return_when=FIRST_COMPLETED).done

    def _lost(self, exc):
        from concurrent.futures.process import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)

    def _cancel(self, futures):
        for future in futures:
            future.cancel()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaskExecutor(_RemoteExecutor):
    """Trials on a Dask cluster: a LocalCluster of ``workers`` single-threaded worker processes
    started here (one per GPU in ``gpus``), an existing ``scheduler`` address, or a dask-jobqueue
    cluster (Slurm, PBS, ...) described in a ``cluster`` config file and scaled to ``workers``.
    Trials request one ``GPU`` resource when the workers declare that resource."""

    name = "dask"

    def __init__(self, workers: int, retries: int = 1, gpus: tuple[str, ...] = (), *,
                 scheduler: str | None = None, cluster: str | Path | None = None) -> None:
        super().__init__(workers, retries, gpus)
        if scheduler and cluster:
            raise ValueError("give either --scheduler or --cluster, not both")
        if gpus and (scheduler or cluster):
            raise ValueError("--gpus pins the workers of a local cluster; on a scheduler or a batch cluster each"
                             " worker's launcher sets CUDA_VISIBLE_DEVICES (see docs/distributed.md)")
        from distributed import Client, LocalCluster

        self.where = scheduler or (str(cluster) if cluster else "local")
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler)
        else:
            if cluster:
                self.cluster = jobqueue_cluster(cluster)
                self.cluster.scale(workers)
            else:
                # No Dask retries of its own: a worker death reaches the executor at once, so --retries counts
                # attempts exactly.
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                    scheduler_kwargs={"allowed_failures": 0}, resources={"GPU": 1} if gpus else None,
                )
            self.client = Client(self.cluster)
        self.client.wait_for_workers(1)
        workers_info = self.client.scheduler_info(n_workers=-1)["workers"].values()
        self.resources = {"GPU": 1} if any("GPU" in w.get("resources", {}) for w in workers_info) else None

    def _launch(self, trial):
        return self.client.submit(evaluate_on_worker, *self.task, trial, pure=False, resources=self.resources)

    def _first_done(self, futures):
        from distributed import wait

        return wait(futures, return_when="FIRST_COMPLETED").done

    def _lost(self, exc):
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker)

    def _cancel(self, futures):
        if futures:
            self.client.cancel(futures)

    def describe(self):
        return {**super().describe(), "cluster": self.where}

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
             "htcondor": "HTCondorCluster", "oar": "OARCluster", "moab": "MoabCluster"}


def jobqueue_cluster(path: str | Path):
    """A dask-jobqueue cluster from a YAML file in dask-jobqueue's own config layout
    (``jobqueue: {slurm: {...}}``), not yet scaled: no job is submitted until ``scale``."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text())
        (kind,) = config["jobqueue"]
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"cluster file {path} must hold one 'jobqueue: {{slurm: ...}}' section"
                         f" ({type(exc).__name__}); see docs/distributed.md") from exc
    if kind not in _JOBQUEUE:
        raise ValueError(f"cluster file {path}: unknown batch system {kind!r}; one of {', '.join(_JOBQUEUE)}")
    import dask_jobqueue

    # The file's keys are the cluster's keyword arguments (dask-jobqueue's config names, dashes or underscores).
    options = {key.replace("-", "_"): value for key, value in (config["jobqueue"][kind] or {}).items()}
    # No Dask retries of its own, as for the local cluster: --retries counts attempts exactly.
    options["scheduler_options"] = {"allowed_failures": 0, **options.get("scheduler_options", {})}
    return getattr(dask_jobqueue, _JOBQUEUE[kind])(**options)


def make_executor(name: str, workers: int, *, retries: int = 1, gpus: tuple[str, ...] = (),
                  scheduler: str | None = None, cluster: str | Path | None = None) -> Executor:
    """The executor ``name`` (one of EXECUTORS); options that do not apply to it are refused."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; one of {', '.join(EXECUTORS)}")
    if name != "dask" and (scheduler or cluster):
        raise ValueError("--scheduler and --cluster need --executor dask")
    if name == "local":
        if gpus:
            raise ValueError("--gpus needs --executor process or dask (local runs in this process)")
        return LocalExecutor(workers)
    if name == "process":
        return ProcessExecutor(workers, retries, gpus)
    return DaskExecutor(workers, retries, gpus, scheduler=scheduler, cluster=cluster)
