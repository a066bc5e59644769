"""Process pool and Dask executors: real worker processes, real times, killed workers, GPU pinning."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest

from bench.executors import DaskExecutor, ProcessExecutor, jobqueue_cluster
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from bench.trial import Status
from conftest import bench_cli
from executor_problems import hanging, sleepy

pytestmark = pytest.mark.slow  # every test here starts worker processes


@pytest.fixture(scope="module")
def dask2():
    with DaskExecutor(2) as executor:
        yield executor


def registry_with(spec) -> Registry:
    registry = Registry()
    registry.problems[spec.name] = spec
    return registry


@contextmanager
def killing_the_first_trials_worker(pid_file):
    """SIGKILL, from outside, the worker process that runs the first trial, while that trial runs
    (the trial blocks until killed). Yields the list that receives the killed process id."""
    killed = []

    def watch():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            text = pid_file.read_text() if pid_file.exists() else ""
            if text.endswith("\n"):
                os.kill(int(text), signal.SIGKILL)
                killed.append(int(text))
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield killed
    thread.join()


def comparable(store: Store, run_id: int) -> list[tuple]:
    """What a run found, without where and when it ran."""
    return [(st.number, st.trial.config, st.trial.fidelity, st.result.status, st.result.objectives)
            for st in store.trials(run_id)]


def test_cli_dask_two_workers_runs_a_synthetic_and_a_table_problem_like_the_local_run(tmp_path):
    args = ["run", "synthetic/hartmann6", "lora-hpo/llama-3.2-1b-alpaca", "--optimizer", "random", "--budget", "12",
            "--workers", "2"]
    for executor in ("dask", "local"):
        out = bench_cli(*args, "--executor", executor, "--store", str(tmp_path / f"{executor}.sqlite"))
        assert out.returncode == 0, out.stderr
    dask, local = Store(tmp_path / "dask.sqlite"), Store(tmp_path / "local.sqlite")
    for run_id in (1, 2):
        assert comparable(dask, run_id) == comparable(local, run_id)
        trials = dask.trials(run_id)
        assert len(trials) == 12 and all(st.result.ok for st in trials)
        assert all(0 < st.start <= st.end for st in trials)  # real seconds since the run started
    card = dask.runs()[0]["card"]
    assert card["executor"] == {"name": "dask", "workers": 2, "retries": 1, "gpus": [], "cluster": "local",
                                "mode": "asynchronous"}
    with sqlite3.connect(tmp_path / "dask.sqlite") as db:
        assert {w for (w,) in db.execute("SELECT DISTINCT worker FROM trials")} <= {0, 1}


def test_batch_synchronous_on_dask_stores_the_sequential_runs_trials(tmp_path, dask2):
    """Hyperband is not asynchronous: it is asked two at a time and told both when both are done."""
    registry = Registry()
    spec = RunSpec("synthetic/hartmann6", "hyperband", seed=3, budget=8, mode="live", workers=2)
    store, local = Store(tmp_path / "runs.sqlite"), Store(tmp_path / "local.sqlite")
    sequential = run(spec, local, registry)
    parallel = run(spec, store, registry, executor=dask2)
    assert comparable(store, parallel) == comparable(local, sequential)
    assert len(store.trials(parallel)) > 20
    assert store.runs()[0]["card"]["executor"]["mode"] == "batch-synchronous (2 per batch)"
    trials = store.trials(parallel)
    # Batches are runs of at most two consecutive proposals, so trials two apart are in different batches:
    # the later one starts only once the earlier one has ended.
    assert all(later.start >= earlier.end for earlier in trials for later in trials if later.number >= earlier.number + 2)


def test_a_killed_worker_process_retries_its_trial_once_and_the_store_holds_every_trial_once(tmp_path, dask2):
    registry = registry_with(sleepy(0.2, pid_file=str(tmp_path / "pid")))
    store = Store(tmp_path / "runs.sqlite")
    with killing_the_first_trials_worker(tmp_path / "pid") as killed:
        run_id = run(RunSpec("test/sleepy", "random", 0, 8, "live", workers=2), store, registry, executor=dask2)
    trials = store.trials(run_id)
    assert len(killed) == 1 and killed[0] not in {st.result.extra["pid"] for st in trials}
    assert [st.number for st in trials] == list(range(8))
    assert all(st.result.ok for st in trials)
    retried = [st for st in trials if "lost_attempts" in st.result.extra]
    assert len(retried) == 1
    assert retried[0].result.extra["lost_attempts"][0].startswith("worker lost: KilledWorker")


def test_with_no_retries_the_killed_trial_is_stored_failed_and_the_run_goes_on(tmp_path):
    registry = registry_with(sleepy(0.1, pid_file=str(tmp_path / "pid")))
    store = Store(tmp_path / "runs.sqlite")
    with DaskExecutor(2, retries=0) as executor, killing_the_first_trials_worker(tmp_path / "pid"):
        run_id = run(RunSpec("test/sleepy", "random", 0, 6, "live", workers=2), store, registry, executor=executor)
    trials = store.trials(run_id)
    assert [st.number for st in trials] == list(range(6))
    failed = [st for st in trials if not st.result.ok]
    assert len(failed) == 1 and failed[0].result.status is Status.FAILED
    assert failed[0].result.error.startswith("worker lost: KilledWorker") and failed[0].worker == -1


def test_gpus_pin_one_worker_process_per_device_also_after_a_restart(tmp_path):
    registry = registry_with(sleepy(0.3, pid_file=str(tmp_path / "pid")))
    store = Store(tmp_path / "runs.sqlite")
    with DaskExecutor(2, gpus=("3", "5")) as executor, killing_the_first_trials_worker(tmp_path / "pid") as killed:
        assert executor.resources == {"GPU": 1}
        run_id = run(RunSpec("test/sleepy", "random", 0, 10, "live", workers=2), store, registry, executor=executor)
    trials = store.trials(run_id)
    pins = {(st.worker, st.result.extra["pid"], st.result.extra["cuda_visible_devices"]) for st in trials}
    # Worker 0 stays on GPU 3 and worker 1 on GPU 5, the killed one after its nanny restarted it as a new process.
    assert {(worker, device) for worker, _, device in pins} == {(0, "3"), (1, "5")}
    assert len({pid for _, pid, _ in pins}) == 2 and killed[0] not in {pid for _, pid, _ in pins}


def test_process_pool_runs_pinned_and_survives_a_killed_process(tmp_path):
    registry = registry_with(sleepy(0.2, pid_file=str(tmp_path / "pid")))
    store = Store(tmp_path / "runs.sqlite")
    with ProcessExecutor(2, gpus=("0", "1")) as executor, killing_the_first_trials_worker(tmp_path / "pid"):
        run_id = run(RunSpec("test/sleepy", "random", 0, 6, "live", workers=2), store, registry, executor=executor)
    trials = store.trials(run_id)
    assert [st.number for st in trials] == list(range(6)) and all(st.result.ok for st in trials)
    # A dead process breaks the whole pool, so every trial in flight then is retried (at least the killed one).
    assert 1 <= sum("lost_attempts" in st.result.extra for st in trials) <= 2
    assert {(st.worker, st.result.extra["cuda_visible_devices"]) for st in trials} == {(0, "0"), (1, "1")}


CLIENT = """
import sys
from bench.executors import ProcessExecutor
from bench.registry import Registry
from bench.runner import RunSpec, run
from bench.store import Store
from executor_problems import hanging, sleepy

