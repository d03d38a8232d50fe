"""Long recordings in parts: where parts are cut (hand-computed), and that they tile the stream exactly."""

from __future__ import annotations

import numpy as np

from pipelines.parts import cut_point, parts


def test_the_cut_is_the_middle_of_the_longest_pause_past_the_earliest_point() -> None:
    regions = [(0, 100), (150, 400), (420, 500)]
    assert cut_point(regions, 600, earliest=300) == 550  # pauses past 300: 400-420 (20) and 500-600 (100)
    assert cut_point(regions, 600, earliest=100) == 550
    assert cut_point(regions[:2], 420, earliest=300) == 410  # the pause after the last region, to the buffer end
    assert cut_point([(0, 300), (300, 600)], 600, earliest=200) == 300  # touching regions: the boundary, last resort
    assert cut_point([(0, 600)], 600, earliest=0) == 600  # no boundary at all: the whole buffer
    assert cut_point([], 600, earliest=100) == 300  # all silence


def _energy_vad(audio: np.ndarray) -> list[tuple[int, int]]:
    """Speech = runs of non-zero samples (a stand-in VAD, exact on synthetic signals)."""
    voiced = np.concatenate([[0], (audio != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(voiced))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def test_parts_tile_the_stream_and_end_in_pauses() -> None:
    rng = np.random.default_rng(0)
    signal = np.zeros(10_000, np.float32)
    start = 0
    while start < len(signal):  # "utterances" of 50-400 samples with pauses of 20-200 between them
        length = int(rng.integers(50, 400))
        signal[start : start + length] = rng.uniform(0.1, 1.0, min(length, len(signal) - start))
        start += length + int(rng.integers(20, 200))
    blocks = np.array_split(signal, 37)
    got = list(parts(iter(blocks), _energy_vad, part_samples=1_000, search_samples=250))
    assert np.array_equal(np.concatenate([p.audio for p in got]), signal)  # nothing lost, nothing twice
    assert [p.offset for p in got] == list(np.cumsum([0] + [len(p.audio) for p in got[:-1]]))
    assert [p.last for p in got] == [False] * (len(got) - 1) + [True]
    for part in got[:-1]:
        assert 1_000 <= len(part.audio) <= 1_250 + len(blocks[0])
        assert signal[part.offset + len(part.audio) - 1] == 0 and signal[part.offset + len(part.audio)] == 0  # a pause
        assert part.regions == _energy_vad(part.audio)  # the part's own regions, none cut at its end
