"""A real PyTorch encoder built from a genotype, with weights inherited from a DistilBERT or BERT parent.

The encoder is the post-LayerNorm transformer both families share (embeddings; per block a
multi-head self-attention with its LayerNorm, then each FFN module with a residual and its
LayerNorm), plus the masked-LM head both share (dense, GELU, LayerNorm, decoder tied to the word
embeddings) and an extractive-QA head (start/end logits). The parent's weights are read into
one naming (``ParentWeights``), so either family is a parent. Modules the genotype inherits
(``genotype.inherits``) get the parent's tensors copied; everything else is freshly initialised
as BERT does (normal 0.02, LayerNorm 1/0) from the evaluation's seed, and its parameter names
are returned as new, which is what pre-training phase 0 trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench_nas.genotype import FFN, Block, Dims, Genotype, inherits

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
MLM_KEYS = ("mlm.transform.weight", "mlm.transform.bias", "mlm.norm.weight", "mlm.norm.bias", "mlm.bias")

# (pattern, canonical name) for DistilBERT and BERT checkpoints, with or without a task head.
_RULES = [(re.compile(p), r) for p, r in [
    (r"^(?:distilbert\.|bert\.)?embeddings\.word_embeddings\.", "embeddings.word."),
    (r"^(?:distilbert\.|bert\.)?embeddings\.position_embeddings\.", "embeddings.position."),
    (r"^(?:bert\.)?embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"^(?:distilbert\.|bert\.)?embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.q_lin\.", r"layer\1.attention.query."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.k_lin\.", r"layer\1.attention.key."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.v_lin\.", r"layer\1.attention.value."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.attention\.out_lin\.", r"layer\1.attention.output."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.sa_layer_norm\.", r"layer\1.attention.norm."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.ffn\.lin1\.", r"layer\1.ffn.layers.0."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.ffn\.lin2\.", r"layer\1.ffn.layers.1."),
    (r"^(?:distilbert\.)?transformer\.layer\.(\d+)\.output_layer_norm\.", r"layer\1.ffn.norm."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layer\1.attention.query."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layer\1.attention.key."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layer\1.attention.value."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layer\1.attention.output."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layer\1.attention.norm."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layer\1.ffn.layers.0."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.", r"layer\1.ffn.layers.1."),
    (r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layer\1.ffn.norm."),
    (r"^vocab_transform\.", "mlm.transform."),
    (r"^vocab_layer_norm\.", "mlm.norm."),
    (r"^vocab_projector\.bias$", "mlm.bias"),
    (r"^cls\.predictions\.transform\.dense\.", "mlm.transform."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "mlm.norm."),
    (r"^cls\.predictions\.bias$", "mlm.bias"),
]]


@dataclass
class ParentWeights:
    """A parent's shape and its tensors under canonical names (``mlm.*`` only if it has a trained head)."""

    dims: Dims
    tensors: dict[str, torch.Tensor]

    @classmethod
    def from_hf(cls, model, missing=()) -> ParentWeights:
        """From a transformers DistilBERT/BERT model (any head); ``missing`` are the keys its loading
        reported as missing (freshly initialised by transformers, so not the parent's)."""
        tensors = {}
        for key, value in model.state_dict().items():
            rule = next(((p, n) for p, n in _RULES if p.search(key)), None)
            if rule and key not in set(missing):
                tensors[rule[0].sub(rule[1], key)] = value.detach().clone().float()
        if not all(k in tensors for k in MLM_KEYS):  # a partial head is no trained head
            tensors = {k: v for k, v in tensors.items() if not k.startswith("mlm.")}
        return cls(dims_from_config(model.config), tensors)

    @property
    def has_mlm_head(self) -> bool:
        return all(k in self.tensors for k in MLM_KEYS)


def dims_from_config(config) -> Dims:
    if config.model_type == "distilbert":
        return Dims(config.vocab_size, config.dim, config.max_position_embeddings, config.n_layers, config.n_heads,
                    config.hidden_dim, config.activation, 0, 1e-12)
    return Dims(config.vocab_size, config.hidden_size, config.max_position_embeddings, config.num_hidden_layers,
                config.num_attention_heads, config.intermediate_size, config.hidden_act, config.type_vocab_size,
                config.layer_norm_eps)


