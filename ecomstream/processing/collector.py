"""Full garbage collections when the worker can afford them, not in the middle of a batch.

Why: a worker keeps its tables as Python objects. CPython's full (generation 2)
collection walks every tracked object while the event loop stands still; with
20,000 profiles in memory it took about 100 ms, several times a minute while the
state grew, and those pauses were the p99 of the click → recommendation path.
Table values hold no reference cycles (a replaced value is freed by reference
counting), so a full collection finds almost nothing to free there; young
generations still run as usual and catch short-lived cycles.

So: :meth:`FullCollections.install` freezes what start-up allocated (modules,
clients) and turns the automatic full collection off; :meth:`FullCollections.tick`,
called about once a second, runs one once events were processed since the last
full collection and then none arrived for a tick, or after ``max_interval_s`` at
the latest. A busy worker pays one pause per interval instead of one per 25% of
growth; an idle one pays nothing.

>>> policy = FullCollections(max_interval_s=600.0)
>>> policy.due(now=10.0, events=500)  # first look: remember the count
False
>>> policy.due(now=11.0, events=900)  # busy
False
>>> policy.due(now=12.0, events=900)  # idle since the last tick, after work
True
>>> policy.collected(now=12.1, events=900)
>>> policy.due(now=13.0, events=900)  # still idle, nothing new to collect
False
>>> policy.due(now=700.0, events=5_000_000)  # busy, overdue
True
"""

from __future__ import annotations

import gc
import time

from ecomstream import metrics

#: Generation-2 threshold that never triggers (collections come from tick()).
_NEVER = 1_000_000_000


class FullCollections:
    """Decides when a full collection runs (see the module docstring)."""

    def __init__(self, max_interval_s: float = 600.0) -> None:
        self.max_interval_s = max_interval_s
        self._events: int | None = None
        self._events_at_full = 0
        self._last_full = time.monotonic()
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        """Freeze start-up objects and stop automatic full collections (until :meth:`uninstall`)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.collect()
            gc.freeze()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, _NEVER)
            self._last_full = time.monotonic()

    def uninstall(self) -> None:
        """Give CPython back its own thresholds."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None

    def due(self, now: float, events: int) -> bool:
        """True when a full collection should run: work since the last one, and idle or overdue.

        ``now``: monotonic seconds; ``events``: the worker's processed-event count.
        """
        idle = events == self._events
        self._events = events
        if events == self._events_at_full:
            return False
        return idle or now - self._last_full >= self.max_interval_s

    def collected(self, now: float, events: int) -> None:
        """Record a full collection at ``now`` after ``events`` events."""
        self._last_full = now
        self._events_at_full = events

    def tick(self, events: int) -> float | None:
        """Run a full collection if :meth:`due`; return its seconds (None: not run)."""
        now = time.monotonic()
        if not self.due(now, events):
            return None
        started = time.perf_counter()
        gc.collect()
        seconds = time.perf_counter() - started
        self.collected(time.monotonic(), events)
        metrics.FULL_GC_SECONDS.observe(seconds)
        return seconds
