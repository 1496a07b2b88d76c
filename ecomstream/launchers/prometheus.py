"""A real Prometheus server (Debian's ``prometheus`` binary) run by PID, plus query helpers.

Why: the dashboards and alert rules are only as good as their PromQL, and the
only judge of PromQL is Prometheus itself. Tests start one on 127.0.0.1 with
a generated config that scrapes the processes under test every second, then
ask it questions over the HTTP API.

Layout of a data directory::

    prometheus.yml    written on every start (targets and ports may change)
    prometheus.out    the server's stdout/stderr
    prometheus.pid    pidfile of the running server
    tsdb/             --storage.tsdb.path

The config is written as JSON, which is valid YAML, so the library needs no
YAML package at run time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecomstream.launchers.process import (
    DEFAULT_HOST,
    PidFile,
    port_is_free,
    start_background,
    stop_process,
    tail,
    wait_for,
    wait_started,
)

log = logging.getLogger(__name__)

#: Job names shared with ``prometheus/prometheus.yml`` and the dashboards.
WORKER_JOB = "ecomstream-worker"
TRITON_JOB = "triton"
PROMETHEUS_JOB = "prometheus"

DEFAULT_PORT = 9090
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The alerting and recording rules the compose stack loads.
RULES_DIR = REPO_ROOT / "prometheus" / "rules"


class PrometheusError(RuntimeError):
    """Prometheus could not be started or stopped, or an API call failed."""


class PromQLError(PrometheusError):
    """The server refused a query (``errorType`` ``bad_data`` is a PromQL parse error)."""

    def __init__(self, promql: str, error_type: str, error: str) -> None:
        super().__init__(f"{error_type}: {error} (query: {promql})")
        self.promql = promql
        self.error_type = error_type
        self.error = error


# --------------------------------------------------------------------------- HTTP API


@dataclass(frozen=True)
class QueryResult:
    """The ``data`` of an ``/api/v1/query`` answer."""

    result_type: str  # vector, matrix, scalar or string
    result: Any
    warnings: tuple[str, ...] = ()

    @property
    def samples(self) -> list[tuple[dict[str, str], float]]:
        """(labels, value) pairs of an instant vector (a scalar is one pair with no labels)."""
        if self.result_type == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in self.result]
        if self.result_type == "scalar":
            return [({}, float(self.result[1]))]
        raise PrometheusError(f"not an instant vector or scalar: {self.result_type}")

    def __bool__(self) -> bool:
        return bool(self.result) if self.result_type in ("vector", "matrix") else True


def _api_get(url: str, path: str, params: Mapping[str, str], timeout: float) -> Any:
    """GET ``url + path`` and return the decoded ``data``, raising on API errors."""
    query = urllib.parse.urlencode(dict(params))
    full = f"{url.rstrip('/')}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise PrometheusError(f"GET {full}: HTTP {exc.code}") from exc
    if body.get("status") != "success":
        raise PromQLError(
            params.get("query", ""), str(body.get("errorType")), str(body.get("error"))
        )
    return body


def query(url: str, promql: str, *, at: float | None = None, timeout: float = 10.0) -> QueryResult:
    """Evaluate ``promql`` at ``at`` (epoch seconds; default now) on the server at ``url``.

    Raises :class:`PromQLError` with Prometheus's own message when the query
    does not parse or cannot be evaluated.
    """
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    body = _api_get(url, "/api/v1/query", params, timeout)
    data = body["data"]
    return QueryResult(data["resultType"], data["result"], tuple(body.get("warnings", ())))


def targets(url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The active scrape targets with their health and last error."""
    body = _api_get(url, "/api/v1/targets", {"state": "active"}, timeout)
    return list(body["data"]["activeTargets"])


