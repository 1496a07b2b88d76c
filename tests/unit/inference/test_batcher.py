"""MicroBatcher: size and time triggers, ordering, errors, backpressure, close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from ecomstream.inference.base import ScorerClosed
from ecomstream.inference.batcher import MicroBatcher


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.running = 0
        self.max_running = 0

    async def __call__(self, items: Sequence[str]) -> list[str]:
        self.calls.append(list(items))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError(f"bad item {self.fail_on}")
            return [item.upper() for item in items]
        finally:
            self.running -= 1


async def test_full_batch_is_sent_without_waiting_for_the_timer() -> None:
    fn = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(fn, max_batch_size=4, max_delay_ms=10_000)
    started = time.monotonic()
    results = await asyncio.gather(*(batcher.submit(x) for x in "abcd"))
    assert results == ["A", "B", "C", "D"]
    assert fn.calls == [["a", "b", "c", "d"]]
    assert time.monotonic() - started < 1.0


async def test_partial_batch_is_sent_after_max_delay() -> None:
    fn = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(fn, max_batch_size=100, max_delay_ms=30)
    started = time.monotonic()
    results = await asyncio.gather(batcher.submit("x"), batcher.submit("y"))
    elapsed = time.monotonic() - started
    assert results == ["X", "Y"]
    assert fn.calls == [["x", "y"]]
    assert 0.02 <= elapsed < 1.0


async def test_many_items_split_into_batches_in_order() -> None:
    fn = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(
        fn, max_batch_size=3, max_delay_ms=5, max_pending=100
    )
    items = [f"i{n}" for n in range(10)]
    assert await batcher.submit_many(items) == [x.upper() for x in items]
    assert [len(c) for c in fn.calls] == [3, 3, 3, 1]
    assert [x for call in fn.calls for x in call] == items
    assert batcher.batch_sizes == [3, 3, 3, 1]


async def test_batch_error_reaches_every_item_of_that_batch_only() -> None:
    fn = Recorder(fail_on="bad")
    batcher: MicroBatcher[str, str] = MicroBatcher(fn, max_batch_size=2, max_delay_ms=5)
    results = await asyncio.gather(
        *(batcher.submit(x) for x in ["ok1", "bad", "ok2", "ok3"]), return_exceptions=True
    )
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], RuntimeError)
    assert results[2:] == ["OK2", "OK3"]


async def test_wrong_result_count_is_an_error_not_a_misalignment() -> None:
    async def short(items: Sequence[str]) -> list[str]:
        return list(items)[:-1]

    batcher: MicroBatcher[str, str] = MicroBatcher(short, max_batch_size=2, max_delay_ms=5)
    with pytest.raises(ValueError, match="1 results for 2 items"):
        await asyncio.gather(batcher.submit("a"), batcher.submit("b"))


async def test_concurrent_batches_are_bounded() -> None:
    fn = Recorder(delay=0.05)
    batcher: MicroBatcher[str, str] = MicroBatcher(
        fn, max_batch_size=1, max_delay_ms=0, max_concurrent_batches=2, max_pending=100
    )
    await batcher.submit_many([str(n) for n in range(8)])
    assert fn.max_running == 2
    assert len(fn.calls) == 8


async def test_submit_waits_when_pending_is_full() -> None:
    release = asyncio.Event()

    async def blocked(items: Sequence[str]) -> list[str]:
        await release.wait()
        return list(items)

    batcher: MicroBatcher[str, str] = MicroBatcher(
        blocked, max_batch_size=2, max_delay_ms=0, max_concurrent_batches=1, max_pending=2
    )
    first = [asyncio.create_task(batcher.submit(x)) for x in "ab"]
    third = asyncio.create_task(batcher.submit("c"))
    await asyncio.sleep(0.05)
    assert not third.done() and batcher.pending == 0  # "c" waits for room, not in the buffer
    release.set()
    assert await asyncio.gather(*first, third) == ["a", "b", "c"]


async def test_cancelled_submitter_is_dropped_from_its_batch() -> None:
    fn = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(fn, max_batch_size=10, max_delay_ms=30)
    gone = asyncio.create_task(batcher.submit("gone"))
    kept = asyncio.create_task(batcher.submit("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == "KEPT"
    assert fn.calls == [["kept"]]


async def test_close_flushes_and_then_refuses() -> None:
    fn = Recorder()
    batcher: MicroBatcher[str, str] = MicroBatcher(fn, max_batch_size=10, max_delay_ms=10_000)
    pending = asyncio.create_task(batcher.submit("late"))
    await asyncio.sleep(0)
    await batcher.close()
    assert await pending == "LATE"
    with pytest.raises(ScorerClosed):
        await batcher.submit("after")


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch_size=4, max_pending=2)
