"""Fit a parent that ships no masked-LM head (all-MiniLM-L6-v2) the head its pre-training needs.

    python -m bench_nas.mlm_head [OUT]

The source's DistilBERT comes with its trained head, so phase 0 trains only the new modules and
phase 1 goes on from a trained model. Without one, every candidate's phase 0 fits a random head
(its loss after phase 0 was 7.0-7.2, about word frequencies, for the parent and its mutants alike)
and phase 1 trains the whole parent against that head, which cost the parent a fifth of its QA
score (100 at the cutoff, 79.9 after phase 1; 99.6 with the fitted head; one evaluation each).
Only the head trains here (dense, GELU, LayerNorm and output bias; the decoder is the word
embeddings), on the frozen parent over the problem's own MLM training sequences; the file records
the parent it was fitted on, and a setup with another parent refuses it.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

DEFAULT = "data/minilm-mlm-head/minilm-mlm-head.safetensors"  # in this package
STEPS, LR, SEED = 1500, 3e-3, 0


def parent_digest(parent) -> str:
    """sha256 of a parent's encoder tensors (canonical names, float32 bytes): what a head was fitted on."""
    digest = hashlib.sha256()
    for name in sorted(k for k in parent.tensors if not k.startswith("mlm.")):
        digest.update(name.encode())
        digest.update(parent.tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def fit(live, steps: int = STEPS, lr: float = LR, seed: int = SEED) -> tuple[dict, dict[str, str]]:
    """The head's tensors fitted on ``live``'s parent and MLM training sequences, and its provenance."""
    import torch

    from bench.runner import cpu_model
    from bench_nas.genotype import Genotype
    from bench_nas.model import MLM_KEYS, build

    model, _ = build(Genotype.parent(live.dims), live.parent, seed, live.setup.dropout)
    model.to(live.device)
    head = [p for name, p in model.named_parameters() if name in MLM_KEYS]
    for name, p in model.named_parameters():
        p.requires_grad_(name in MLM_KEYS)
    optimizer, schedule = live._optimizer(head, lr, steps)
    generator = torch.Generator().manual_seed(seed)
    before, started = live.mlm_validation_loss(model), time.process_time()
    model.train()
    for _ in range(steps):
        index = torch.randint(len(live.mlm_train), (live.setup.batch_size,), generator=generator)
        loss = live._mlm_loss(model, live.mlm_train[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    after = live.mlm_validation_loss(model)
    tensors = {name: p.detach().float().cpu().contiguous() for name, p in model.named_parameters() if name in MLM_KEYS}
    meta = {"parent_sha256": parent_digest(live.parent), "steps": str(steps), "lr": str(lr), "seed": str(seed),
            "batch_size": str(live.setup.batch_size), "sequences": str(len(live.mlm_train)),
            "mlm_val_loss_before": f"{before:.4f}", "mlm_val_loss_after": f"{after:.4f}",
            "cpu_seconds": f"{time.process_time() - started:.0f}", "cpu": cpu_model(),
            "autocast": str(live.autocast_dtype)}
    return tensors, meta


def load(path: str, parent) -> dict:
    """The head in ``path`` for ``parent``; ValueError (one line, naming the fix) if it is for another parent."""
    from safetensors import safe_open

    from bench_nas.model import MLM_KEYS

    try:
        with safe_open(path, "pt") as f:
            meta, tensors = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"MLM head {path} cannot be read ({type(exc).__name__}); refit it with python -m "
                         "bench_nas.mlm_head") from exc
    if set(tensors) != set(MLM_KEYS) or meta.get("parent_sha256") != parent_digest(parent):
        raise ValueError(f"MLM head {path} was not fitted on this parent model; fit one for it with python -m "
                         "bench_nas.mlm_head, or set mlm_head to none ($BENCH_NAS_MLM_HEAD=none)")
    return tensors


def main(argv: list[str]) -> None:
    from safetensors.torch import save_file

    from bench.registry import Registry
    from bench_nas.problem import NasProblem

    out = Path(argv[0]) if argv else Path(__file__).parent / DEFAULT
    spec = Registry().problem("distilbert-nas/minilm-wordnet-qa")
    problem = NasProblem("live", {**spec.table_build["setup"], "mlm_head": None})
    tensors, meta = fit(problem.live)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    print(f"{out}: MLM validation loss {meta['mlm_val_loss_before']} -> {meta['mlm_val_loss_after']} "
          f"in {meta['steps']} steps, {meta['cpu_seconds']} CPU s")


if __name__ == "__main__":
    main(sys.argv[1:])
