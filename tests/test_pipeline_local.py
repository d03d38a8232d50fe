"""The in-process re-scoring: a read-ahead that is bounded, hands failures to the reader and stops when told; calls
large enough to fill their passes, never so large that a thread goes without one, taken as they are done."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipelines.discover import Video
from pipelines.local import _Ahead, _as_scored, _stored_count, call_size


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


def test_calls_hold_up_to_64_utterances_but_every_thread_gets_one() -> None:
    assert call_size(245, 2, 16) == 64  # a long corpus
    assert call_size(100, 2, 16) == 50  # two calls of 50: both threads busy
    assert call_size(20, 2, 16) == 16  # never less than one pass
    assert call_size(20, 1, 4) == 20
    assert call_size(1000, 1, 128) == 128  # one pass larger than 64: the call holds it whole


def test_stored_utterances_are_counted_until_enough_and_an_unreadable_entry_counts_none() -> None:
    videos = [Video(f"/v{i}.mp4", f"{i:016x}") for i in range(4)]
    stored = {v.video_id: json.dumps([{"utterance": u} for u in range(10)]) for v in videos}
    stored[videos[1].video_id] = "not json"
    assert _stored_count(videos, stored, enough=1000) == 30
    assert _stored_count(videos, stored, enough=5) == 10  # stops at the first video that reaches it


def test_a_slow_call_holds_back_no_other_and_every_batch_comes_back_once() -> None:
    """Calls are taken as they are done: the threads never wait on an older call, and a failure still reaches the
    reader."""

    def scorer(columns: dict) -> dict:
        if columns["n"][0] == 99:
            raise RuntimeError("model gone")
        time.sleep(0.5 if columns["n"][0] == 0 else 0.01)
        return columns

    def batches(numbers):
        return ([{"n": n, "audio": np.zeros(1, np.float32)}] for n in numbers)

    with ThreadPoolExecutor(2) as pool:
        order = [rows[0]["n"] for rows in _as_scored(pool, scorer, batches(range(8)), ahead=3)]
        assert sorted(order) == list(range(8)) and order[-1] == 0  # the slow first call came back last
        with pytest.raises(RuntimeError, match="model gone"):
            list(_as_scored(pool, scorer, batches([1, 99, 2]), ahead=3))
