"""Reviews → real Triton → ``review-scores``: one score each, the in-process label, no loss."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ecomstream import metrics
from ecomstream.data.corpus import load_review_corpus
from ecomstream.inference.onnx import OnnxScorer
from ecomstream.inference.repository import install_model
from ecomstream.launchers.process import wait_for_async
from ecomstream.launchers.triton import TritonServer
from ecomstream.testing.kafka import consume_all, consume_until, produce_raw
from ecomstream.testing.worker import WorkerFactory
from tests.unit.test_events import REVIEW

pytestmark = pytest.mark.integration


def reviews(first: int, n: int, *, negative: bool) -> list[tuple[bytes, bytes]]:
    """``n`` reviews with ids from ``first``, texts from the real corpus."""
    corpus = load_review_corpus()
    texts = corpus.negative[first : first + n] if negative else corpus.positive[first : first + n]
    out = []
    for i, text in enumerate(texts, start=first):
        value = {**REVIEW, "event_id": f"e{i}", "review_id": f"r{i}", "user_id": f"u{i % 37}",
                 "item_id": f"i{i % 11}", "text": text, "ts": REVIEW["ts"] + i}  # fmt: skip
        out.append((f"u{i % 37}".encode(), orjson.dumps(value)))
    return out


async def check_scores(
    records: list[dict[str, Any]], sent: list[tuple[bytes, bytes]], artifact: Path
) -> None:
    by_review = {r["review_id"]: r for r in records}
    assert len(by_review) == len(records) == len(sent), "exactly one score per review"
    texts = [orjson.loads(v)["text"] for _, v in sent]
    expected = await OnnxScorer(artifact).score(texts)
    for (_, value), want in zip(sent, expected, strict=True):
        review = orjson.loads(value)
        got = by_review[review["review_id"]]
        assert got["label"] == want.label, review["review_id"]
        assert got["probabilities"]["positive"] == pytest.approx(
            want.probabilities["positive"], abs=1e-4
        )
        assert got["item_id"] == review["item_id"]
        assert (got["model"], got["version"]) == (want.model_name, want.model_version)


def scoring_settings(server: TritonServer) -> dict[str, str]:
    return {
        "triton_grpc_url": server.grpc_url,
        "circuit_reset_s": "0.5",
        "circuit_max_reset_s": "1.0",
        "request_timeout_s": "5",
    }


async def test_every_review_gets_exactly_one_score_with_the_in_process_label(
    kafka_broker: Any,
    triton_server: TritonServer,
    tiny_sentiment_artifact: Path,
    worker_factory: WorkerFactory,
    topic_prefix: str,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    worker_factory(**scoring_settings(triton_server))
    sent = reviews(0, 150, negative=False) + reviews(150, 150, negative=True)
    await produce_raw(bootstrap, topic_prefix + "reviews", sent)
    topic = topic_prefix + "review-scores"
    await consume_until(bootstrap, topic, len(sent), timeout=120)
    records = [orjson.loads(r.value) for r in await consume_all(bootstrap, topic)]
    await check_scores(records, sent, tiny_sentiment_artifact)


async def test_triton_outage_stops_scoring_and_the_backlog_drains_after_restart(
    kafka_broker: Any,
    triton_server_factory: Callable[..., TritonServer],
    tiny_sentiment_artifact: Path,
    worker_factory: WorkerFactory,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    install_model(tiny_sentiment_artifact, tmp_path / "repo", version=1)
    server = triton_server_factory(tmp_path / "repo")
    server.start(timeout=120)
    worker = worker_factory(**scoring_settings(server))
    topic = topic_prefix + "review-scores"
    before = reviews(0, 40, negative=True)
    await produce_raw(bootstrap, topic_prefix + "reviews", before)
    await consume_until(bootstrap, topic, len(before), timeout=60)

    assert server.kill()
    during = reviews(40, 120, negative=False)
    await produce_raw(bootstrap, topic_prefix + "reviews", during)

    async def circuit_open() -> bool:
        text = worker.metrics_text()
        return metrics.total(text, "ecomstream_scorer_circuit_open") == 1

    await wait_for_async(circuit_open, timeout=60, interval=0.2, description="circuit open")
    assert len(await consume_all(bootstrap, topic)) == len(before), "no score without a server"

    server.start(timeout=120)
    await consume_until(bootstrap, topic, len(before) + len(during), timeout=120)
    records = [orjson.loads(r.value) for r in await consume_all(bootstrap, topic)]
    await check_scores(records, before + during, tiny_sentiment_artifact)
    assert worker.is_ready(), "the worker kept running through the outage"
