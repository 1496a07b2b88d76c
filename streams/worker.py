"""The Faust worker class this app starts: ``faust.Worker`` without the terminal spinner.

Why: at ``--loglevel warn`` or above, ``faust.Worker`` installs a progress spinner
that sets the root logger to DEBUG so that every log record turns it, even when
stdout is a file. Every library's debug call (aiokafka makes a few per fetch and per
produce request) then builds a ``LogRecord`` that the handlers drop: measured with
py-spy, 6% of a worker's time at 2,000 events/s. A worker is a service; there is
nothing to spin for.
"""

from __future__ import annotations

from typing import Any

import faust


class Worker(faust.Worker):
    def __init__(self, *services: Any, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self.spinner = None
