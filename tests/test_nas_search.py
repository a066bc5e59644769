"""The NAS genotype, its ConfigSpace encoding, the source's mutation operators and nsga2-nas."""

from __future__ import annotations

import numpy as np
import pytest

from bench.optimizer import Unsupported, check_supported
from bench.problem import Objective, Problem
from bench.registry import Registry
from bench.space import validate
from bench.trial import Result, Status
from bench_nas.genotype import FFN, Block, Dims, Genotype, count_params, nas_space
from bench_nas.mutation import INITIAL_RATES, Rates, mutate, mutation_design
from bench_nas.search import NSGA2NAS, crowding, pareto_ranks

DIMS = Dims(vocab_size=100, hidden=48, max_positions=64, layers=3, heads=12, intermediate=96, type_vocab=2)
SPACE = nas_space(DIMS)
PARENT = Genotype.parent(DIMS)


def random_genotypes(n: int, seed: int = 0) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    out, genotype = [], PARENT
    while len(out) < n:
        genotype = mutate(genotype, rng, INITIAL_RATES)
        out.append(genotype)
    return out


def test_the_space_default_is_the_parent_and_configs_round_trip():
    default = dict(SPACE.get_default_configuration())
    assert Genotype.from_config(default, DIMS) == PARENT
    assert validate(SPACE, PARENT.to_config()) == PARENT.to_config()
    assert PARENT.new_modules() == []
    for config in SPACE.sample_configuration(30):
        config = dict(config)
        assert Genotype.from_config(config, DIMS).to_config() == config


def test_conditions_follow_the_block_count_ffn_count_and_depth():
    config = PARENT.to_config()
    assert "block3_heads" not in config and "block0_ffn1_activation" not in config
    assert "block0_ffn0_size1" not in config
    with pytest.raises(ValueError):
        validate(SPACE, {**config, "block3_heads": 8})  # block 3 is inactive with 3 blocks


@pytest.mark.parametrize("seed", range(5))
def test_mutations_stay_in_the_space(seed):
    for genotype in random_genotypes(60, seed):
        assert validate(SPACE, genotype.to_config()) == genotype.to_config()
        assert 1 <= len(genotype.blocks) <= DIMS.max_blocks


def test_the_mutation_design_draws_distinct_genotypes_as_the_search_does_the_parent_first():
    configs = mutation_design(SPACE, 40)
    assert configs == mutation_design(SPACE, 40) and configs[:10] == mutation_design(SPACE, 10)  # seeded, a prefix
    genotypes = [Genotype.from_config(c, DIMS) for c in configs]
    assert genotypes[0] == PARENT and len(set(genotypes)) == 40
    assert all(validate(SPACE, c) == c for c in configs)
    # children of children too: some genotypes carry more new modules than any one mutation of the parent
    assert max(len(g.new_modules()) for i, g in enumerate(genotypes) if i % 4 != 1) > \
        max(len(g.new_modules()) for i, g in enumerate(genotypes) if i % 4 == 1)


def test_each_operator_does_what_the_source_says():
    rng = np.random.default_rng(1)
    grown = [mutate(PARENT, rng, Rates(1.0, 0.0, 0.0)) for _ in range(40)]
    assert all(len(g.blocks) <= DIMS.max_blocks for g in grown)
    lengths = [len(g.blocks) for g in grown]
    assert max(lengths) > 3 and min(lengths) < 3  # both adds and removes happen
    for g in grown:  # kept blocks keep their order and their origin; added blocks are new
        assert [b.origin for b in g.blocks if b.origin is not None] == sorted(b.origin for b in g.blocks
                                                                             if b.origin is not None)
    ffn = [mutate(PARENT, rng, Rates(0.0, 1.0, 0.0)) for _ in range(40)]
    for g in ffn:
        assert [b.heads for b in g.blocks] == [12] * 3
        for block in g.blocks:  # an added module is appended; an altered one differs from the parent's
            assert len(block.ffns) == 2 or block.ffns[0] != DIMS.parent_ffn()
    assert any(len(b.ffns) == 2 for g in ffn for b in g.blocks)
    attention = mutate(PARENT, rng, Rates(0.0, 0.0, 1.0))
    assert all(b.heads != 12 and b.ffns == (DIMS.parent_ffn(),) for b in attention.blocks)
    assert {m for _, m in attention.new_modules()} == {"attention"}


def test_new_modules_are_flagged():
    genotype = Genotype((Block(12, (DIMS.parent_ffn(),), 2), Block(8, (DIMS.parent_ffn(), FFN("relu", (48,))), 0),
                         Block(12, (FFN("relu", (96,)),), None)), DIMS)
    assert genotype.new_modules() == [(1, "attention"), (1, "ffn1"), (2, "attention"), (2, "ffn0")]


def test_parameter_count_by_hand():
    h, v, p, t = 48, 100, 64, 2
    embeddings = (v + p + t) * h + 2 * h
    attention = 4 * (h * h + h) + 2 * h
    ffn = (h * 96 + 96) + (96 * h + h) + 2 * h
    deep = (h * 24 + 24) + (24 * 192 + 192) + (192 * h + h) + 2 * h
    genotype = Genotype((Block(12, (DIMS.parent_ffn(), FFN("gelu", (24, 192))), 0),), DIMS)
    assert count_params(genotype) == embeddings + attention + ffn + deep + 2 * h + 2
    assert count_params(PARENT) == embeddings + 3 * (attention + ffn) + 2 * h + 2