registry = Registry()
registry.problems["test/sleepy"] = sleepy(0.1, pid_file=sys.argv[1])
with ProcessExecutor(1) as executor:
    run(RunSpec("test/sleepy", "random", 0, 5, "live"), Store(sys.argv[2]), registry, executor=executor)
"""


def test_a_sigkilled_client_of_the_process_pool_leaves_no_worker_computing(tmp_path):
    import subprocess
    import sys

    import psutil

    pid_file = tmp_path / "pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(pid_file), str(tmp_path / "runs.sqlite")], env=env)
    deadline = time.time() + 120
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")) and time.time() < deadline:
        time.sleep(0.05)
    worker = psutil.Process(int(pid_file.read_text()))  # blocked in its first trial
    client.kill()
    client.wait()
    try:
        worker.wait(timeout=10)
    except psutil.TimeoutExpired:
        worker.kill()
        pytest.fail("the pool worker outlived its SIGKILLed client by 10 s")


@pytest.mark.parametrize("executor,how", [("local", "sleep"), ("local", "spin"), ("process", "sleep"),
                                          ("dask", "spin")])
def test_a_hung_trial_is_stored_as_timeout_on_every_executor_and_the_run_goes_on(tmp_path, executor, how, dask2):
    """A Dask worker runs trials in a thread, where the timeout lands at the next bytecode: a spinning trial
    is stopped, a sleeping one would sleep on (docs/distributed.md)."""
    from bench.executors import LocalExecutor

    registry = registry_with(hanging(how))
    store = Store(tmp_path / "runs.sqlite")
    running = {"local": lambda: LocalExecutor(2), "process": lambda: ProcessExecutor(2),
               "dask": lambda: dask2}[executor]()
    started = time.perf_counter()
    run_id = run(RunSpec("test/hanging", "random", 0, 6, "live", workers=2, trial_timeout=1.0), store, registry,
                 executor=running)
    trials = store.trials(run_id)
    hung = [st for st in trials if st.trial.config["x"] < 0.5]
    assert len(trials) == 6 and 0 < len(hung) < 6
    assert all(st.result.status is Status.TIMEOUT and "ran past the 1 s limit" in st.result.error
               and 1.0 <= st.result.cost < 5 for st in hung)
    assert all(st.result.ok for st in trials if st not in hung)
    assert time.perf_counter() - started < 30 + 5 * len(hung)


def test_a_tiny_live_lora_problem_runs_on_dask_workers(tmp_path, dask2):
    from test_lora_live import tiny_spec
    from tiny_lm import make_tiny_lm

    registry = registry_with(tiny_spec(make_tiny_lm(tmp_path)))
    store = Store(tmp_path / "runs.sqlite")
    run_id = run(RunSpec("lora-hpo/tiny", "random", 0, 2, "live", workers=2), store, registry, executor=dask2)
    trials = store.trials(run_id)
    assert len(trials) == 2
    for st in trials:
        assert st.result.status is Status.OK and st.result.source == "live", st.result.error
        assert [point["steps"] for point in st.result.extra["curve"]] == [2, 4, 6]
        assert 0.0 <= st.result.objectives["tiny_acc"] <= 1.0


SLURM = """
jobqueue:
  slurm:
    queue: gpu
    account: my-project
    cores: 1
    processes: 1
    memory: 32GB
    walltime: "04:00:00"
    job_cpu: 8
    job_extra_directives: ["--gres=gpu:1"]
    worker_extra_args: ["--resources", "GPU=1"]
    job_script_prologue: ["source /shared/bench/.venv/bin/activate"]
