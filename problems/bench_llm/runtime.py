"""What the live LLM problems share at run time: device and dtype choice, path-or-hub-id rule,
peak memory, and the error for a setup that cannot be used. Imports no torch at module level."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


class LiveSetupError(ValueError):
    """A model, data set or task that cannot be used; raised before any training."""


def meant_as_path(location: str) -> bool:
    """An absolute or ./-relative location names a local file, never a hub id: if it is missing,
    that is the user's error to report, not a download to try."""
    return Path(location).is_absolute() or location.startswith(".")


def device_and_dtype():
    """CUDA with bf16 where supported; else the CPU, with bf16 autocast on CPUs that run it fast."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), (torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    fast_bf16 = torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") or "avx512_bf16" in _cpu_flags()
    return torch.device("cpu"), (torch.bfloat16 if fast_bf16 else None)


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
