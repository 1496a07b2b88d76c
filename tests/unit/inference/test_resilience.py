"""Backoff, circuit breaker and retry policy, driven by fake async callables."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from ecomstream.inference.base import ScorerUnavailable
from ecomstream.inference.resilience import (
    Backoff,
    CircuitBreaker,
    CircuitState,
    call_with_retry,
)


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Fails with the queued exceptions, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


# ------------------------------------------------------------------ backoff


def test_backoff_grows_exponentially_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0, multiplier=3.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(4)] == pytest.approx([0.1, 0.3, 0.9, 1.0])
    assert backoff.delay(10_000) == 1.0  # no overflow


def test_full_jitter_stays_within_the_cap_and_varies() -> None:
    backoff = Backoff(initial_s=0.1, max_s=10.0, jitter=1.0)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.8 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150


def test_partial_jitter_keeps_a_floor() -> None:
    backoff = Backoff(initial_s=1.0, max_s=1.0, jitter=0.25)
    rng = random.Random(1)
    assert all(0.75 <= backoff.delay(0, rng) <= 1.0 for _ in range(100))


@pytest.mark.parametrize(
    "kwargs", [{"initial_s": -1}, {"initial_s": 2, "max_s": 1}, {"multiplier": 0.5}, {"jitter": 2}]
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


# ------------------------------------------------------------------ circuit breaker


def test_opens_after_threshold_consecutive_failures_and_success_resets_count() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.times_opened == 1
    assert not breaker.try_acquire()


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 4.9
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.2
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()
    assert not breaker.try_acquire()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.try_acquire() and breaker.try_acquire()


def test_failed_probe_reopens_with_a_longer_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1, reset_timeout_s=1, max_reset_timeout_s=3, clock=clock
    )
    breaker.record_failure()
    for expected in (2.0, 3.0, 3.0):
        clock.now += breaker.cooldown_s
        assert breaker.try_acquire()
        breaker.record_failure()
        assert breaker.state is CircuitState.OPEN
        assert breaker.cooldown_s == expected
    clock.now += 3
    assert breaker.try_acquire()
    breaker.record_success()
    assert breaker.cooldown_s == 1.0  # reset once closed


def test_released_probe_lets_another_caller_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    assert breaker.try_acquire()
    breaker.release()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()


async def test_waiters_block_while_open_and_all_proceed_after_a_good_probe() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=0.05)
    breaker.record_failure()
    admitted: list[int] = []

    async def caller(n: int) -> None:
        await breaker.acquire()
        admitted.append(n)

    tasks = [asyncio.create_task(caller(n)) for n in range(5)]
    await asyncio.sleep(0.02)
    assert admitted == []  # open: everyone waits
    await asyncio.sleep(0.06)
    assert len(admitted) == 1  # half-open: one probe
    breaker.record_success()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert sorted(admitted) == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ retry


async def test_retries_transient_errors_with_backoff_then_returns() -> None:
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    fn = Flaky(Transient(), Transient(), Transient())
    result = await call_with_retry(
        fn,
        is_transient=transient,
        backoff=Backoff(initial_s=0.1, max_s=0.25, jitter=0.0),
        sleep=fake_sleep,
    )
    assert result == "ok"
    assert fn.calls == 4
    assert sleeps == [0.1, 0.2, 0.25]


async def test_permanent_error_is_raised_at_once_without_a_breaker_verdict() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10)
    fn = Flaky(Permanent("bad input"))
    with pytest.raises(Permanent):
        await call_with_retry(
            fn, is_transient=transient, backoff=Backoff(jitter=0.0), breaker=breaker
        )
    assert fn.calls == 1
    assert breaker.state is CircuitState.CLOSED and breaker.consecutive_failures == 0


async def test_max_attempts_reraises_the_last_transient_error() -> None:
    fn = Flaky(Transient("1"), Transient("2"), Transient("3"))
    with pytest.raises(Transient, match="2"):
        await call_with_retry(
            fn, is_transient=transient, backoff=Backoff(initial_s=0, max_s=0), max_attempts=2
        )


async def test_outage_opens_the_circuit_and_callers_wait_instead_of_failing() -> None:
    """Many failures: the breaker opens, calls wait, and a recovered dependency answers them."""
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=0.05)
    healthy = False
    calls = 0

    async def dependency() -> str:
        nonlocal calls
        calls += 1
        if not healthy:
            raise Transient("down")
        return "real answer"

    async def one() -> str:
        return await call_with_retry(
            dependency,
            is_transient=transient,
            backoff=Backoff(initial_s=0.001, max_s=0.01),
            breaker=breaker,
        )

    tasks = [asyncio.create_task(one()) for _ in range(4)]
    await asyncio.sleep(0.2)
    assert breaker.times_opened == 1
    assert not any(t.done() for t in tasks)
    calls_while_open = calls
    await asyncio.sleep(0.1)
    assert calls - calls_while_open <= 3  # open circuit: a trickle of probes, no hammering
    healthy = True
    assert await asyncio.wait_for(asyncio.gather(*tasks), 2) == ["real answer"] * 4
    assert breaker.state is CircuitState.CLOSED


async def test_deadline_raises_unavailable_rather_than_inventing_a_result() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10)
    with pytest.raises(ScorerUnavailable):
        await call_with_retry(
            Flaky(*[Transient()] * 100),
            is_transient=transient,
            backoff=Backoff(initial_s=0.01, max_s=0.01),
            breaker=breaker,
            deadline=time.monotonic() + 0.1,
        )


async def test_cancellation_releases_the_probe() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=0.01)
    breaker.record_failure()
    await asyncio.sleep(0.02)
    started = asyncio.Event()

    async def hangs() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    task = asyncio.create_task(
        call_with_retry(hangs, is_transient=transient, backoff=Backoff(), breaker=breaker)
    )
    await started.wait()
    assert not breaker.try_acquire()  # the probe is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.try_acquire()  # released: someone else may probe
