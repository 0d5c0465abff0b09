"""The daemon's thread-to-loop stream bridge: bounded, and stopped when the client leaves."""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))

from pyjail_daemon.streams import iterate_in_thread  # noqa: E402


def test_a_slow_consumer_holds_back_the_producer():
    produced: list[int] = []
    ahead: list[int] = []

    def produce():
        for i in range(200):
            produced.append(i)
            yield i

    async def consume():
        seen = 0
        async for _item in iterate_in_thread(pool, produce, threading.Event(), max_pending=4):
            seen += 1
            await asyncio.sleep(0.001)  # a slow client
            ahead.append(len(produced) - seen)
        return seen

    with ThreadPoolExecutor(1) as pool:
        assert asyncio.run(consume()) == 200
    # the producer may hold one item in hand beyond the queued ones
    assert max(ahead) <= 4 + 1, max(ahead)


def test_the_producer_thread_ends_when_the_consumer_leaves():
    stop = threading.Event()
    finished = threading.Event()

    def produce():
        try:
            i = 0
            while True:
                i += 1
                yield i
        finally:
            finished.set()

    async def take_three():
        got = []
        async for item in iterate_in_thread(pool, produce, stop, max_pending=2):
            got.append(item)
            if len(got) == 3:
                break
        return got

    with ThreadPoolExecutor(1) as pool:
        assert asyncio.run(take_three()) == [1, 2, 3]
        assert stop.is_set()
        assert finished.wait(5), "the producer thread kept running after the client left"