def test_pareto_ranks_and_size_crowding_by_hand():
    values = np.array([[0.0, 4.0], [1.0, 1.0], [2.0, 0.0], [2.0, 2.0], [3.0, 3.0]])
    ranks = pareto_ranks(values)
    assert ranks.tolist() == [0, 0, 0, 1, 2]
    distance = crowding(values, ranks, axes=[1])
    assert distance[0] == distance[2] == np.inf and distance[1] == pytest.approx((4 - 0) / 4)


class Toy(Problem):
    """Cheap stand-in for the NAS problem: the score rewards blocks and punishes relu, size is exact."""

    objectives = (Objective("qa_score", "max"), Objective("params", "min"))

    def __init__(self):
        super().__init__("live")
        self.space = SPACE

    def evaluate(self, config, fidelity, seed):
        genotype = Genotype.from_config(config, DIMS)
        if len(genotype.blocks) == 5:
            return Result.failure("non-finite loss", 1.0, Status.DIVERGED)
        score = len(genotype.blocks) - sum(f.activation == "relu" for b in genotype.blocks for f in b.ffns) / 10
        return Result({"qa_score": score, "params": float(count_params(genotype))}, cost=1.0)


def test_nsga2_nas_generations_tournament_and_plus_selection():
    problem = Toy()
    optimizer = NSGA2NAS(problem.space, problem.objectives, seed=3)
    first = optimizer.ask(20)
    assert len(first) == 8 and optimizer.ask(1) == []  # the initial population, then wait for it
    assert len({repr(sorted(t.config.items())) for t in first}) == 8
    assert all(t.config != PARENT.to_config() for t in first)
    told = []
    for generation in range(4):
        trials = first if generation == 0 else optimizer.ask(20)
        assert len(trials) == (8 if generation == 0 else 12)
        results = [problem.evaluate(t.config, None, 0) for t in trials]
        optimizer.tell(trials, results)
        told += list(zip(trials, results))
        # plus-selection: the parents are the best 8 of everything so far by rank
        losses = np.array([optimizer.losses(r) for _, r in told])
        ranks = pareto_ranks(losses)
        kept = {id(t) for t, _ in optimizer.parents}
        kept_ranks = sorted(ranks[i] for i, (t, _) in enumerate(told) if id(t) in kept)
        assert len(kept) == 8 and kept_ranks == sorted(ranks)[:8]
        assert all(r.ok for _, r in optimizer.parents) or (ranks > 0).sum() < 8
    offspring_parents = [optimizer.select_parent() for _ in range(50)]
    parent_configs = {repr(sorted(t.config.items())) for t, _ in optimizer.parents}
    assert all(repr(sorted(g.to_config().items())) in parent_configs for g in offspring_parents)


def test_nsga2_nas_is_registered_and_refuses_other_spaces():
    from ConfigSpace import ConfigurationSpace, Float

    spec = Registry().optimizer("nsga2-nas")
    other = Toy()
    other.space = ConfigurationSpace({"x": Float("x", (0.0, 1.0))})
    with pytest.raises(Unsupported, match="distilbert-nas"):
        check_supported("nsga2-nas", spec.capabilities, other, other.objectives)
    check_supported("nsga2-nas", spec.capabilities, Toy(), Toy().objectives)


@pytest.mark.parametrize("name", ["random", "nsga2", "nsga2-nas"])
def test_general_optimizers_search_the_genotype_space_too(name, tmp_path):
    from bench.runner import RunSpec, run
    from bench.store import Store

    store = Store(tmp_path / "r.sqlite")
    run_id = run(RunSpec("distilbert-nas/toy", name, 0, 10, "live"), store, Registry(), problem=Toy())
    trials = store.trials(run_id)
    assert len(trials) == 10
    for st in trials:
        assert validate(SPACE, st.trial.config) == st.trial.config
        Genotype.from_config(st.trial.config, DIMS)


def test_the_genotype_encoding_has_one_length_and_tells_genotypes_apart():
    from bench_nas.genotype import genotype_encoding

    encoding = genotype_encoding(DIMS)
    designs = mutation_design(SPACE, 40)
    vectors = np.array([encoding.encode(c) for c in designs])
    assert vectors.shape == (40, len(encoding.features)) and len({tuple(v) for v in vectors}) == 40
    named = dict(zip(encoding.features, encoding.encode(PARENT.to_config())))
    assert named["blocks"] == 3 / 5 and named["params"] == 1.0 and named["new_share"] == 0.0
    assert named["block2_present"] == 1.0 and named["block3_present"] == 0.0 and named["block0_ffn1_active"] == 0.0
    child = Genotype(PARENT.blocks[:1] + (Block(4, (FFN("relu", (64, 96)),), None),), DIMS)
    named = dict(zip(encoding.features, encoding.encode(child.to_config())))
    assert named["block1_attention_new"] == 1.0 and named["block1_new_share"] == 1.0 and named["new_share"] == 0.5
    assert named["block1_ffn0_gelu"] == 0.0 and named["block1_ffn0_depth"] == 1.0
    assert named["params"] == count_params(child) / count_params(PARENT) and named["block2_present"] == 0.0
