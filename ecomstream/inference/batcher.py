"""A small async micro-batcher: up to ``max_batch_size`` items or ``max_delay_ms``, then one call.

Why: review scoring pays per call (a gRPC round trip, a model execution), so
single reviews arriving from many coroutines are grouped before they reach
the scorer. Pure asyncio; the batch function is any ``async (items) -> results``.

Backpressure: at most ``max_pending`` items wait or are being processed; a
further :meth:`MicroBatcher.submit` waits for room. At most
``max_concurrent_batches`` calls of the batch function run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

from ecomstream.inference.base import ScorerClosed

T = TypeVar("T")
R = TypeVar("R")

BatchFn = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        fn: BatchFn[T, R],
        *,
        max_batch_size: int = 32,
        max_delay_ms: float = 20.0,
        max_concurrent_batches: int = 4,
        max_pending: int | None = None,
    ) -> None:
        if max_batch_size < 1 or max_concurrent_batches < 1:
            raise ValueError("max_batch_size and max_concurrent_batches must be >= 1")
        if max_delay_ms < 0:
            raise ValueError("max_delay_ms must be >= 0")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_ms / 1000.0
        pending = (
            max_pending
            if max_pending is not None
            else max_batch_size * (max_concurrent_batches + 1)
        )
        if pending < max_batch_size:
            raise ValueError("max_pending must be >= max_batch_size")
        self._room = asyncio.Semaphore(pending)
        self._slots = asyncio.Semaphore(max_concurrent_batches)
        self._buffer: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.batches_sent = 0
        self.batch_sizes: list[int] = []

    @property
    def pending(self) -> int:
        """Items buffered, not yet handed to a batch."""
        return len(self._buffer)

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once its batch is done (or raise its batch's error)."""
        if self._closed:
            raise ScorerClosed("batcher is closed")
        await self._room.acquire()
        if self._closed:
            self._room.release()
            raise ScorerClosed("batcher is closed")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self._room.release())
        self._buffer.append((item, future))
        if len(self._buffer) >= self.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay_s, self._flush)
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Submit every item (they may land in several batches); results in order."""
        return list(await asyncio.gather(*(self.submit(item) for item in items)))

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._buffer:
            batch = self._buffer[: self.max_batch_size]
            del self._buffer[: self.max_batch_size]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        async with self._slots:
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                return
            self.batches_sent += 1
            self.batch_sizes.append(len(live))
            try:
                results = await self._fn([item for item, _ in live])
                if len(results) != len(live):
                    raise ValueError(
                        f"batch function returned {len(results)} results for {len(live)} items"
                    )
            except Exception as exc:
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                return
            except BaseException:
                for _, future in live:
                    future.cancel()
                raise
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def flush(self) -> None:
        """Send what is buffered now and wait for every running batch."""
        self._flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting items, finish the buffered and running batches."""
        self._closed = True
        await self.flush()

    async def __aenter__(self) -> MicroBatcher[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
