"""`pipelined`: every unit's results, at most `concurrency` at work, units drawn only a little ahead."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connector.systems.pipeline import pipelined


def test_every_result_of_every_unit_once():
    got = list(pipelined(range(50), lambda n: [n, -n], concurrency=4))
    assert sorted(got) == sorted([*range(50), *(-n for n in range(50))])


def test_no_more_than_concurrency_at_work_and_the_threads_never_run_dry():
    lock, busy, peak, overlaps = threading.Lock(), [0], [0], []

    def work(n: int) -> list[int]:
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
            overlaps.append(busy[0])
        time.sleep(0.01)
        with lock:
            busy[0] -= 1
        return [n]

    assert len(list(pipelined(range(40), work, concurrency=3))) == 40
    assert peak[0] == 3
    # After the start-up, a unit begins while the others are still at work: no drain between units.
    assert sum(o == 3 for o in overlaps[3:-3]) >= len(overlaps[3:-3]) * 0.8


def test_units_are_drawn_in_the_calling_thread_and_only_a_little_ahead():
    caller, drawn, answered = threading.get_ident(), [], []

    def units() -> Iterator[int]:
        for n in range(30):
            assert threading.get_ident() == caller  # a database cursor would stay in its own thread
            drawn.append(n)
            yield n

    gate = threading.Event()

    def work(n: int) -> list[int]:
        gate.wait(5)
        return [n]

    stream = pipelined(units(), work, concurrency=2)
    threading.Timer(0.2, gate.set).start()
    answered.append(next(stream))
    assert len(drawn) <= 2 * 2 + 1  # two per thread ahead, plus the one that found the window full
    answered += list(stream)
    assert sorted(answered) == list(range(30))


@pytest.mark.parametrize("failing", [0, 7, 29])
def test_a_failing_unit_raises_to_the_caller(failing):
    def work(n: int) -> list[int]:
        if n == failing:
            raise RuntimeError(f"unit {n} failed")
        return [n]

    with pytest.raises(RuntimeError, match=f"unit {failing} failed"):
        list(pipelined(range(30), work, concurrency=4))
