"""Work on a stream of units in a few threads, keeping every thread busy from the first unit to the last."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

U = TypeVar("U")
R = TypeVar("R")


def pipelined(units: Iterable[U], work: Callable[[U], Iterable[R]], concurrency: int) -> Iterator[R]:
    """`work(unit)` for each unit in `concurrency` threads; each unit's results as soon as it is done.

    Units are drawn in the calling thread, so a generator that reads and marks a database keeps to one
    thread; at most two units per thread wait ahead, so a slow system holds back the reading of more work.
    Handing over the next unit before the last ones finish is what keeps the calls in flight across the
    caller's chunks, where a `pool.map` per chunk would let the threads run dry at every chunk's end.
    """
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        running: set[Future[Iterable[R]]] = set()
        for unit in units:
            running.add(pool.submit(work, unit))
            if len(running) >= 2 * concurrency:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()