def rules(url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The loaded rule groups (``/api/v1/rules``)."""
    body = _api_get(url, "/api/v1/rules", {}, timeout)
    return list(body["data"]["groups"])


def up_targets(url: str) -> set[str]:
    """The ``instance`` of every target whose last scrape succeeded."""
    return {labels.get("instance", "") for labels, _ in query(url, "up == 1").samples}


def wait_for_up(url: str, instances: Iterable[str], timeout: float = 30.0) -> None:
    """Poll until ``up == 1`` for every ``host:port`` in ``instances``.

    The first scrape lands a few seconds after start (target sync runs every
    5 s), so callers poll here instead of sleeping. On timeout the error
    names each target's health and last scrape error.
    """
    wanted = set(instances)

    def all_up() -> bool:
        return wanted <= up_targets(url)

    try:
        wait_for(
            all_up,
            timeout,
            0.2,
            description=f"up == 1 for {sorted(wanted)}",
            ignore=(OSError, PrometheusError),
        )
    except TimeoutError as exc:
        state = {}
        with contextlib.suppress(OSError, PrometheusError):
            state = {
                t["labels"].get("instance"): f"{t['health']} {t.get('lastError') or ''}".strip()
                for t in targets(url)
            }
        unseen = "not a target yet (targets sync ~5 s after start)"
        detail = "\n".join(f"  {i}: {state.get(i, unseen)}" for i in sorted(wanted))
        raise TimeoutError(f"{exc}\n{detail}") from exc


def wait_for_data(
    url: str, promql: str, timeout: float = 30.0, *, interval: float = 0.25
) -> QueryResult:
    """Poll ``promql`` until it returns a non-empty result; return that result.

    A parse error is raised at once (it will never succeed).
    """

    def nonempty() -> QueryResult | None:
        result = query(url, promql)
        return result if result else None

    result = wait_for(
        nonempty, timeout, interval, description=f"data for {promql!r}", ignore=(OSError,)
    )
    assert result is not None  # wait_for only returns truthy values
    return result


# --------------------------------------------------------------------------- config


@dataclass
class ScrapeJob:
    """One ``scrape_configs`` entry with static ``host:port`` targets."""

    name: str
    targets: Sequence[str]
    metrics_path: str = "/metrics"
    scrape_interval: str | None = None  # None: the global interval
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        static: dict[str, Any] = {"targets": list(self.targets)}
        if self.labels:
            static["labels"] = dict(self.labels)
        job: dict[str, Any] = {
            "job_name": self.name,
            "metrics_path": self.metrics_path,
            "static_configs": [static],
        }
        if self.scrape_interval:
            job["scrape_interval"] = self.scrape_interval
            job["scrape_timeout"] = self.scrape_interval
        return job


def _jobs(scrape: Mapping[str, Sequence[str]] | Sequence[ScrapeJob] | None) -> list[ScrapeJob]:
    if scrape is None:
        return []
    if isinstance(scrape, Mapping):
        return [ScrapeJob(name, list(job_targets)) for name, job_targets in scrape.items()]
    return list(scrape)


def prometheus_binary() -> str:
    """``prometheus`` on PATH (Debian's package installs /usr/bin/prometheus)."""
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusError("no 'prometheus' on PATH; run `make setup` (scripts/system-deps.sh)")
    return found


class PrometheusServer:
    """One Prometheus owning ``data_dir``, scraping ``scrape`` jobs, stopped by PID.

    ``scrape`` is ``{job_name: ["host:port", ...]}`` or a list of
    :class:`ScrapeJob`. The server also scrapes itself (job ``prometheus``)
    unless ``scrape_self`` is False. ``rule_files`` are loaded as given
    (absolute paths or globs), evaluated every ``evaluation_interval``.
    """

    def __init__(
        self,
        data_dir: Path | str,
        scrape: Mapping[str, Sequence[str]] | Sequence[ScrapeJob] | None = None,
        *,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: Sequence[Path | str] = (),
        retention: str = "1d",
        scrape_self: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.jobs = _jobs(scrape)
        self.port = port
        self.host = host
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = [str(path) for path in rule_files]
        self.retention = retention
        self.scrape_self = scrape_self
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------------- paths

    @property
    def url(self) -> str:
        """``http://host:port`` of the HTTP API."""
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port`` (its own scrape target)."""
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    @property
    def tsdb_dir(self) -> Path:
        return self.data_dir / "tsdb"

    @property
    def stdout_log(self) -> Path:
        return self.data_dir / "prometheus.out"

    @property
    def pidfile(self) -> PidFile:
        return PidFile(self.data_dir / "prometheus.pid")

    @property
    def marker(self) -> str:
        """What the server's cmdline must mention to be ours: its config path."""
        return str(self.config_path)

    # ----------------------------------------------------------------- config

    def config(self) -> dict[str, Any]:
        """The Prometheus configuration as a dict (written as JSON)."""
        jobs = list(self.jobs)
        if self.scrape_self and not any(job.name == PROMETHEUS_JOB for job in jobs):
            jobs.append(ScrapeJob(PROMETHEUS_JOB, [self.address]))
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                # A timeout longer than the interval is a config error.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": list(self.rule_files),
            "scrape_configs": [job.render() for job in jobs],
        }

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".yml.tmp")
        tmp.write_text(json.dumps(self.config(), indent=2) + "\n")
        tmp.replace(self.config_path)
        return self.config_path

    def argv(self) -> list[str]:
        return [
            prometheus_binary(),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.tsdb_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",  # POST /-/reload after set_jobs()
            "--log.level=warn",
            *self.extra_args,
        ]

    # ----------------------------------------------------------------- state

    def pid(self) -> int | None:
        """The running server's PID for this data dir, or None (stale pidfiles removed)."""
        return self.pidfile.running_pid(self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_ready(self) -> bool:
        """Whether ``/-/ready`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> str:
        """Write the config, start the server and wait for ``/-/ready``; return its URL.

        If a server for this data dir already runs, it is left alone (its
        config is rewritten and reloaded). If the process exits during
        startup, raises :class:`PrometheusError` with its log tail.
        """
        existing = self.pid()
        if existing is not None:
            log.info("Prometheus already running for %s (pid %d)", self.data_dir, existing)
            self.write_config()
            self._wait_ready(existing, timeout)
            self.reload()
            return self.url
        if not port_is_free(self.port, self.host):
            raise PrometheusError(f"port {self.address} is already in use")
        self.check_config()
        started = time.monotonic()
        self._proc = start_background(self.argv(), self.stdout_log, cwd=self.data_dir)
        self.pidfile.write(self._proc.pid)
        try:
            self._wait_ready(self._proc.pid, timeout)
        except BaseException:
            self.stop()
            raise
        log.info(
            "Prometheus ready at %s in %.1fs (pid %d)",
            self.url,
            time.monotonic() - started,
            self._proc.pid,
        )
        return self.url

    def check_config(self) -> None:
        """Write the config and have ``promtool check config`` judge it (if installed)."""
        self.write_config()
        promtool = shutil.which("promtool")
        if promtool is None:
            return
        result = subprocess.run(
            [promtool, "check", "config", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise PrometheusError(f"invalid config {self.config_path}:\n{output}")

    def _wait_ready(self, pid: int, timeout: float) -> None:
        wait_started(
            pid,
            self._proc,
            self.is_ready,
            what=f"Prometheus at {self.url}/-/ready",
            log_tail=self.log_tail,
            error=PrometheusError,
            timeout=timeout,
            interval=0.1,
        )

    def set_jobs(self, scrape: Mapping[str, Sequence[str]] | Sequence[ScrapeJob]) -> None:
        """Replace the scrape jobs; a running server reloads its config."""
        self.jobs = _jobs(scrape)
        if self.is_running():
            self.check_config()
            self.reload()

    def reload(self, timeout: float = 10.0) -> None:
        """``POST /-/reload`` (the config file is re-read)."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"reload failed: HTTP {exc.code} {exc.read()!r}") from exc

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM exactly our server (pidfile + cmdline check), SIGKILL after ``timeout``.

        Returns True if a server was stopped, False if none was running.
        """
        pid = self.pidfile.read()
        stopped = False
        if pid is not None:
            stopped = stop_process(pid, marker=self.marker, term_timeout=timeout)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)  # reap, and quiet Popen's ResourceWarning
            self._proc = None
        self.pidfile.remove()
        if stopped:
            log.info("stopped Prometheus pid %s (%s)", pid, self.data_dir)
        return stopped

    def log_tail(self, lines: int = 40) -> str:
        text = tail(self.stdout_log, lines)
        return f"--- {self.stdout_log} ---\n{text}" if text else ""

    # ----------------------------------------------------------------- queries

    def query(self, promql: str, *, at: float | None = None) -> QueryResult:
        return query(self.url, promql, at=at)

    def wait_for_up(self, instances: Iterable[str], timeout: float = 30.0) -> None:
        wait_for_up(self.url, instances, timeout)

    def wait_for_data(self, promql: str, timeout: float = 30.0) -> QueryResult:
        return wait_for_data(self.url, promql, timeout)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PrometheusServer({str(self.data_dir)!r}, url={self.url!r})"