class Embeddings(nn.Module):
    def __init__(self, dims: Dims, dropout: float) -> None:
        super().__init__()
        self.word = nn.Embedding(dims.vocab_size, dims.hidden)
        self.position = nn.Embedding(dims.max_positions, dims.hidden)
        self.token_type = nn.Embedding(dims.type_vocab, dims.hidden) if dims.type_vocab else None
        self.norm = nn.LayerNorm(dims.hidden, eps=dims.layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, token_type_ids=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word(input_ids) + self.position(positions)
        if self.token_type is not None:
            x = x + self.token_type(torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids)
        return self.dropout(self.norm(x))


class Attention(nn.Module):
    def __init__(self, dims: Dims, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query, self.key, self.value, self.output = (nn.Linear(dims.hidden, dims.hidden) for _ in range(4))
        self.norm = nn.LayerNorm(dims.hidden, eps=dims.layer_norm_eps)

    def forward(self, x, mask):
        b, n, h = x.shape
        split = lambda t: t.view(b, n, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.norm(x + F.dropout(self.output(y.transpose(1, 2).reshape(b, n, h)), self.dropout,
                                       self.training))


class FeedForward(nn.Module):
    def __init__(self, dims: Dims, ffn: FFN, dropout: float) -> None:
        super().__init__()
        widths = (dims.hidden, *ffn.sizes, dims.hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.activation = _ACTIVATIONS[ffn.activation]
        self.norm = nn.LayerNorm(dims.hidden, eps=dims.layer_norm_eps)
        self.dropout = dropout

    def forward(self, x):
        y = x
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i < len(self.layers) - 1:
                y = self.activation(y)
        return self.norm(x + F.dropout(y, self.dropout, self.training))


class EncoderBlock(nn.Module):
    def __init__(self, dims: Dims, block: Block, dropout: float) -> None:
        super().__init__()
        self.attention = Attention(dims, block.heads, dropout)
        self.ffns = nn.ModuleList(FeedForward(dims, ffn, dropout) for ffn in block.ffns)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        for ffn in self.ffns:
            x = ffn(x)
        return x


class MLMHead(nn.Module):
    def __init__(self, dims: Dims) -> None:
        super().__init__()
        self.transform = nn.Linear(dims.hidden, dims.hidden)
        self.norm = nn.LayerNorm(dims.hidden, eps=dims.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(dims.vocab_size))

    def forward(self, hidden, word_embeddings):
        return F.linear(self.norm(F.gelu(self.transform(hidden))), word_embeddings, self.bias)


class NasModel(nn.Module):
    """Encoder + masked-LM head (pre-training) + QA head (fine-tuning and the ``params`` objective)."""

    def __init__(self, genotype: Genotype, dropout: float = 0.1) -> None:
        super().__init__()
        dims = genotype.dims
        self.genotype = genotype
        self.embeddings = Embeddings(dims, dropout)
        self.blocks = nn.ModuleList(EncoderBlock(dims, block, dropout) for block in genotype.blocks)
        self.mlm = MLMHead(dims)
        self.qa = nn.Linear(dims.hidden, 2)

    def encode(self, input_ids, attention_mask, token_type_ids=None):
        mask = attention_mask[:, None, None, :].bool()  # keys that may be attended to
        x = self.embeddings(input_ids, token_type_ids)
        for block in self.blocks:
            x = block(x, mask)
        return x

    def mlm_logits(self, hidden):
        return self.mlm(hidden, self.embeddings.word.weight)

    def qa_logits(self, input_ids, attention_mask, token_type_ids=None):
        start, end = self.qa(self.encode(input_ids, attention_mask, token_type_ids)).unbind(-1)
        return start, end

    def qa_parameters(self) -> int:
        """The size objective: everything the QA model needs (the MLM head is for pre-training only)."""
        mlm = {id(p) for p in self.mlm.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in mlm)


def _init_fresh(module: nn.Module) -> None:
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, std=0.02)
            if getattr(sub, "bias", None) is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


def build(genotype: Genotype, parent: ParentWeights, seed: int, dropout: float = 0.1) -> tuple[NasModel, set[str]]:
    """The model for ``genotype`` and the names of its new (freshly initialised) parameters."""
    if genotype.dims != parent.dims:
        raise ValueError("the genotype was made for another parent shape than this parent's")
    torch.manual_seed(seed)
    model = NasModel(genotype, dropout)
    _init_fresh(model)
    copies: dict[str, str] = {f"embeddings.{k}": f"embeddings.{k}" for k in
                              ("word.weight", "position.weight", "norm.weight", "norm.bias")}
    if genotype.dims.type_vocab:
        copies["embeddings.token_type.weight"] = "embeddings.token_type.weight"
    if parent.has_mlm_head:
        copies.update({k: k for k in MLM_KEYS})
    for i, block in enumerate(genotype.blocks):
        if inherits(block, "attention", genotype.dims):
            for name in ("query", "key", "value", "output", "norm"):
                for p in ("weight", "bias"):
                    copies[f"blocks.{i}.attention.{name}.{p}"] = f"layer{block.origin}.attention.{name}.{p}"
        if inherits(block, "ffn0", genotype.dims):
            for name in ("layers.0", "layers.1", "norm"):
                for p in ("weight", "bias"):
                    copies[f"blocks.{i}.ffns.0.{name}.{p}"] = f"layer{block.origin}.ffn.{name}.{p}"
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, source in copies.items():
            params[name].copy_(parent.tensors[source])
    return model, set(params) - set(copies)
