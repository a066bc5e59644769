"""The public plugin API in one importable place. A plugin's ``__init__`` registers specs with what
``bench.hookspecs`` gives (light, so `bench list` loads no numpy); its implementation modules build on
what this module gives. Anything else in bench may change without notice."""

from bench import cache_dir
from bench.hookspecs import Capabilities, OptimizerSpec, ProblemSpec, hookimpl
from bench.optimizer import Optimizer
from bench.problem import Objective, Problem
from bench.space import Fidelity, InvalidConfiguration, from_unit, to_unit, validate
from bench.trial import Result, Status, Trial

__all__ = ["Capabilities", "cache_dir", "Fidelity", "InvalidConfiguration", "Objective", "Optimizer", "OptimizerSpec", "Problem",
           "ProblemSpec", "Result", "Status", "Trial", "from_unit", "hookimpl", "to_unit", "validate"]
