"""Packing speech of several videos into Whisper windows, and mapping words back: pure, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.windows import Piece, Window, pack

SR = 16_000


def test_regions_fill_windows_in_order_with_a_gap_between_videos() -> None:
    regions = [[(0, 10), (20, 25)], [(5, 15)], [(0, 40)]]
    windows = pack(regions, capacity=32, gap=3)
    assert [w.pieces for w in windows] == [
        (Piece(0, 0, 10, 0), Piece(0, 20, 25, 10), Piece(1, 5, 15, 18)),  # 15 samples of video 0, a gap, video 1
        (Piece(2, 0, 32, 0),),
        (Piece(2, 32, 40, 0),),  # a region longer than a window is cut at the window size
    ]
    assert [w.length for w in windows] == [28, 32, 8]


def test_a_region_that_does_not_fit_starts_the_next_window_without_a_gap() -> None:
    windows = pack([[(0, 20)], [(0, 10)], [(0, 5)]], capacity=30, gap=2)
    assert [w.pieces for w in windows] == [(Piece(0, 0, 20, 0),), (Piece(1, 0, 10, 0), Piece(2, 0, 5, 12))]
    assert pack([[], []]) == []


def test_window_audio_places_each_piece_and_leaves_silence_between() -> None:
    audios = [np.arange(1, 11, dtype=np.float32), -np.arange(1, 6, dtype=np.float32)]
    window = Window((Piece(0, 2, 5, 0), Piece(1, 1, 3, 5)))
    np.testing.assert_array_equal(window.audio(audios), [3, 4, 5, 0, 0, -2, -3])
    assert window.speech_of(0) == 3 and window.speech_of(1) == 2


def test_words_go_back_to_the_video_their_midpoint_is_in() -> None:
    # video 0 speaks at 10-12 s (window 0-2 s), video 1 at 4-5 s (window 3-4 s), a 1 s gap between
    window = Window((Piece(0, 10 * SR, 12 * SR, 0), Piece(1, 4 * SR, 5 * SR, 3 * SR)))
    assert window.video_time(0.5, 1.0) == (0, 10.5, 11.0)
    assert window.video_time(3.25, 3.75) == pytest.approx((1, 4.25, 4.75))
    assert window.video_time(1.75, 2.5) == pytest.approx((0, 11.75, 12.5))  # midpoint in the gap, nearer video 0
    assert window.video_time(2.5, 3.25) == pytest.approx((1, 3.5, 4.25))  # nearer video 1
    assert window.video_time(0.0, 0.1)[1] == 10.0
    assert Window((Piece(0, 0, SR, SR),)).video_time(0.0, 0.2) == (0, 0.0, 0.0)  # never before the video's start
