"""Retry with exponential backoff + jitter, and a circuit breaker that makes callers wait.

Why here and pure asyncio: the Triton scorer needs both, and the policy
(what is retried, when callers wait, when one probe goes through) must be
unit-testable without a server. Nothing here ever returns a made-up result:
a caller either gets the real answer, the permanent error, or waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ecomstream.inference.base import ScorerUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff; ``jitter`` is the random fraction of each delay (1.0 = "full jitter").

    >>> b = Backoff(initial_s=0.1, max_s=1.0, multiplier=2.0, jitter=0.0)
    >>> [b.delay(n) for n in range(6)]
    [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    """

    initial_s: float = 0.05
    max_s: float = 2.0
    multiplier: float = 2.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < self.initial_s:
            raise ValueError("need 0 <= initial_s <= max_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must lie in [0, 1]")

    def cap(self, attempt: int) -> float:
        """The delay before jitter for the ``attempt``-th retry (0-based)."""
        return min(self.max_s, self.initial_s * self.multiplier ** min(max(attempt, 0), 64))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        cap = self.cap(attempt)
        if self.jitter == 0.0:
            return cap
        draw = (rng or random).random()
        return cap * (1.0 - self.jitter) + cap * self.jitter * draw


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; half-opens after a cooldown.

    While open, :meth:`acquire` waits (backpressure). Once the cooldown has
    passed, exactly one caller (the probe) is let through; its success closes
    the circuit and releases every waiter, its failure re-opens it with a
    cooldown doubled up to ``max_reset_timeout_s``.

    Callers pair each :meth:`acquire` with one of :meth:`record_success`,
    :meth:`record_failure` or :meth:`release` (neither: e.g. cancelled, or an
    error that says nothing about the dependency's health).
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 2.0,
        *,
        max_reset_timeout_s: float | None = None,
        name: str = "circuit",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.max_reset_timeout_s = max(max_reset_timeout_s or reset_timeout_s * 8, reset_timeout_s)
        self.name = name
        self._clock = clock
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._cooldown = reset_timeout_s
        self._probe_in_flight = False
        self._changed = asyncio.Event()
        self.times_opened = 0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    @property
    def cooldown_s(self) -> float:
        return self._cooldown

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def try_acquire(self) -> bool:
        """Take a call permit without waiting; False if the circuit forbids a call now."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            log.info("%s: half-open, sending one probe", self.name)
            return True
        return False

    async def acquire(self) -> None:
        """Wait until a call is allowed (always at once while closed)."""
        while not self.try_acquire():
            changed = self._changed
            timeout: float | None = None
            if self.state is CircuitState.OPEN and self._opened_at is not None:
                timeout = max(self._opened_at + self._cooldown - self._clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._probe_in_flight = False
        if self._opened_at is not None:
            log.info("%s: closed after a successful call", self.name)
            self._opened_at = None
            self._cooldown = self.reset_timeout_s
            self._notify()

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        if self._opened_at is not None:
            if self._probe_in_flight or self.state is CircuitState.HALF_OPEN:
                self._probe_in_flight = False
                self._cooldown = min(self._cooldown * 2, self.max_reset_timeout_s)
                self._opened_at = self._clock()
                log.warning("%s: probe failed, open for %.2fs", self.name, self._cooldown)
                self._notify()
            return
        if self._consecutive_failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self.times_opened += 1
            log.warning(
                "%s: open after %d consecutive failures, for %.2fs",
                self.name,
                self._consecutive_failures,
                self._cooldown,
            )
            self._notify()

    def release(self) -> None:
        """Give back a permit without a verdict (e.g. the call was cancelled)."""
        if self._probe_in_flight:
            self._probe_in_flight = False
            self._notify()


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff,
    breaker: CircuitBreaker | None = None,
    max_attempts: int | None = None,
    deadline: float | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors with backoff.

    - A non-transient error is raised at once (the breaker gets no verdict).
    - Transient errors count against the breaker; while it is open this waits.
    - ``max_attempts`` (None: unbounded) re-raises the last transient error.
    - ``deadline`` (``time.monotonic()`` value; None: wait for ever) raises
      :class:`ScorerUnavailable` rather than wait past it.
    """

    def remaining() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    attempt = 0
    while True:
        if breaker is not None:
            left = remaining()
            if left is not None and left <= 0:
                raise ScorerUnavailable("deadline passed while the circuit was open")
            try:
                await asyncio.wait_for(breaker.acquire(), left)
            except TimeoutError:
                raise ScorerUnavailable("deadline passed while the circuit was open") from None
        try:
            result = await fn()
        except BaseException as exc:
            if not (isinstance(exc, Exception) and is_transient(exc)):
                if breaker is not None:
                    breaker.release()
                raise
            if breaker is not None:
                breaker.record_failure()
            attempt += 1
            if max_attempts is not None and attempt >= max_attempts:
                raise
            delay = backoff.delay(attempt - 1, rng)
            left = remaining()
            if left is not None and delay >= left:
                raise ScorerUnavailable(f"deadline passed after {attempt} attempts: {exc}") from exc
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            await sleep(delay)
        else:
            if breaker is not None:
                breaker.record_success()
            return result
