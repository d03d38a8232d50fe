"""Length-aware batching: put clips of similar length together so padding stays small.

Every batch is padded to its longest member, so a random batch of MOSI
transcripts (1 to 114 words) spends most of its compute on padding. The
classic remedy keeps training stochastic: shuffle, cut the order into pools
of `pool_batches` batches, sort each pool by length, cut it into batches and
shuffle the batches. The order depends only on (seed, epoch), so a resumed
run sees exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def training_batches(
    lengths: Sequence[float],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    length_aware: bool = True,
    pool_batches: int = 50,
) -> list[list[int]]:
    """Index batches for one training epoch; every index appears exactly once."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not length_aware:
        return _chunks(order, batch_size)
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        members = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += _chunks(members, batch_size)
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def epoch_members(sizes: Sequence[int], per_epoch: Sequence[int | None], *, seed: int, epoch: int) -> list[int]:
    """Indices into the pooled training clips of several corpora that one epoch trains on.

    Corpus k holds `sizes[k]` clips (consecutive in the pool); with
    `per_epoch[k]` set, a fresh draw of that many of them (without
    replacement) is taken each epoch, so a large corpus does not drown a small
    one and successive epochs see different parts of it. The draw depends only on
    (seed, epoch), so a resumed run sees what an uninterrupted one would.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 7919)
    members, offset = [], 0
    for size, wanted in zip(sizes, per_epoch):
        if wanted is None or wanted >= size:
            members += range(offset, offset + size)
        else:
            members += sorted(offset + i for i in torch.randperm(size, generator=generator)[:wanted].tolist())
        offset += size
    return members


def evaluation_batches(lengths: Sequence[float], batch_size: int, *, length_aware: bool = True) -> list[list[int]]:
    """Deterministic batches for prediction: sorted by length when allowed, in file order otherwise."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if length_aware else list(range(len(lengths)))
    return _chunks(order, batch_size)


def padding_fraction(lengths: Sequence[float], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded batch cells that are padding: what length-aware batching reduces."""
    cells = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    used = sum(lengths[i] for b in batches for i in b)
    return 1.0 - used / cells if cells else 0.0


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
