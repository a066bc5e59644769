"""The NAS genotype (docs/methods.md section 2) and its encoding in the suite's search space.

A genotype is a list of encoder blocks. Each block has its multi-head self-attention (number of
heads) and one or more feed-forward modules (activation, depth >= 2 linear layers, intermediate
sizes): the first is the block's own FFN, the others are extra FFN modules added by mutation.
A block may name the parent layer it descends from (``origin``); its attention and first FFN
inherit that layer's weights when they are the parent's unchanged, everything else is new.
The parent is always the problem's pre-trained model, so an evaluation depends on the
configuration alone and every generic optimizer can search the same space.

The ConfigSpace encoding has one hyperparameter per gene, with conditions on the block count,
the FFN count and the FFN depth; its default configuration is the parent itself. Names:
``blocks``; ``block{i}_origin``, ``block{i}_heads``, ``block{i}_ffns``;
``block{i}_ffn{k}_activation``, ``block{i}_ffn{k}_depth``, ``block{i}_ffn{k}_size{j}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ConfigSpace import (
    CategoricalHyperparameter,
    ConfigurationSpace,
    GreaterThanCondition,
    OrdinalHyperparameter,
    UniformIntegerHyperparameter,
)

from bench.tables import Encoding

ACTIVATIONS = ("relu", "gelu")
HEAD_CHOICES = (4, 6, 8, 12, 16)
SIZE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25)  # of the parent's intermediate size (AutoTinyBERT-like)
MIN_DEPTH, MAX_DEPTH = 2, 3  # linear layers per FFN module
MAX_FFNS = 3  # the block's own FFN and up to two extra ones
NEW = "new"
GENOTYPE = "distilbert-nas"  # the space's meta names it, so nsga2-nas refuses other spaces


@dataclass(frozen=True)
class Dims:
    """What the genotype needs of the parent model: its shape, not its weights."""

    vocab_size: int
    hidden: int
    max_positions: int
    layers: int
    heads: int
    intermediate: int
    activation: str = "gelu"
    type_vocab: int = 0  # BERT's token-type embeddings; DistilBERT has none
    layer_norm_eps: float = 1e-12
    extra_blocks: int = 2  # how many blocks beyond the parent's a genotype may have

    @property
    def max_blocks(self) -> int:
        return self.layers + self.extra_blocks

    @property
    def head_choices(self) -> tuple[int, ...]:
        return tuple(sorted({h for h in HEAD_CHOICES if self.hidden % h == 0} | {self.heads}))

    @property
    def size_choices(self) -> tuple[int, ...]:
        return tuple(sorted({int(round(self.intermediate * f / 64)) * 64 or 64 for f in SIZE_FACTORS}
                            | {self.intermediate}))

    def parent_ffn(self) -> FFN:
        return FFN(self.activation, (self.intermediate,))


@dataclass(frozen=True)
class FFN:
    activation: str
    sizes: tuple[int, ...]  # intermediate sizes: depth - 1 of them

    @property
    def depth(self) -> int:
        return len(self.sizes) + 1


@dataclass(frozen=True)
class Block:
    heads: int
    ffns: tuple[FFN, ...]  # the block's own FFN first, then the extra modules
    origin: int | None = None  # the parent layer it descends from; None: a new block


@dataclass(frozen=True)
class Genotype:
    blocks: tuple[Block, ...]
    dims: Dims = field(compare=False)

    @classmethod
    def parent(cls, dims: Dims) -> Genotype:
        return cls(tuple(Block(dims.heads, (dims.parent_ffn(),), i) for i in range(dims.layers)), dims)

    def new_modules(self) -> list[tuple[int, str]]:
        """(block, module) pairs that are freshly initialised: ``attention`` or ``ffn{k}``."""
        return [(i, name) for i, block in enumerate(self.blocks) for name in block_modules(block)
                if not inherits(block, name, self.dims)]

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"blocks": len(self.blocks)}
        for i, block in enumerate(self.blocks):
            config[f"block{i}_origin"] = NEW if block.origin is None else str(block.origin)
            config[f"block{i}_heads"] = block.heads
            config[f"block{i}_ffns"] = len(block.ffns)
            for k, ffn in enumerate(block.ffns):
                config[f"block{i}_ffn{k}_activation"] = ffn.activation
                config[f"block{i}_ffn{k}_depth"] = ffn.depth
                for j, size in enumerate(ffn.sizes):
                    config[f"block{i}_ffn{k}_size{j}"] = size
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], dims: Dims) -> Genotype:
        blocks = []
        for i in range(config["blocks"]):
            ffns = tuple(FFN(config[f"block{i}_ffn{k}_activation"],
                             tuple(config[f"block{i}_ffn{k}_size{j}"] for j in range(config[f"block{i}_ffn{k}_depth"] - 1)))
                         for k in range(config[f"block{i}_ffns"]))
            origin = config[f"block{i}_origin"]
            blocks.append(Block(config[f"block{i}_heads"], ffns, None if origin == NEW else int(origin)))
        return cls(tuple(blocks), dims)


def block_modules(block: Block) -> list[str]:
    return ["attention"] + [f"ffn{k}" for k in range(len(block.ffns))]


def inherits(block: Block, module: str, dims: Dims) -> bool:
    """A module inherits the parent's weights when its block descends from a parent layer and the
    module is that layer's unchanged; extra FFN modules are always new."""
    if block.origin is None:
        return False
    if module == "attention":
        return block.heads == dims.heads
    return module == "ffn0" and block.ffns[0] == dims.parent_ffn()


