"""A real Prometheus (Debian's binary) judging our dashboards' PromQL and our rules.

Three things are checked against the server, never against a parser of our own:
1. every panel query and template variable of grafana/dashboards parses and evaluates;
2. every worker panel returns data while a worker is scraped, and the
   recording/alerting rules evaluate without errors on that data;
3. every Triton panel returns data while a real Triton serves requests.

Which worker is scraped: ``running_worker`` when tests/integration/conftest.py
provides it (an object with ``.metrics_url`` = ``host:port``, fed by a
simulator run); until then the sample exporter of ecomstream.testing.prometheus,
a separate process serving ``ecomstream.metrics`` with every metric touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ecomstream.launchers.process import find_free_port, is_alive, port_is_free, wait_for
from ecomstream.launchers.prometheus import (
    RULES_DIR,
    TRITON_JOB,
    WORKER_JOB,
    PrometheusServer,
    PromQLError,
    query,
    rules,
)
from ecomstream.testing.prometheus import (
    PanelQuery,
    PrometheusFactory,
    SampleExporter,
    dashboard_variables,
    load_dashboards,
    metric_names,
    metrics_address,
    panel_queries,
    render_query,
    running_prometheus,
    variable_queries,
)

pytestmark = pytest.mark.integration

RULE_FILES = [str(RULES_DIR / "*.yml")]
DASHBOARDS = load_dashboards()
DATA_TIMEOUT = 30.0

#: With a real worker and a normal simulator run these may legitimately stay
#: empty (no bad input, no scorer failure, no incident); the sample exporter
#: must still fill them all.
MAY_BE_EMPTY_FROM_A_REAL_RUN = frozenset(
    {
        "ecomstream_dead_letters_total",
        "ecomstream_scorer_errors_total",
        "ecomstream_sentiment_alerts_total",
        "ecomstream_sentiment_alerts_open",
        "scorer:ecomstream_scorer_error_ratio:rate5m",
        # The run ends before Prometheus' first scrape: every rate is 0, so shares are 0/0.
        "label:ecomstream_reviews_scored:share5m",
        # No table exists until the profile and sentiment-window agents land.
        "ecomstream_table_keys",
    }
)
#: Triton on this machine runs on the CPU (no DCGM) and serves no failures.
MAY_BE_EMPTY_FROM_TRITON = frozenset(
    {
        "nv_inference_request_failure",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_memory_total_bytes",
    }
)


def _is_triton(q: PanelQuery) -> bool:
    """Whether a query needs Triton scraped (its metrics or its job)."""
    return f'job="{TRITON_JOB}"' in q.expr or any(
        name.startswith("nv_") for name in metric_names(q.expr)
    )


def _all_queries() -> list[tuple[PanelQuery, str]]:
    """(query, PromQL with the dashboard's variables at "All") for every panel target."""
    rendered = []
    for name, dashboard in DASHBOARDS.items():
        values = dashboard_variables(dashboard)
        rendered += [(q, render_query(q.expr, values)) for q in panel_queries(name, dashboard)]
    return rendered


def _wait_for_data(
    url: str, queries: Iterable[tuple[PanelQuery, str]], timeout: float
) -> dict[str, str]:
    """Poll until every query returns data; return ``{query: promql}`` of those that never did."""
    pending = {str(q): promql for q, promql in queries}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, promql in list(pending.items()):
            if query(url, promql):
                del pending[key]
        if pending:
            time.sleep(0.5)
    return pending


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def scraped_worker(request: pytest.FixtureRequest) -> Any:
    """The lead's ``running_worker`` if defined, else the sample exporter (see module doc)."""
    try:
        return request.getfixturevalue("running_worker")
    except pytest.FixtureLookupError:
        return request.getfixturevalue("sample_metrics_exporter")


@pytest.fixture(scope="module")
def idle_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Prometheus scraping nothing but itself: enough to parse and evaluate PromQL."""
    with running_prometheus(tmp_path_factory.mktemp("prometheus-idle"), {}) as server:
        yield server


# --------------------------------------------------------------------------- launcher


def test_launcher_starts_scrapes_queries_and_stops(
    tmp_path: Path, sample_metrics_exporter: SampleExporter
) -> None:
    target = metrics_address(sample_metrics_exporter)
    server = PrometheusServer(tmp_path, {WORKER_JOB: [target]}, port=find_free_port())
    try:
        url = server.start()
        pid = server.pid()
        assert pid is not None and is_alive(pid)
        assert server.pidfile.read() == pid
        server.wait_for_up([target], timeout=30)  # polls; the first scrape takes ~5 s
        (sample,) = server.query(f'up{{job="{WORKER_JOB}"}}').samples
        assert sample[0]["instance"] == target and sample[1] == 1.0
        with pytest.raises(PromQLError) as error:
            query(url, "sum(rate(ecomstream_events_consumed_total[1m])")
        assert error.value.error_type == "bad_data" and "parse error" in error.value.error
        # A second handle on the same data dir adopts the running server.
        again = PrometheusServer(tmp_path, {WORKER_JOB: [target]}, port=server.port)
        assert again.start() == url and again.pid() == pid
    finally:
        assert server.stop() is True
    assert not is_alive(pid)
    assert server.pidfile.read() is None
    assert port_is_free(server.port)
    assert server.stop() is False


def test_wait_for_up_names_the_failing_target(prometheus_server: PrometheusFactory) -> None:
    server = prometheus_server({WORKER_JOB: ["127.0.0.1:9"]}, wait_up=False)
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:9: (down|unknown|not a target)"):
        server.wait_for_up(["127.0.0.1:9"], timeout=2)


# --------------------------------------------------------------------------- dashboards


def test_every_dashboard_query_parses_and_evaluates(idle_prometheus: PrometheusServer) -> None:
    errors = {}
    for q, promql in _all_queries():
        try:
            idle_prometheus.query(promql)
        except PromQLError as exc:
            errors[str(q)] = exc.error
    for name, dashboard in DASHBOARDS.items():
        for variable in variable_queries(name, dashboard):
            try:
                idle_prometheus.query(variable.selector)
            except PromQLError as exc:
                errors[f"{name} / ${variable.name}"] = exc.error
    assert errors == {}


def test_worker_panels_return_data_and_rules_evaluate(
    scraped_worker: Any, prometheus_server: PrometheusFactory
) -> None:
    synthetic = isinstance(scraped_worker, SampleExporter)
    target = metrics_address(scraped_worker)
    server = prometheus_server({WORKER_JOB: [target]}, rule_files=RULE_FILES)

    worker_queries = [(q, p) for q, p in _all_queries() if not _is_triton(q)]
    if not synthetic:
        worker_queries = [
            (q, p)
            for q, p in worker_queries
            if not metric_names(q.expr) & MAY_BE_EMPTY_FROM_A_REAL_RUN
        ]
    assert _wait_for_data(server.url, worker_queries, DATA_TIMEOUT) == {}

    for name, dashboard in DASHBOARDS.items():
        for variable in variable_queries(name, dashboard):
            if any(n.startswith("nv_") for n in metric_names(variable.selector)):
                continue
            result = server.wait_for_data(variable.selector, DATA_TIMEOUT)
            assert all(variable.label in labels for labels, _ in result.samples), variable

    # Every recording and alerting rule has been evaluated on this data without error.
    def evaluated() -> list[dict[str, Any]]:
        loaded = [rule for group in rules(server.url) for rule in group["rules"]]
        never = "0001-01-01"  # Go's zero time: not evaluated yet
        done = all(not rule["lastEvaluation"].startswith(never) for rule in loaded)
        return loaded if loaded and done else []

    loaded = wait_for(evaluated, DATA_TIMEOUT, 0.5, description="every rule evaluated")
    broken = {r["name"]: r.get("lastError") for r in loaded if r.get("health") != "ok"}
    assert broken == {}


def test_triton_panels_return_data(
    triton_server: Any, prometheus_server: PrometheusFactory
) -> None:
    from ecomstream.inference.triton import TritonScorer

    target = metrics_address(triton_server)
    server = prometheus_server({TRITON_JOB: [target]})

    async def score() -> None:
        async with TritonScorer(triton_server.grpc_url, "review_sentiment") as scorer:
            await scorer.score([f"review {i}: great value, slow delivery" for i in range(64)])

    triton_queries = [
        (q, p)
        for q, p in _all_queries()
        if _is_triton(q) and not metric_names(q.expr) <= MAY_BE_EMPTY_FROM_TRITON
    ]
    assert triton_queries
    # Keep traffic flowing so rate() windows see increases while we poll.
    deadline = time.monotonic() + DATA_TIMEOUT
    pending: dict[str, str] = {str(q): p for q, p in triton_queries}
    while pending and time.monotonic() < deadline:
        asyncio.run(score())
        still = [(q, p) for q, p in triton_queries if str(q) in pending]
        pending = _wait_for_data(server.url, still, 2)
    assert pending == {}

    for variable in variable_queries("model-serving", DASHBOARDS["model-serving"]):
        if variable.name == "model":
            result = server.wait_for_data(variable.selector, DATA_TIMEOUT)
            models = {labels[variable.label] for labels, _ in result.samples}
            assert "review_sentiment" in models


# --------------------------------------------------------------------------- real-run numbers


def test_consumed_counts_match_what_the_worker_was_sent(
    request: pytest.FixtureRequest, prometheus_server: PrometheusFactory
) -> None:
    """Needs ``running_worker.produced``: ``{topic: events sent}`` by the simulator run."""
    try:
        worker = request.getfixturevalue("running_worker")
    except pytest.FixtureLookupError:
        pytest.skip("needs running_worker from tests/integration/conftest.py")
    produced = getattr(worker, "produced", None)
    if not produced:
        pytest.skip("running_worker.produced ({topic: events sent}) is not provided")
    server = prometheus_server({WORKER_JOB: [metrics_address(worker)]})

    def counts() -> dict[str, float] | None:
        samples = server.query("sum by (topic) (ecomstream_events_consumed_total)").samples
        seen = {labels["topic"]: value for labels, value in samples}
        return seen if seen == {k: float(v) for k, v in produced.items()} else None

    wait_for(counts, 60, 0.5, description=f"consumed counts == {produced}")


def test_scraped_counts_and_quantiles_match_the_run(
    request: pytest.FixtureRequest, prometheus_server: PrometheusFactory
) -> None:
    """Dead letters by reason, reviews scored and batch histograms as Prometheus reports them."""
    try:
        worker = request.getfixturevalue("running_worker")
    except pytest.FixtureLookupError:
        pytest.skip("needs running_worker from tests/integration/conftest.py")
    server = prometheus_server({WORKER_JOB: [metrics_address(worker)]})

    def scalar(expr: str) -> float | None:
        samples = server.query(expr).samples
        return samples[0][1] if samples else None

    def by(expr: str, label: str) -> dict[str, float]:
        return {labels[label]: value for labels, value in server.query(expr).samples}

    reviews = worker.valid["reviews"]
    wait_for(
        lambda: scalar("sum(ecomstream_reviews_scored_total)") == reviews,
        60,
        0.5,
        description=f"{reviews} reviews scored",
    )
    dead = by("sum by (reason) (ecomstream_dead_letters_total)", "reason")
    assert dead == {reason: float(n) for reason, n in worker.dead_letters.items()}
    batches = scalar('sum(ecomstream_batch_size_count{agent=~".*-behaviour"})')
    events = scalar('sum(ecomstream_batch_size_sum{agent=~".*-behaviour"})')
    # The behaviour processor reads the inputs and every scored review re-keyed by user.
    assert batches and events == sum(worker.produced.values()) + reviews
    buckets = 'sum by (le) (ecomstream_processing_seconds_bucket{agent=~".*-behaviour"})'
    p50 = scalar(f"histogram_quantile(0.5, {buckets})")
    p99 = scalar(f"histogram_quantile(0.99, {buckets})")
    assert p50 is not None and p99 is not None and 0 < p50 <= p99 <= 10
