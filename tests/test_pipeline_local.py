"""The in-process re-scoring's read-ahead: bounded, failures reach the reader, and it stops when told."""

from __future__ import annotations

import time

import pytest

from pipelines.local import _Ahead


def test_decoding_runs_at_most_its_limit_ahead_and_hands_every_item_over_in_order() -> None:
    made: list[int] = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    ahead = _Ahead(items(), limit=4)
    time.sleep(0.5)  # the reader is busy elsewhere
    assert len(made) <= 4 + 1  # the queue's four, and one waiting to go in
    assert list(ahead) == list(range(50))


def test_a_failure_in_the_decoding_thread_is_raised_to_the_reader_after_what_came_before() -> None:
    def items():
        yield from (1, 2)
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for item in _Ahead(items(), limit=8):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_stops_the_thread_though_nobody_reads() -> None:
    ahead = _Ahead(iter(range(10**9)), limit=2)
    ahead.close()
    ahead._thread.join(timeout=2)
    assert not ahead._thread.is_alive()
