"""Stage 3b: pack the speech of many videos into Whisper's 30 s windows, and map words back.

Whisper's encoder always reads 30 s. A 5 s clip decoded alone pays for six
times the audio it has; on CPU the encoder is most of Whisper's cost. So,
like faster-whisper's batched pipeline within one file (`collect_chunks`),
speech regions are laid end to end into windows, here across the videos of
a group: a window holds the speech of several short clips, and a long
video fills its own windows back to back. Between two videos a second of
silence is left, so that Whisper hears where one clip ends; words are
mapped back to the video whose speech their midpoint falls in.

A consequence, the same as within one file: a clip's words may depend on
its window mates. Groups are fixed by the input order
(`pipelines.grouping.groups`), so the same inputs give the same windows.

Everything here is pure: sample counts in, windows out; window times in,
video times out.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .options import SAMPLE_RATE, WINDOW_SECONDS

CAPACITY = WINDOW_SECONDS * SAMPLE_RATE
GAP = SAMPLE_RATE  # samples of silence between two videos' speech in one window


@dataclass(frozen=True)
class Piece:
    """One speech region of one video, placed in a window."""

    video: int  # index of the video in its group
    start: int  # [start, end): samples of the video
    end: int
    at: int  # where the region starts in the window (samples)

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Window:
    pieces: tuple[Piece, ...]

    @property
    def length(self) -> int:
        last = self.pieces[-1]
        return last.at + last.length

    def audio(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        """The window's samples: its pieces in place, silence in between."""
        out = np.zeros(self.length, np.float32)
        for p in self.pieces:
            out[p.at : p.at + p.length] = audios[p.video][p.start : p.end]
        return out

    def video_time(self, start: float, end: float) -> tuple[int, float, float]:
        """(video, start, end in that video's seconds) of a word at [start, end] seconds of this window.

        The word belongs to the piece its midpoint falls in (the nearer one
        when it falls in a gap); both ends move with that piece, as
        faster-whisper's `restore_speech_timestamps` does.
        """
        middle = (start + end) / 2 * SAMPLE_RATE
        piece = self.pieces[_nearest(self.pieces, middle)]
        shift = (piece.start - piece.at) / SAMPLE_RATE
        return piece.video, max(0.0, start + shift), max(0.0, end + shift)

    def speech_of(self, video: int) -> int:
        """Samples of `video`'s speech in this window."""
        return sum(p.length for p in self.pieces if p.video == video)


def pack(regions: Sequence[Sequence[tuple[int, int]]], capacity: int = CAPACITY, gap: int = GAP) -> list[Window]:
    """Lay every video's speech regions, in order, into as few windows as greedy filling allows.

    `regions[v]` are video v's speech regions in samples. A region is never
    split unless it is longer than a window (VAD caps regions at 30 s, but its
    padding can add a little); a window is closed when the next region (plus
    the gap before a new video) would not fit.
    """
    windows: list[Window] = []
    pieces: list[Piece] = []
    used = 0
    for video, spans in enumerate(regions):
        for start, end in _fitting(spans, capacity):
            lead = gap if pieces and pieces[-1].video != video else 0
            if pieces and used + lead + (end - start) > capacity:
                windows.append(Window(tuple(pieces)))
                pieces, used, lead = [], 0, 0
            pieces.append(Piece(video, start, end, used + lead))
            used += lead + (end - start)
    if pieces:
        windows.append(Window(tuple(pieces)))
    return windows


def _fitting(spans: Sequence[tuple[int, int]], capacity: int) -> list[tuple[int, int]]:
    return [(s, min(s + capacity, end)) for start, end in spans for s in range(start, end, capacity)]


def _nearest(pieces: Sequence[Piece], sample: float) -> int:
    """Index of the piece containing `sample`, else of the piece nearest to it."""
    i = max(0, bisect.bisect_right([p.at for p in pieces], sample) - 1)
    if sample < pieces[i].at + pieces[i].length or i + 1 == len(pieces):
        return i
    after = pieces[i + 1].at - sample
    before = sample - (pieces[i].at + pieces[i].length)
    return i + 1 if after < before else i
