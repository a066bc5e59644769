"""Padding-free forward passes of a causal LM: several sequences packed into one row.

Each segment attends causally to itself and, optionally, to one earlier segment (its
prefix), with positions continuing from that prefix. Training packs whole examples (no
prefix); scoring packs a context once with every continuation that follows it, so the
context is computed once per item instead of once per choice, and logits are taken only
where a target token is predicted. Masks are 4D, which transformers passes through as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Packed:
    """Rows of packed segments; ``where[k]`` is (row, offset) of segment k."""

    ids: Any  # [rows, length] token ids (padding: 0)
    positions: Any  # [rows, length]
    allowed: Any  # [rows, 1, length, length] bool: query i may attend to key j
    where: list[tuple[int, int]]


def pack(segments: list[tuple[list[int], int | None]], row_tokens: int) -> Packed:
    """Greedy rows of at most ``row_tokens`` tokens (a segment and its prefix stay in one row;
    a longer group gets a row of its own). ``segments[k] = (tokens, prefix index or None)``,
    a prefix always listed before the segments that continue it."""
    import torch

    groups: list[list[int]] = []
    for k, (_, prefix) in enumerate(segments):
        if prefix is None:
            groups.append([k])
        else:
            if prefix not in groups[-1]:
                raise ValueError("a segment's prefix must be in the group just before it")
            groups[-1].append(k)
    rows: list[list[int]] = [[]]
    size = 0
    for group in groups:
        tokens = sum(len(segments[k][0]) for k in group)
        if rows[-1] and size + tokens > row_tokens:
            rows.append([])
            size = 0
        rows[-1].extend(group)
        size += tokens
    length = max(sum(len(segments[k][0]) for k in row) for row in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    positions = torch.zeros(len(rows), length, dtype=torch.long)
    owner = torch.full((len(rows), length), -1, dtype=torch.long)  # segment of each slot, -1 padding
    visible = torch.full((len(rows), length), -1, dtype=torch.long)  # its prefix segment
    where: list[tuple[int, int]] = [(0, 0)] * len(segments)
    for r, row in enumerate(rows):
        offset = 0
        for k in row:
            tokens, prefix = segments[k]
            start = 0 if prefix is None else len(segments[prefix][0])
            n = len(tokens)
            ids[r, offset:offset + n] = torch.tensor(tokens, dtype=torch.long)
            positions[r, offset:offset + n] = torch.arange(start, start + n)
            owner[r, offset:offset + n] = k
            visible[r, offset:offset + n] = -2 if prefix is None else prefix
            where[k] = (r, offset)
            offset += n
    query_owner, key_owner = owner[:, :, None], owner[:, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = ((key_owner == query_owner) | (key_owner == visible[:, :, None])) & causal & (query_owner >= 0)
    # padding rows attend to themselves only, so no softmax is over an empty set
    allowed |= torch.eye(length, dtype=torch.bool) & (query_owner < 0)
    return Packed(ids, positions, allowed[:, None], where)


def hidden_states(model, packed: Packed):
    """The decoder's last hidden states for packed rows ([rows, length, hidden])."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(base.parameters()).device
    mask = packed.allowed.to(device)
    if base.config._attn_implementation != "sdpa":  # eager and others add a float mask
        mask = torch.zeros(mask.shape, device=device).masked_fill(~mask, torch.finfo(torch.float32).min)
    out = base.get_decoder()(input_ids=packed.ids.to(device), attention_mask=mask,
                             position_ids=packed.positions.to(device))
    return out.last_hidden_state


def head(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_output_embeddings()


def packed_loss(model, examples: list[tuple[list[int], list[int]]], row_tokens: int):
    """Mean next-token cross-entropy over the labelled tokens (labels -100 are ignored), as
    transformers' causal-LM loss, with logits computed only where a label is predicted."""
    import torch

    packed = pack([(ids, None) for ids, _ in examples], row_tokens)
    rows, slots, targets = [], [], []
    for (ids, labels), (r, offset) in zip(examples, packed.where):
        for t in range(len(ids) - 1):
            if labels[t + 1] != -100:
                rows.append(r)
                slots.append(offset + t)
                targets.append(labels[t + 1])
    hidden = hidden_states(model, packed)
    logits = head(model)(hidden[torch.tensor(rows), torch.tensor(slots)])
    return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets, device=logits.device))


def packed_loglikelihoods(model, requests: list[tuple[list[int], list[int]]], row_tokens: int
                          ) -> list[tuple[float, bool]]:
    """(sum of log-probabilities, greedy) of each continuation after its context, as lm-eval's
    HFLM computes them, with each distinct context computed once."""
    import torch

    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, (context, _) in enumerate(requests):
        by_context.setdefault(tuple(context), []).append(i)
    segments: list[tuple[list[int], int | None]] = []
    parts: list[tuple[int, int | None]] = [(0, None)] * len(requests)  # (context segment, continuation segment)
    for context, members in by_context.items():
        c = len(segments)
        segments.append((list(context), None))
        for i in members:
            continuation = requests[i][1]
            if len(continuation) > 1:  # a one-token continuation is predicted from the context's last slot
                segments.append((list(continuation[:-1]), c))
            parts[i] = (c, len(segments) - 1 if len(continuation) > 1 else None)
    packed = pack(segments, row_tokens)
    slots: dict[tuple[int, int], int] = {}
    picks = []
    for (context, continuation), (c, s) in zip(requests, parts):
        r, offset = packed.where[c]
        places = [(r, offset + len(segments[c][0]) - 1)]
        if s is not None:
            r, offset = packed.where[s]
            places += [(r, offset + t) for t in range(len(continuation) - 1)]
        picks.append([slots.setdefault(place, len(slots)) for place in places])
    with torch.no_grad():
        hidden = hidden_states(model, packed)
        where = list(slots)
        selected = hidden[torch.tensor([r for r, _ in where]), torch.tensor([t for _, t in where])]
        logprobs = torch.log_softmax(head(model)(selected).float(), dim=-1).cpu()
    out = []
    for (_, continuation), pick in zip(requests, picks):
        rows = logprobs[pick]
        target = torch.tensor(continuation)
        out.append((float(rows.gather(1, target[:, None]).sum()), bool((rows.argmax(dim=1) == target).all())))
    return out
