"""The source's mutation operators (no crossover).

Per block, visited in random order: the encoder mutation first (probability 0.2: insert a new
block after it 2/3 of the time, remove it 1/3), then the FFN mutation (0.4: add an extra FFN
module 2/3, replace one of its FFN modules by a newly drawn one 1/3), then the attention
mutation (0.4: redraw the number of heads). A redrawn module always differs from the one it
replaces and from the parent's, so it is new in fact, as the source's "new" flag says. Operators
that would leave the space (more blocks or FFN modules than it has, no block) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bench.space import validate
from bench_nas.genotype import ACTIVATIONS, MAX_DEPTH, MAX_FFNS, MIN_DEPTH, FFN, Block, Dims, Genotype, dims_of


@dataclass(frozen=True)
class Rates:
    block: float = 0.2
    ffn: float = 0.4
    attention: float = 0.4


SOURCE_RATES = Rates()
INITIAL_RATES = Rates(0.4, 0.8, 0.8)  # the stronger mutation that makes the initial population


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def random_ffn(dims: Dims, rng: np.random.Generator) -> FFN:
    depth = int(rng.integers(MIN_DEPTH, MAX_DEPTH + 1))
    return FFN(_choice(rng, ACTIVATIONS), tuple(_choice(rng, dims.size_choices) for _ in range(depth - 1)))


def random_block(dims: Dims, rng: np.random.Generator) -> Block:
    return Block(_choice(rng, dims.head_choices), (random_ffn(dims, rng),), origin=None)


def _redrawn_ffn(current: FFN, dims: Dims, rng: np.random.Generator) -> FFN:
    while True:
        ffn = random_ffn(dims, rng)
        if ffn not in (current, dims.parent_ffn()):
            return ffn


def _redrawn_heads(current: int, dims: Dims, rng: np.random.Generator) -> int:
    options = [h for h in dims.head_choices if h not in (current, dims.heads)] or \
        [h for h in dims.head_choices if h != current]
    return _choice(rng, options)


def mutate(genotype: Genotype, rng: np.random.Generator, rates: Rates = SOURCE_RATES) -> Genotype:
    dims = genotype.dims
    slots: list[tuple[int | None, Block]] = list(enumerate(genotype.blocks))  # (original index, block)
    for i in rng.permutation(len(genotype.blocks)):  # encoder mutation first: insert after / remove
        if rng.random() < rates.block:
            position = next(j for j, (origin, _) in enumerate(slots) if origin == i)
            if rng.random() < 2 / 3:
                if len(slots) < dims.max_blocks:
                    slots.insert(position + 1, (None, random_block(dims, rng)))
            elif len(slots) > 1:
                del slots[position]
    out = [block for _, block in slots]
    for i in rng.permutation(len(out)):
        block = out[i]
        if rng.random() < rates.ffn:
            if rng.random() < 2 / 3:
                if len(block.ffns) < MAX_FFNS:
                    block = replace(block, ffns=block.ffns + (random_ffn(dims, rng),))
            else:
                k = int(rng.integers(len(block.ffns)))
                ffns = list(block.ffns)
                ffns[k] = _redrawn_ffn(ffns[k], dims, rng)
                block = replace(block, ffns=tuple(ffns))
        if rng.random() < rates.attention:
            block = replace(block, heads=_redrawn_heads(block.heads, dims, rng))
        out[i] = block
    return Genotype(tuple(out), dims)


def mutation_design(space, points: int) -> list[dict]:
    """A table build's design of ``points`` distinct genotypes (seed 0) drawn as ``nsga2-nas`` draws them, so
    the table covers the region a search visits: the parent first, then every fourth one mutated from the parent
    at the initial population's rates and the others from an earlier one at the source's rates. A longer
    design starts with a shorter one."""
    rng = np.random.default_rng(0)
    parent = Genotype.parent(dims_of(space))
    drawn = [parent]
    while len(drawn) < points:
        child = (mutate(parent, rng, INITIAL_RATES) if len(drawn) % 4 == 1 else
                 mutate(drawn[int(rng.integers(len(drawn)))], rng, SOURCE_RATES))
        if child not in drawn:
            drawn.append(child)
    return [validate(space, g.to_config()) for g in drawn]
