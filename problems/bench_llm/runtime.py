"""What the live LLM problems share at run time: device and dtype choice, path-or-hub-id rule,
peak memory, and the error for a setup that cannot be used. Imports no torch at module level."""

from __future__ import annotations

import resource
import sys
import warnings
from pathlib import Path


class LiveSetupError(ValueError):
    """A model, data set or task that cannot be used; raised before any training."""


def meant_as_path(location: str) -> bool:
    """An absolute or ./-relative location names a local file, never a hub id: if it is missing,
    that is the user's error to report, not a download to try."""
    return Path(location).is_absolute() or location.startswith(".")


PRECISIONS = ("auto", "bf16", "fp32")


def device_and_dtype(precision: str = "auto"):
    """CUDA, else the CPU; the autocast dtype (None: fp32). ``auto``: bf16 on CUDA where supported and on CPUs
    that run it fast. A table build pins ``bf16`` or ``fp32``, so every row is measured alike on any machine."""
    import torch

    if precision not in PRECISIONS:
        raise LiveSetupError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    cuda = torch.cuda.is_available()
    fast_bf16 = torch.cuda.is_bf16_supported() if cuda else (
        torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") or "avx512_bf16" in _cpu_flags())
    if precision == "auto":
        precision = "bf16" if fast_bf16 else "fp32"
    elif precision == "bf16" and not fast_bf16:  # measured: a linear layer's step 15x slower than fp32 on AVX2
        warnings.warn("bf16 is pinned but this device emulates it (a CPU without AVX-512 or AMX): training runs"
                      " over ten times slower than at fp32; measure on a machine that has it", stacklevel=2)
    return torch.device("cuda" if cuda else "cpu"), (torch.bfloat16 if precision == "bf16" else None)


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
