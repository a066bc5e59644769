"""Problems for the executor tests, importable by worker processes (they are created there by name)."""

from __future__ import annotations

import os
import time

from ConfigSpace import ConfigurationSpace, Float

from bench.hookspecs import ProblemSpec
from bench.problem import Objective, Problem
from bench.trial import Result

BLOCK_SECONDS = 60.0


class Sleepy(Problem):
    """Sleeps ``seconds`` per trial (an evaluation that keeps its worker busy) and reports its process
    and the GPU that process is pinned to. With ``pid_file``, the first trial to start writes its
    process id there and blocks, so that a test can kill that worker process mid-trial."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 1.0)), "y": Float("y", (0.0, 1.0))})
    objectives = (Objective("value", "min"),)

    def __init__(self, mode: str, seconds: float = 0.0, pid_file: str | None = None) -> None:
        super().__init__(mode)
        self.seconds, self.pid_file = seconds, pid_file

    def evaluate(self, config, fidelity, seed):
        seconds = self.seconds
        if self.pid_file:
            try:
                fd = os.open(self.pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # exactly one trial wins
            except FileExistsError:
                pass
            else:
                os.write(fd, f"{os.getpid()}\n".encode())  # the newline says the pid is complete
                os.close(fd)
                seconds = BLOCK_SECONDS
        time.sleep(seconds)
        return Result({"value": (config["x"] - 0.3) ** 2 + config["y"]}, cost=seconds, source="analytic",
                      extra={"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})


def sleepy(seconds: float = 0.0, pid_file: str | None = None) -> ProblemSpec:
    return ProblemSpec("test/sleepy", "sleeps per trial", "executor_problems:Sleepy", ("value",),
                       kwargs={"seconds": seconds, "pid_file": pid_file})


class Hanging(Problem):
    """Hangs on the left half of the space, sleeping or spinning in Python (up to a minute, so that a
    broken timeout fails a test instead of hanging it); answers at once on the right half."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 1.0))})
    objectives = (Objective("value", "min"),)

    def __init__(self, mode: str, how: str = "sleep") -> None:
        super().__init__(mode)
        self.how = how

    def evaluate(self, config, fidelity, seed):
        started = time.perf_counter()
        if config["x"] < 0.5:
            if self.how == "sleep":
                time.sleep(BLOCK_SECONDS)
            while time.perf_counter() - started < BLOCK_SECONDS:
                pass
        return Result({"value": config["x"]}, cost=time.perf_counter() - started, source="analytic")


def hanging(how: str = "sleep") -> ProblemSpec:
    return ProblemSpec("test/hanging", "hangs on half its space", "executor_problems:Hanging", ("value",),
                       kwargs={"how": how})
