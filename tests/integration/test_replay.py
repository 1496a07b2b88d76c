"""Replays on a real broker: a recorded run replayed twice gives identical outputs, live untouched.

The "live" pipeline here is a simulator run recorded into ``live.*`` topics; the
replays read it by time range (no consumer group) and run the real worker in
stepped mode in their own namespaces, with the tiny sentiment model in process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner

from ecomstream.cli import main
from ecomstream.config import Settings
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import wait_for_async
from ecomstream.replay import OffsetRange, compare_outputs, read_kafka_source
from ecomstream.replay.driver import MANIFEST
from ecomstream.replay.outputs import read_outputs
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.runner import run_to_jsonl, run_to_kafka
from ecomstream.simulator.shop import Shop
from ecomstream.topics import ensure_contract_topics, topic_sizes

pytestmark = pytest.mark.integration

LIVE = "live."
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
SIM = SimConfig(seed=7, users=1500, items=150, duration_s=40 * 60, start_ms=START_MS)
LATER = SimConfig(seed=8, users=300, items=150, duration_s=10 * 60, start_ms=START_MS)


async def _record_live(bootstrap: str, tmp: Path) -> int:
    """Two runs written one after the other; returns a moment between them (epoch ms)."""
    await ensure_contract_topics(Settings(bootstrap_servers=bootstrap, topic_prefix=LIVE))

    async def record(config: SimConfig) -> None:
        await run_to_kafka(
            config,
            bootstrap_servers=bootstrap,
            topic_name=lambda name: LIVE + name,
            truth_path=tmp / f"live-{config.seed}.truth.json",
        )

    await record(SIM)
    between = int(time.time() * 1000) + 1
    await wait_for_async(lambda: time.time() * 1000 > between, 5)  # the clock moves on
    await record(LATER)
    return between


async def _live_state(bootstrap: str) -> tuple[dict[str, int], list[Any]]:
    """Record counts of every live topic, and every consumer group that exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        live = sorted(t for t in await admin.list_topics() if t.startswith(LIVE))
        groups = sorted(g[0] for g in await admin.list_consumer_groups())
        committed_live = []
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed_live += [(group, tp.topic) for tp in offsets if tp.topic.startswith(LIVE)]
    finally:
        await admin.close()
    return await topic_sizes(bootstrap, live), committed_live


def _replay(bootstrap: str, namespace: str, model: Path, out: Path, until: str) -> None:
    result = CliRunner().invoke(
        main,
        [
            "replay",
            "--namespace", namespace,
            "--source-prefix", LIVE,
            "--since", str(START_MS),
            "--until", until,
            "--bootstrap-servers", bootstrap,
            "--model", str(model),
            "--step", "2m",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_replaying_twice_gives_identical_outputs_and_leaves_live_untouched(
    kafka_broker: KafkaBroker, tiny_sentiment_artifact: Path, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    between = asyncio.run(_record_live(bootstrap, tmp_path))
    before = asyncio.run(_live_state(bootstrap))
    assert sum(before[0].values()) > 0

    # A time range of the live topics (record time): the first run only.
    until = str(between)
    source = asyncio.run(read_kafka_source(bootstrap, prefix=LIVE, until_ms=between))
    first = Counter(topic for topic, _, _ in Shop(SIM).events())
    assert Counter(e.topic for e in source) == first
    reviews = first["reviews"]
    assert reviews > 10
    # An offset range instead (an end past the partition's end stops there).
    ranges = [OffsetRange("clicks", 1, 10, 20), OffsetRange("purchases", 0, 0, 10**9)]
    picked = asyncio.run(read_kafka_source(bootstrap, prefix=LIVE, offsets=ranges))
    clicks = [e for e in picked if e.topic == "clicks"]
    assert len(clicks) == 10 and {e.partition for e in clicks} == {1}
    purchases_p0 = asyncio.run(read_kafka_source(bootstrap, prefix=LIVE, until_ms=None))
    assert sum(e.topic == "purchases" for e in picked) == sum(
        e.topic == "purchases" and e.partition == 0 for e in purchases_p0
    )

    runs = [tmp_path / "a", tmp_path / "b"]
    for namespace, run in zip(("eval-a", "eval-b"), runs, strict=True):
        _replay(bootstrap, namespace, tiny_sentiment_artifact, run, until)

    diffs = compare_outputs(*runs)
    assert all(d.equal for d in diffs), [d for d in diffs if not d.equal]
    counts = {d.topic: d.same for d in diffs}
    assert counts["review-scores"] == reviews  # every replayed review scored once
    assert counts["recommendation-updates"] > 0
    scores = list(read_outputs(runs[0], "review-scores"))
    assert len({r["value"]["score_id"] for r in scores}) == reviews
    manifest = (runs[0] / MANIFEST).read_text()
    assert '"events_per_s"' in manifest

    # Nothing was written to a live topic, no group committed offsets on one.
    assert asyncio.run(_live_state(bootstrap)) == before
    assert before[1] == []


def test_evaluation_report_compares_two_configurations_over_one_recording(
    kafka_broker: KafkaBroker, tiny_sentiment_artifact: Path, tmp_path: Path
) -> None:
    """``evaluate replay --jsonl`` replays a recording twice (two alert settings) and
    writes one report whose figures match the per-capability evaluations."""
    recording = tmp_path / "sim.jsonl"
    config = SimConfig(seed=11, users=1500, items=150, duration_s=40 * 60, random_incidents=1)
    run_to_jsonl(config, recording, progress=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        [
            "evaluate", "replay",
            "--jsonl", str(recording),
            "--model", str(tiny_sentiment_artifact),
            "--compare-set", "alert_z_fire=1.5",
            "--namespace", "cmp",
            "--step", "30s",  # lists are emitted per step: close to the offline cut
            "--bootstrap-servers", kafka_broker.bootstrap_servers,
            "--runs-dir", str(tmp_path / "runs"),
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    document = orjson.loads((out / "replay-report.json").read_bytes())
    a, b = document["runs"]
    assert (a["namespace"], b["namespace"]) == ("cmp-a", "cmp-b")
    assert b["settings"] == {"alert_z_fire": "1.5"}
    for run in (a, b):
        assert run["sentiment"]["reviews"] == run["inputs"]["reviews"]
        # The stream's alerts are exactly what the alerts capability computes offline.
        assert run["alerts"]["same_alerts_as_offline"] is True
        recs = run["recommendations"]
        assert recs["purchases"] > 0
        assert abs(recs["pipeline_shown"]["hr"] - recs["offline_shown"]["sentiment"]["hr"]) <= 0.05
    # Same model: no label differs; the alert settings may only change alerts.
    assert document["comparison"]["label_flips"]["flipped"] == 0
    differing = {d["topic"] for d in document["comparison"]["output_differences"] if d["only_a"]}
    assert differing <= {"sentiment-alerts", "recommendation-updates"}
    assert (out / "replay-report.png").stat().st_size > 0
    assert "| alerts: precision |" in (out / "replay-report.md").read_text()
