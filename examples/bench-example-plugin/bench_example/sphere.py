from ConfigSpace import ConfigurationSpace, Float

from bench.plugin import Objective, Problem, Result


class Sphere(Problem):
    space = ConfigurationSpace({name: Float(name, (-5.0, 5.0)) for name in ("a", "b", "c")})
    objectives = (Objective("value", "min", optimum=0.0),)

    def evaluate(self, config, fidelity, seed):
        return Result({"value": sum(v * v for v in config.values())}, cost=1.0, source="analytic")
