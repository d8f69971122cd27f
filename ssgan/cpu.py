"""Process-wide CPU settings that a training run applies before it starts."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper bound on 64-bit systems
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Makes glibc's malloc keep freed blocks of up to 32 MiB for reuse instead of handing them back to the kernel.

    An MLP iteration allocates and frees tensors of a few MiB (activations of (300, 1000), weight
    gradients of (1000, 784), ...). With glibc's defaults (a self-adjusting mmap threshold, and
    the top of the heap trimmed once twice that threshold is free), part of that memory keeps
    going back to the kernel and being faulted in again: about 1,900 page faults and 5 ms of a
    50 ms fp32 iteration on 2 cores (docs/benchmarks.md). With this setting the process holds on
    to its peak heap and reuses it. Returns whether it was applied: not outside glibc, nor when the
    user chose malloc settings (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or
    ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``), nor with ``SSGAN_KEEP_FREED_MEMORY=0``.
    """
    user_chose = (os.environ.get("SSGAN_KEEP_FREED_MEMORY") == "0"
                  or any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
                  or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))
    if not sys.platform.startswith("linux") or user_chose:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's stub returns 0
    applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("malloc keeps freed memory for reuse: %s", applied)
    return applied


def matmul_rates(size: int = 512, repeats: int = 5) -> dict[str, float]:
    """This CPU's speed, in GFLOP/s, at multiplying two (size, size) matrices in fp32 and in bf16, measured now.

    A CPU's flags do not tell whether bf16 pays: some with AVX-512-BF16 multiply bf16 at half their
    fp32 speed (docs/benchmarks.md). The two are timed in turns and the best of ``repeats`` kept, so
    a busy moment slows both; it takes about 0.05 s, or 0.2 s where bf16 is emulated.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    operands = {name: [torch.rand(size, size, generator=generator).to(dtype) for _ in range(2)]
                for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    best = {name: float("inf") for name in operands}
    for repeat in range(repeats + 1):
        for name, (left, right) in operands.items():
            start = time.perf_counter()
            torch.mm(left, right)
            if repeat:  # the first turn warms the kernels up
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: 2 * size**3 / seconds / 1e9 for name, seconds in best.items()}
