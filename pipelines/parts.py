"""Long recordings in parts: a few minutes of audio at a time, each part cut in a pause.

A two-hour TV recording is 460 MB of 16 kHz float audio; held whole, it
would make one file's memory grow with its length. So a recording longer
than `WHOLE_SECONDS` is decoded as a stream (`pipelines.demux.stream_audio`)
and cut into parts of about `PART_SECONDS`: when the buffer holds a part
plus `SEARCH_SECONDS`, VAD finds the longest pause in that last stretch and
the part ends in its middle. No utterance is cut (none spans a pause of
`pause_seconds`, the segmenter splits there too) and none is seen twice (the
parts tile the recording). Only continuous speech without any pause for a
whole minute, which VAD itself splits every 30 s, would be cut at such a
split.

Pure apart from the VAD callable: blocks in, parts out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .options import SAMPLE_RATE

PART_SECONDS = 240
SEARCH_SECONDS = PART_SECONDS // 4  # the cut is sought in the last minute of the buffer
WHOLE_SECONDS = PART_SECONDS + SEARCH_SECONDS  # shorter recordings are decoded whole

Regions = list[tuple[int, int]]  # speech regions, [start, end) samples


@dataclass(frozen=True)
class Part:
    offset: int  # first sample of the part in its recording
    audio: np.ndarray
    regions: Regions  # its speech regions, in the part's own samples
    last: bool


def parts(
    blocks: Iterable[np.ndarray],
    regions_of: Callable[[np.ndarray], Regions],
    part_samples: int = PART_SECONDS * SAMPLE_RATE,
    search_samples: int = SEARCH_SECONDS * SAMPLE_RATE,
) -> Iterator[Part]:
    """Consecutive parts of a stream of audio blocks, each ending in a pause."""
    buffer, offset = np.zeros(0, np.float32), 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) >= part_samples + search_samples:
            regions = regions_of(buffer)
            at = cut_point(regions, len(buffer), earliest=len(buffer) - search_samples)
            yield Part(offset, buffer[:at], [r for r in regions if r[1] <= at], last=False)
            buffer, offset = buffer[at:].copy(), offset + at
    yield Part(offset, buffer, regions_of(buffer) if len(buffer) else [], last=True)


def cut_point(regions: Sequence[tuple[int, int]], length: int, earliest: int) -> int:
    """The middle of the longest pause between speech regions (or after the last) that lies past `earliest`.

    Regions that touch (VAD splitting continuous speech) give pauses of
    length 0, the last resort; with no region boundary past `earliest` at
    all, the whole buffer is the part.
    """
    edges = [0, *(edge for start, end in regions for edge in (start, end)), length]
    pauses = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]  # before, between and after regions
    candidates = [(b - a, (a + b) // 2) for a, b in pauses if (a + b) // 2 >= earliest and 0 < (a + b) // 2 < length]
    if not candidates:
        return length
    return max(candidates)[1]
