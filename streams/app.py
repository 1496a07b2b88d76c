"""The Faust app, built from :class:`ecomstream.config.Settings`.

Reading this file shows the whole topology: topics, agents, web pages.
"""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from ecomstream import metrics
from ecomstream.config import Settings
from streams.agents.scoring import register_scoring
from streams.processors import Processors, register_processors
from streams.topics import Topics, declare_topics
from streams.worker import Worker


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=";".join(f"kafka://{b}" for b in settings.bootstrap_servers.split(",")),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=8 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
        producer_acks=-1,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        stream_buffer_maxsize=8192,
        autodiscover=False,
        Worker=Worker,
    )
    topics = declare_topics(app, settings)
    processors = register_processors(app, settings)
    if settings.score_reviews:
        register_scoring(app, topics, settings)
    _register_lag_gauge(app, topics)
    _register_pages(app, processors)
    if settings.stepped:
        _register_step_page(app, processors)
    return app


def _register_lag_gauge(app: faust.App, topics: Topics) -> None:
    @app.timer(interval=2.0)
    async def export_consumer_lag() -> None:
        """Lag = end of partition minus committed offset, for every assigned partition."""
        consumer = app.consumer
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            committed = (
                getattr(consumer, "_committed_offset", {}).get(tp) or 0
            )  # Faust: no public API
            name = topics.logical_name.get(tp.topic, tp.topic)
            metrics.CONSUMER_LAG.labels(name, str(tp.partition)).set(max(highwater - committed, 0))


def _register_pages(app: faust.App, processors: Processors) -> None:
    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/ready")
    class Ready(View):
        """200 once the processors have recovered their partitions and Faust is not rebalancing."""

        async def get(self, request: Request) -> Response:
            ready = (
                all(p.ready for p in processors.all)
                and bool(app.consumer.assignment())
                and not app.rebalancing
            )
            return self.json({"ready": ready}, status=200 if ready else 503)


def _register_step_page(app: faust.App, processors: Processors) -> None:
    @app.page("/step")
    class Step(View):
        """Replay mode: POST runs one step of both processors, returns the records taken."""

        async def post(self, request: Request) -> Response:
            return self.json(await processors.step())
