from bench.registry import Registry
from bench.trial import Result

REGISTRY = Registry()


def create(name, seed=0, budget=50):
    problem = REGISTRY.problem("synthetic/hartmann6").create()
    return problem, REGISTRY.optimizer(name).create(problem, problem.objectives, seed=seed, budget=budget)


def tell_value(optimizer, trial, value):
    optimizer.tell([trial], [Result({"value": value}, cost=1.0, source="analytic", fidelity=trial.fidelity)])


def test_hyperband_brackets_and_promotions():
    _, hb = create("hyperband")
    assert [hb.rung_fidelity(k) for k in range(5)] == [1, 4, 11, 33, 100]
    first = hb.ask(100)
    assert len(first) == 81 and {t.fidelity for t in first} == {1}
    assert hb.ask(1) == []  # the rung must finish before anything is promoted
    for i, trial in enumerate(first):
        tell_value(hb, trial, float(i % 10) if i != 40 else -5.0)
    second = hb.ask(100)
    assert len(second) == 27 and {t.fidelity for t in second} == {4}
    assert second[0].config == first[40].config  # the best goes first
    promoted = {repr(t.config) for t in second}
    assert promoted <= {repr(t.config) for t in first if t.info["rung"] == 0}


def test_failed_trials_are_never_promoted():
    _, hb = create("hyperband")
    first = hb.ask(81)
    for i, trial in enumerate(first):
        if i < 60:
            hb.tell([trial], [Result.failure("boom", 0.1)])
        else:
            tell_value(hb, trial, float(i))
    second = hb.ask(100)
    assert [t.config for t in second] == [t.config for t in first[60:]]  # 21 survivors, not 27 with failures


def test_asha_promotes_the_top_third_as_soon_as_it_can():
    _, asha = create("asha")
    trials = asha.ask(3)
    assert {t.fidelity for t in trials} == {1}
    for trial, value in zip(trials, (0.5, -1.0, 0.0)):
        tell_value(asha, trial, value)
    [promoted] = asha.ask(1)
    assert promoted.fidelity == 4 and promoted.config == trials[1].config
    [fresh] = asha.ask(1)  # the only promotable configuration is taken: start a new one
    assert fresh.fidelity == 1 and fresh.config not in [t.config for t in trials]


def test_a_fidelity_narrower_than_eta_still_has_a_rung_to_stop_at():
    from bench.problem import Objective, Problem
    from bench.space import Fidelity

    class TwoPhases(Problem):  # NAS's fidelity: the phase-0 cutoff at 100 steps and the end at 200
        space = REGISTRY.problem("synthetic/branin").create().space
        objectives = (Objective("value", "min"),)
        fidelity = Fidelity("pretrain_steps", 100, 200)

        def evaluate(self, config, fidelity, seed):
            return Result({"value": config["x1"]}, cost=1.0)

    problem = TwoPhases("live")
    hb = REGISTRY.optimizer("hyperband").create(problem, problem.objectives, seed=0, budget=20)
    assert (hb.eta, hb.top_rung) == (2.0, 1)
    first = hb.ask(10)
    assert len(first) == 2 and {t.fidelity for t in first} == {100}  # bracket s=1: two at the cutoff, one goes on
    for i, trial in enumerate(first):
        tell_value(hb, trial, float(i))
    [promoted] = hb.ask(10)
    assert promoted.fidelity == 200 and promoted.config == first[0].config
    asha = REGISTRY.optimizer("asha").create(problem, problem.objectives, seed=0, budget=20)
    early = asha.ask(2)
    assert {t.fidelity for t in early} == {100}
    for i, trial in enumerate(early):
        tell_value(asha, trial, float(i))
    [next_one] = asha.ask(1)
    assert next_one.fidelity == 200 and next_one.config == early[0].config  # the top half goes on