def nas_space(dims: Dims) -> ConfigurationSpace:
    """The genotype as a conditional ConfigSpace whose default is the parent; ``meta`` keeps the dims."""
    space = ConfigurationSpace(meta={"genotype": GENOTYPE, "nas_dims": vars(dims)})
    parent = Genotype.parent(dims).to_config()
    blocks = UniformIntegerHyperparameter("blocks", 1, dims.max_blocks, default_value=dims.layers)
    space.add(blocks)
    origins = (NEW, *map(str, range(dims.layers)))
    for i in range(dims.max_blocks):
        own = [
            CategoricalHyperparameter(f"block{i}_origin", origins, default_value=parent.get(f"block{i}_origin", NEW)),
            OrdinalHyperparameter(f"block{i}_heads", dims.head_choices, default_value=dims.heads),
            UniformIntegerHyperparameter(f"block{i}_ffns", 1, MAX_FFNS, default_value=1),
        ]
        space.add(own)
        conditions = [GreaterThanCondition(hp, blocks, i) for hp in own] if i else []  # block 0 always exists
        for k in range(MAX_FFNS):
            activation = CategoricalHyperparameter(f"block{i}_ffn{k}_activation", ACTIVATIONS,
                                                   default_value=dims.activation)
            depth = UniformIntegerHyperparameter(f"block{i}_ffn{k}_depth", MIN_DEPTH, MAX_DEPTH, default_value=2)
            sizes = [OrdinalHyperparameter(f"block{i}_ffn{k}_size{j}", dims.size_choices,
                                           default_value=dims.intermediate) for j in range(MAX_DEPTH - 1)]
            space.add([activation, depth, *sizes])
            gates = [own[2], k] if k else [blocks, i] if i else None
            conditions += [GreaterThanCondition(hp, *gates) for hp in (activation, depth, sizes[0])] if gates else []
            conditions += [GreaterThanCondition(size, depth, j + 1) for j, size in enumerate(sizes) if j > 0]
        space.add(conditions)
    return space


def dims_of(space: ConfigurationSpace) -> Dims:
    """The dims a NAS space was made for (an optimizer sees only the space)."""
    try:
        return Dims(**space.meta["nas_dims"])
    except (KeyError, TypeError) as exc:
        raise ValueError("this search space is not a NAS genotype space (no nas_dims in its meta)") from exc


def count_params(genotype: Genotype) -> int:
    """Parameters of the QA model (embeddings, encoder blocks, start/end head), without building it."""
    d = genotype.dims
    h = d.hidden
    total = (d.vocab_size + d.max_positions + d.type_vocab) * h + 2 * h  # embeddings and their LayerNorm
    for block in genotype.blocks:
        total += 4 * (h * h + h) + 2 * h  # query, key, value, output; LayerNorm
        for ffn in block.ffns:
            widths = (h, *ffn.sizes, h)
            total += sum(a * b + b for a, b in zip(widths, widths[1:])) + 2 * h
    return total + 2 * h + 2


def genotype_encoding(dims: Dims) -> Encoding:
    """The genotype as a fixed-length vector for a table's surrogates: per block slot (empty slots all zero) whether
    it holds a block, its heads, whether its attention is new, its FFN count and share of new modules, and per FFN
    slot whether it is there, its activation, depth and intermediate sizes; then totals (blocks, parameters, FFN
    modules, new-module share, mean heads, intermediate width), each scaled by its range or the parent's."""
    block = ["present", "heads", "attention_new", "ffns", "new_share"]
    ffn = ["active", "gelu", "depth", "size0", "size1"]
    features = [f"block{i}_{name}" for i in range(dims.max_blocks)
                for name in block + [f"ffn{k}_{f}" for k in range(MAX_FFNS) for f in ffn]]
    features += ["blocks", "params", "ffn_modules", "new_share", "mean_heads", "ffn_width"]
    top_heads, top_size = max(dims.head_choices), max(dims.size_choices)
    parent_params, parent_width = count_params(Genotype.parent(dims)), dims.layers * dims.intermediate

    def encode(config) -> np.ndarray:
        genotype = Genotype.from_config(config, dims)
        new = set(genotype.new_modules())
        out = np.zeros(len(features))
        for i, b in enumerate(genotype.blocks):
            modules = block_modules(b)
            values = [1.0, b.heads / top_heads, float((i, "attention") in new), len(b.ffns) / MAX_FFNS,
                      sum((i, m) in new for m in modules) / len(modules)]
            for f in b.ffns:
                sizes = [s / top_size for s in f.sizes] + [0.0] * (MAX_DEPTH - 1 - len(f.sizes))
                values += [1.0, float(f.activation == "gelu"), (f.depth - MIN_DEPTH) / (MAX_DEPTH - MIN_DEPTH), *sizes]
            start = i * (len(block) + MAX_FFNS * len(ffn))
            out[start: start + len(values)] = values
        module_count = sum(len(block_modules(b)) for b in genotype.blocks)
        out[-6:] = [len(genotype.blocks) / dims.max_blocks, count_params(genotype) / parent_params,
                    sum(len(b.ffns) for b in genotype.blocks) / (dims.max_blocks * MAX_FFNS), len(new) / module_count,
                    np.mean([b.heads for b in genotype.blocks]) / top_heads,
                    sum(sum(f.sizes) for b in genotype.blocks for f in b.ffns) / parent_width]
        return out

    return Encoding(f"{GENOTYPE} genotype", tuple(features), encode)
