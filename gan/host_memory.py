"""Host-memory allocator settings: keep memory that XLA frees inside the process for its next step.

Why: XLA:CPU allocates each execution's buffers (for the default DCGAN step at batch 64: 47 MiB of
temporaries) and frees them when the step ends. glibc's malloc serves blocks above 32 MiB with
mmap and unmaps them on free, and the per-thread arenas of XLA's worker threads give their freed
pages back too, so every step page-faults its whole working set again: 12,000 page faults per
step, measured, with the kernel zeroing each page (experiments/README.md, "Host memory").
With no mmap for large blocks, a high trim threshold and a top pad larger than those blocks,
freed memory stays in the heaps and the next step reuses it (11x fewer page faults; speed and
peak RSS in experiments/README.md). Limit: glibc's thread heaps are 64 MiB at most, so a single
block of 64 MiB or more allocated on one of XLA's threads is still mmapped and unmapped on free
(e.g. the 173 MiB of temporaries at batch 256), whatever M_MMAP_MAX says.

The default (PRODUCTGAN_MALLOC=one_arena, issue #30) lifts that limit: the same settings plus one
malloc arena for every thread (mallopt M_ARENA_MAX = 1, set before XLA starts its threads), so all
blocks come from the main heap, which grows without the 64 MiB cap and keeps what is freed.
Measured on the default DCGAN step, alternated with PRODUCTGAN_MALLOC=retain (the settings without
it) and PyTorch eager (experiments/README.md, "Large batches"; 2-core AMD EPYC, 2026-12-08): minor
page faults per step at batch 256 ~110,000 -> ~3,500; images/s at batch 64 / 256 / 512 762 / 634 /
604 and 721 / 599 / 551 against 735 / 495 / 442 and 710 / 480 / 426 (two rounds), compile +0.3-0.7 s.
PRODUCTGAN_MALLOC=retain keeps several arenas (the previous default).

`retain_freed_memory` is called by the commands (gan.main) and the benchmarks in experiments/
before XLA starts its threads; importing `gan` changes nothing (a library must not). Set
PRODUCTGAN_MALLOC=default to keep glibc's defaults. On other C libraries (musl, macOS) it does
nothing. It is only the host allocator: accelerator memory is XLA's own (BFC) allocator and
unaffected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

ENV_VAR = "PRODUCTGAN_MALLOC"

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
M_ARENA_MAX = -8
MODES = ("retain", "one_arena", "default")

# Free memory at the top of the main heap above this is still returned to the system.
TRIM_THRESHOLD_BYTES = 1 << 30
# Slack kept when a thread arena's heap empties: with less free space than this glibc deletes
# (unmaps) the heap, so it must exceed the largest per-step block (here tens of MiB).
TOP_PAD_BYTES = 64 << 20


def retain_freed_memory() -> bool:
  """Sets glibc malloc to no mmap for large blocks, a 1 GiB trim threshold, a 64 MiB top pad and
  one arena for all threads ($PRODUCTGAN_MALLOC=retain: without the last).

  Returns True if the settings were applied; False on a C library other than glibc or when
  $PRODUCTGAN_MALLOC is "default". Raises ValueError for another value of $PRODUCTGAN_MALLOC.
  """
  mode = os.environ.get(ENV_VAR, "one_arena")
  if mode not in MODES:
    raise ValueError(f"{ENV_VAR}={mode!r} is not a known setting: use 'one_arena' (the default: keep "
                     "freed host memory for reuse, one malloc arena for all threads), 'retain' (the same "
                     "with glibc's per-thread arenas: blocks of 64 MiB or more are still unmapped) or "
                     "'default' (glibc's own malloc settings).")
  if mode == "default" or platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
  settings = [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)]
  if mode == "one_arena":
    settings.append((M_ARENA_MAX, 1))
  # mallopt returns 1 on success, 0 on an out-of-range value.
  return all(libc.mallopt(param, value) == 1 for param, value in settings)
