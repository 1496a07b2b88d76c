"""A Faust worker of the ``streams`` app as a background process, owned by PID.

Why a launcher for our own worker: the demo, the integration tests and the
benchmarks all need "start a worker on these topics, wait until it owns its
partitions, stop it (cleanly or with kill -9)".
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ecomstream.launchers.process import (
    PidFile,
    is_alive,
    start_background,
    stop_process,
    tail,
    wait_for,
    wait_started,
)

log = logging.getLogger(__name__)


class WorkerProcess:
    """One ``python -m streams worker`` with its settings passed as ``ECOMSTREAM_*``."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        web_port: int,
        settings: Mapping[str, str] | None = None,
        loglevel: str = "info",
        module: str = "streams",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.web_port = web_port
        self.settings = dict(settings or {})
        self.loglevel = loglevel
        self.module = module  # the Faust app's module (benchmarks run a naive variant)
        self.pidfile = PidFile(self.data_dir / "worker.pid")
        self.log_path = self.data_dir / "worker.log"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self.pidfile.running_pid(str(self.data_dir))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({f"ECOMSTREAM_{k.upper()}": v for k, v in self.settings.items()})
        env["ECOMSTREAM_WEB_PORT"] = str(self.web_port)
        env["ECOMSTREAM_DATA_DIR"] = str(self.data_dir / "state")
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until the worker has partitions assigned (``/ready``)."""
        if self.pid is not None:
            raise RuntimeError(f"a worker already runs for {self.data_dir} (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", self.module, "--datadir", str(self.data_dir / "state"),
            "worker", "--loglevel", self.loglevel, "--web-port", str(self.web_port),
        ]  # fmt: skip
        proc = start_background(argv, self.log_path, env=self._env())
        self.pidfile.write(proc.pid)
        wait_started(
            proc.pid,
            proc,
            self.is_ready,
            what=f"worker /ready on port {self.web_port}",
            log_tail=lambda: tail(self.log_path),
            error=RuntimeError,
            timeout=timeout,
            interval=0.2,
        )

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.web_port}/ready", timeout=2
            ) as response:
                return bool(json.loads(response.read()).get("ready"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return False

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful stop: Faust commits offsets and flushes tables on SIGTERM."""
        pid = self.pid
        if pid is not None:
            stop_process(pid, marker=str(self.data_dir), term_timeout=timeout)
        self.pidfile.remove()

    def kill(self) -> None:
        """Crash it (SIGKILL): what a power cut does, for recovery tests."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not is_alive(pid), 10, 0.05, description=f"pid {pid} to die")
        self.pidfile.remove()
