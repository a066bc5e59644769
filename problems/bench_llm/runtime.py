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


PRECISIONS = ("auto", "bf16", "fp32")


def device_and_dtype(precision: str = "auto"):
    """CUDA, else the CPU; the autocast dtype (None: fp32). ``auto``: bf16 on CUDA where supported and on CPUs
    that run it fast. A table build pins ``bf16`` or ``fp32``, so every row is measured alike on any machine."""
    import torch

    if precision not in PRECISIONS:
        raise LiveSetupError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = "bf16" if (torch.cuda.is_bf16_supported() if cuda else _cpu_runs_bf16()) else "fp32"
    return torch.device("cuda" if cuda else "cpu"), (torch.bfloat16 if precision == "bf16" else None)


def emulates_bf16(device, dtype) -> bool:
    """bf16 autocast on a CPU without bf16 matrix kernels (no AVX-512 or AMX), whose emulated matrix products
    run 10-20 times slower than fp32 (one thread, AVX2: an MLM training step 48 CPU s against 4.9)."""
    import torch

    return dtype == torch.bfloat16 and device.type == "cpu" and not _cpu_runs_bf16()


def bf16_matmuls_in_fp32():
    """Within it, a bf16 matrix product (mm, addmm, bmm, baddbmm, forward and backward) is computed from the same
    bf16 operands in fp32 and rounded to bf16 once: what a bf16 kernel computes (products exact in fp32, fp32
    sums), the values equal but for summation order, as between two CPU kinds; at fp32's cost where
    ``emulates_bf16``, not the emulated kernel's (tests/test_nas_live.py, tests/benchmarks/test_nas_speed.py)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    products = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}

    class InFp32(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in products and args[-1].dtype == torch.bfloat16:
                wide = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
                return func(*wide, **(kwargs or {})).to(torch.bfloat16)
            return func(*args, **(kwargs or {}))

    return InFp32()


def _cpu_runs_bf16() -> bool:
    import torch

    return torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") or "avx512_bf16" in _cpu_flags()


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
