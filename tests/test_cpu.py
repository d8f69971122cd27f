"""Process-wide CPU settings (ssgan.cpu)."""

import os
import subprocess
import sys

import pytest

# Where glibc puts a 16 MiB tensor: in its own mmap (returned to the kernel when freed, faulted in
# afresh next time) or in the heap that malloc keeps and reuses. mallinfo2's hblkhd counts the
# bytes held in mmaps.
PROBE = """
import ctypes, sys, torch
from ssgan.cpu import keep_freed_memory
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
applied = keep_freed_memory() if sys.argv[1] == "tuned" else None
before = libc.mallinfo2().hblkhd
block = torch.empty(16 * 2**20 // 4)
print(applied, libc.mallinfo2().hblkhd - before)
"""


def has_mallinfo2() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except OSError:
        return False


glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or not has_mallinfo2(),
                           reason="glibc's malloc (2.33 or newer, for mallinfo2)")


def probe(mode: str, env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    applied, mmapped = out.stdout.split()
    return applied, int(mmapped)


@glibc
def test_keep_freed_memory_serves_mib_blocks_from_the_reused_heap() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    _, default_mmapped = probe("default", env)
    applied, tuned_mmapped = probe("tuned", env)
    assert default_mmapped >= 16 * 2**20  # glibc's default: a block of its own, handed back when freed
    assert applied == "True" and tuned_mmapped == 0


@glibc
@pytest.mark.parametrize("setting", [{"MALLOC_TRIM_THRESHOLD_": "131072"}, {"SSGAN_KEEP_FREED_MEMORY": "0"},
                                     {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}])
def test_keep_freed_memory_leaves_a_users_malloc_settings_alone(setting) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    applied, mmapped = probe("tuned", {**env, **setting})
    assert applied == "False" and mmapped >= 16 * 2**20
