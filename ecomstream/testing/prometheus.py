"""Pytest fixtures: a real Prometheus scraping the processes under test, and a sample exporter.

``prometheus_server`` is a factory: ``prometheus_server({"ecomstream-worker":
["127.0.0.1:6066"]})`` starts Debian's ``prometheus`` on a free port with a
1 s scrape interval and returns a started
:class:`~ecomstream.launchers.prometheus.PrometheusServer`; every server is
stopped by PID at teardown.

``sample_metrics_exporter`` is a stand-in *source* of metrics, not a mock of
Prometheus: a separate Python process that serves
``ecomstream.metrics.REGISTRY`` through prometheus_client's real HTTP server
and keeps touching every metric with every plausible label value, so each
dashboard query has something to return. Tests that need the real worker
take ``running_worker`` instead (see tests/integration/test_prometheus.py).

Run ``python -m ecomstream.testing.prometheus --port N`` to serve the sample
metrics by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecomstream.launchers.process import DEFAULT_HOST, find_free_port, port_accepts, wait_for
from ecomstream.launchers.prometheus import REPO_ROOT, RULES_DIR, PrometheusServer, ScrapeJob

DASHBOARDS_DIR = REPO_ROOT / "grafana" / "dashboards"

#: Triton's own metric names (server docs, "Metrics"): counters have no _total suffix.
TRITON_METRICS = frozenset(
    {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_pending_request_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
        "nv_gpu_utilization",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_power_usage",
        "nv_cpu_utilization",
        "nv_cpu_memory_used_bytes",
    }
)

PrometheusFactory = Callable[..., PrometheusServer]


@contextlib.contextmanager
def running_prometheus(
    data_dir: Path,
    scrape: Mapping[str, Sequence[str]] | Sequence[ScrapeJob] | None = None,
    *,
    wait_up: bool = True,
    up_timeout: float = 30.0,
    **options: object,
) -> Iterator[PrometheusServer]:
    """Start a Prometheus on a free port; with ``wait_up``, return once every target is up."""
    server = PrometheusServer(data_dir, scrape, port=find_free_port(), **options)  # type: ignore[arg-type]
    server.start()
    try:
        if wait_up:
            server.wait_for_up([t for job in server.jobs for t in job.targets], up_timeout)
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    """Factory: ``prometheus_server(scrape, *, wait_up=True, rule_files=(), scrape_interval="1s")``.

    ``scrape`` maps job names to ``host:port`` targets. With ``wait_up`` (the
    default) the call returns once ``up == 1`` for every target.
    """
    with contextlib.ExitStack() as stack:

        def start(
            scrape: Mapping[str, Sequence[str]] | Sequence[ScrapeJob] | None = None,
            **options: object,
        ) -> PrometheusServer:
            data_dir = tmp_path_factory.mktemp("prometheus")
            return stack.enter_context(running_prometheus(data_dir, scrape, **options))  # type: ignore[arg-type]

        yield start


# --------------------------------------------------------------------------- sample exporter

#: Label values the sample exporter cycles through, by label name.
SAMPLE_LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "topic": ("clicks", "purchases", "reviews"),
    "partition": ("0", "1"),
    "reason": ("invalid_json", "wrong_type", "missing"),
    "agent": ("ingest", "score_reviews", "profiles"),
    "table": ("user_profiles", "product_sentiment"),
    "scorer": ("triton",),
    "kind": ("unavailable", "timeout", "invalid"),
    "label": ("negative", "positive"),
    "state": ("firing", "resolved"),
    "severity": ("warning", "critical"),
}


@dataclass(frozen=True)
class SampleExporter:
    """A running sample exporter: scrape ``metrics_url`` (``host:port``)."""

    metrics_url: str
    process: subprocess.Popen[bytes]


def touch_every_metric(rng: random.Random) -> None:
    """Increment, set or observe every metric in ``ecomstream.metrics`` for every label combination.

    Generic over the registry on purpose: a metric added to the contract is
    exercised without editing this file (unknown label names get ``x``).
    """
    from prometheus_client import Counter, Gauge, Histogram

    from ecomstream import metrics

    for collector in vars(metrics).values():
        if not isinstance(collector, Counter | Gauge | Histogram):
            continue
        names = tuple(getattr(collector, "_labelnames", ()))
        combos = itertools.product(*(SAMPLE_LABEL_VALUES.get(n, ("x",)) for n in names))
        for values in combos:
            child = collector.labels(*values) if names else collector
            if isinstance(child, Counter):
                child.inc(rng.randint(1, 5))
            elif isinstance(child, Gauge):
                child.set(rng.randint(0, 3))
            elif isinstance(child, Histogram):
                for _ in range(3):
                    child.observe(rng.choice((0.002, 0.02, 0.2, 1.5, 3, 7)))


def serve_sample_metrics(port: int, host: str = DEFAULT_HOST, interval: float = 0.2) -> None:
    """Serve ``ecomstream.metrics.REGISTRY`` on ``host:port``, touching every metric forever."""
    from prometheus_client import start_http_server

    from ecomstream import metrics

    rng = random.Random(7)
    touch_every_metric(rng)
    start_http_server(port, addr=host, registry=metrics.REGISTRY)
    while True:
        time.sleep(interval)
        touch_every_metric(rng)


def start_sample_exporter(port: int | None = None, timeout: float = 15.0) -> SampleExporter:
    """Start the sample exporter as a child process; return once ``/metrics`` answers."""
    port = port or find_free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecomstream.testing.prometheus", "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )

    def serving() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sample exporter exited with {proc.returncode}")
        if not port_accepts(port):
            return False
        with urllib.request.urlopen(f"http://{DEFAULT_HOST}:{port}/metrics", timeout=2) as resp:
            return b"ecomstream_" in resp.read()

    try:
        wait_for(serving, timeout, 0.05, description="sample exporter /metrics", ignore=(OSError,))
    except BaseException:
        stop_sample_exporter(proc)
        raise
    return SampleExporter(f"{DEFAULT_HOST}:{port}", proc)


def stop_sample_exporter(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sample_metrics_exporter() -> Iterator[SampleExporter]:
    """A separate process serving every ecomstream metric with data (see module doc)."""
    exporter = start_sample_exporter()
    try:
        yield exporter
    finally:
        stop_sample_exporter(exporter.process)


# --------------------------------------------------------------------------- dashboards


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL target of one dashboard panel."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


@dataclass(frozen=True)
class VariableQuery:
    """A ``label_values(selector, label)`` template variable (Grafana's, not PromQL)."""

    dashboard: str
    name: str
    selector: str
    label: str


#: What Grafana substitutes for its built-in variables, chosen for a 1 s scrape
#: interval: a rate window must span at least two scrapes.
GRAFANA_BUILTINS = {
    "__rate_interval": "15s",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "1m",
    "__range_s": "60",
    "__range_ms": "60000",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*$", re.S)


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """``{file stem: dashboard JSON}`` for every ``*.json`` in ``directory``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows; rows themselves too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(name: str, dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL targets of every panel (targets without ``expr`` are skipped)."""
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                queries.append(
                    PanelQuery(
                        name,
                        str(panel.get("title", panel.get("id"))),
                        str(target.get("refId", "?")),
                        str(target["expr"]),
                        bool(target.get("instant", False)),
                    )
                )
    return queries


def variable_queries(name: str, dashboard: Mapping[str, Any]) -> list[VariableQuery]:
    """The ``label_values()`` query variables of a dashboard."""
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = _LABEL_VALUES.match(text)
        if match is None:
            raise ValueError(f"{name}: variable {variable['name']}: not label_values(): {text!r}")
        found.append(VariableQuery(name, variable["name"], match.group(1) or "", match.group(2)))
    return found


def render_query(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with Grafana variables (``$x``, ``${x}``, ``[[x]]``) replaced.

    ``variables`` adds to :data:`GRAFANA_BUILTINS`; an unknown variable is a
    ``KeyError`` (a typo would otherwise reach Prometheus as a parse error at best).
    """
    values = {**GRAFANA_BUILTINS, **variables}

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)


def dashboard_variables(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each template variable's value when "All" is selected (its ``allValue``, else ``.*``)."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            values[variable["name"]] = "prometheus"
        else:
            values[variable["name"]] = str(variable.get("allValue") or ".*")
    return values


# PromQL words that look like metric names.
_PROMQL_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a lexical scan, good for our queries).

    Strings, label matchers, grouping clauses, durations and function names are
    dropped; ``{__name__=...}`` selectors are not understood.
    """
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _CLAUSES.sub("", text)
    return {
        name
        for name in _IDENTIFIER.findall(text)
        if name.lower() not in _PROMQL_KEYWORDS and not re.fullmatch(r"\d\w*", name)
    }


def ecomstream_metric_names() -> set[str]:
    """Every series name ``ecomstream.metrics`` can expose (with _total/_bucket/... suffixes)."""
    from prometheus_client import Counter, Gauge, Histogram

    from ecomstream import metrics

    names: set[str] = set()
    collectors = [c for c in vars(metrics).values() if isinstance(c, Counter | Gauge | Histogram)]
    for collector in collectors:
        for family in collector.describe():
            if family.type == "counter":
                names |= {f"{family.name}_total", f"{family.name}_created"}
            elif family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
            else:
                names.add(family.name)
    return names


def recording_rule_names(rule_files: Iterable[Path] | None = None) -> set[str]:
    """The ``record:`` names in the rule files (default: ``prometheus/rules/*.yml``)."""
    import yaml

    names = set()
    for path in rule_files if rule_files is not None else sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


#: Series Prometheus makes itself.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"})


def known_metric_names() -> set[str]:
    """Every name a dashboard or rule may select: ours, Triton's, recorded, Prometheus's."""
    return ecomstream_metric_names() | TRITON_METRICS | recording_rule_names() | PROMETHEUS_SERIES


def metrics_address(source: object) -> str:
    """``host:port`` of a metrics source: its ``metrics_url`` with any scheme/path dropped."""
    url = str(getattr(source, "metrics_url", source))
    url = url.split("://", 1)[-1]
    return url.split("/", 1)[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve every ecomstream metric with sample data.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        serve_sample_metrics(args.port, args.host, args.interval)


if __name__ == "__main__":
    main()