"""


def test_a_slurm_cluster_is_built_from_its_config_file_without_submitting(tmp_path):
    path = tmp_path / "slurm.yaml"
    path.write_text(SLURM)
    cluster = jobqueue_cluster(path)
    try:
        script = cluster.job_script()
        assert cluster.scheduler.allowed_failures == 0  # a lost worker reaches the executor, which counts retries
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=8", "#SBATCH --gres=gpu:1",
                 "#SBATCH -t 04:00:00", "--nthreads 1", "--resources GPU=1",
                 "source /shared/bench/.venv/bin/activate"):
        assert line in script


@pytest.mark.parametrize("args, fragment", [
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler and --cluster need --executor dask"),
    (["--executor", "local", "--gpus", "0"], "--gpus needs --executor process or dask"),
    (["--executor", "process", "--gpus", "0,1"], "give --workers 2, one per GPU"),
    (["--executor", "dask", "--cluster", "nowhere.yaml"], "must hold one 'jobqueue: {slurm: ...}' section"),
])
def test_bad_executor_options_are_refused_with_one_line_before_anything_is_written(store, args, fragment):
    out = bench_cli("run", "synthetic/branin", "--optimizer", "random", *args, "--store", str(store))
    assert out.returncode != 0
    assert fragment in out.stderr.strip().splitlines()[-1]
    assert not store.exists()



def test_an_interrupted_dask_run_resumes_by_replay_with_every_trial_once(tmp_path, dask2):
    registry = registry_with(sleepy(0.05))
    spec = RunSpec("test/sleepy", "random", 0, 12, "live", workers=2)
    store = Store(tmp_path / "runs.sqlite")

    def interrupt(told, used):
        if told == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(spec, store, registry, executor=dask2, progress=interrupt)
    before = {st.number: st for st in store.trials(1)}
    assert len(before) == 5
    assert run(spec, store, registry, executor=dask2, resume=True) == 1
    trials = store.trials(1)
    assert [st.number for st in trials] == list(range(12))
    assert all(st.start == before[st.number].start for st in trials if st.number in before)
    new = [st for st in trials if st.number not in before]
    assert min(st.start for st in new) >= max(st.end for st in before.values())  # the clock goes on from the stop
    clean = Store(tmp_path / "clean.sqlite")
    assert comparable(store, 1) == comparable(clean, run(spec, clean, registry, executor=dask2))
