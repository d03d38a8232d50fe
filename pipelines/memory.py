"""Memory of the long-lived workers: freed heap handed back, per-shape caches kept small.

glibc keeps freed memory in its heap (one per thread that allocates), and
buffers of ever-different sizes leave it fragmented, so a worker would grow
with the length of what it works on: a scoring worker by 0.8 GiB over a
2-hour recording, and ASR workers, whose decoding lanes each allocate in
their own thread, as well. `malloc_trim` returns what is free, in every
arena, after each unit of work.

PyTorch's CPU convolutions (oneDNN, through ideep), and the scorer's
linear layers (`mmml.onednn`), cache a compiled primitive per input shape,
up to 1024 of them. Scoring pads a batch to its longest clip in whole 20 ms
encoder frames, so nearly every batch has a new shape and the caches fill
with one entry per batch: a scoring worker's memory would grow by a quarter
of a GiB over a 2-hour run. With 16 entries each it stays flat
(`benchmarks/README.md`), and scoring is no slower: a primitive costs
milliseconds to make, a batch seconds to run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

# Entries of oneDNN's primitive cache and of ideep's per-shape cache in a CPU scoring worker (default 1024 each).
SHAPE_CACHE_ENTRIES = 16


def release_freed_memory() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def bound_shape_caches() -> None:
    """Keep few compiled CPU kernels per shape; call before the process's first convolution (read once, then).

    A value the user set in the environment is kept.
    """
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(name, str(SHAPE_CACHE_ENTRIES))
