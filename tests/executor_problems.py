"""Problems for the executor tests, importable by worker processes (they are created there by name)."""

from __future__ import annotations

import os
import signal
import time

from ConfigSpace import ConfigurationSpace, Float

from bench.hookspecs import ProblemSpec
from bench.problem import Objective, Problem
from bench.trial import Result


class Sleepy(Problem):
    """Sleeps ``seconds`` per trial (an evaluation that keeps its worker busy) and reports the GPU its
    process is pinned to. With ``kill_marker``, the first trial to start kills its own worker process."""

    space = ConfigurationSpace({"x": Float("x", (0.0, 1.0)), "y": Float("y", (0.0, 1.0))})
    objectives = (Objective("value", "min"),)

    def __init__(self, mode: str, seconds: float = 0.0, kill_marker: str | None = None) -> None:
        super().__init__(mode)
        self.seconds, self.kill_marker = seconds, kill_marker

    def evaluate(self, config, fidelity, seed):
        if self.kill_marker:
            try:
                os.close(os.open(self.kill_marker, os.O_CREAT | os.O_EXCL))  # exactly one trial wins
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.seconds)
        return Result({"value": (config["x"] - 0.3) ** 2 + config["y"]}, cost=self.seconds, source="analytic",
                      extra={"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})


def sleepy(seconds: float = 0.0, kill_marker: str | None = None) -> ProblemSpec:
    return ProblemSpec("test/sleepy", "sleeps per trial", "executor_problems:Sleepy", ("value",),
                       kwargs={"seconds": seconds, "kill_marker": kill_marker})
