"""A replay's outputs on disk, and the comparison that says whether two replays agree.

Why a projection: a few fields measure the run, not the data — when a score
was computed and how long it took, when a message was dead-lettered. They are
kept in the files and left out of comparisons; everything else, ids
included, must be equal for two replays of the same input and configuration.

>>> project("review-scores", {"score_id": "r1@m:1", "label": "negative", "latency_ms": 3.2})
{'score_id': 'r1@m:1', 'label': 'negative'}
>>> project("dead-letters", {"dead_letter_id": "clicks/0/7", "reason": "bad_json", "ts": 1})
{'dead_letter_id': 'clicks/0/7', 'reason': 'bad_json'}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from ecomstream.topics import OUTPUT_TOPICS, read_records

# Fields that measure the run (wall clock, latency): excluded from comparisons.
MEASUREMENTS: Final[Mapping[str, frozenset[str]]] = {
    "review-scores": frozenset({"scored_at", "latency_ms"}),
    "dead-letters": frozenset({"ts"}),
}


def project(topic: str, value: Any) -> Any:
    """``value`` without the fields that measure the run."""
    drop = MEASUREMENTS.get(topic)
    if not drop or not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if k not in drop}


def output_path(run_dir: Path, topic: str) -> Path:
    return run_dir / "outputs" / f"{topic}.jsonl"


async def collect_outputs(bootstrap_servers: str, prefix: str, run_dir: Path) -> dict[str, int]:
    """Write every committed record of the output topics to ``outputs/<topic>.jsonl``."""
    (run_dir / "outputs").mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for topic in OUTPUT_TOPICS:
        records = await read_records(bootstrap_servers, prefix + topic)
        with output_path(run_dir, topic).open("wb") as out:
            for r in records:
                line = {
                    "partition": r.partition,
                    "key": r.key.decode("utf-8", "replace") if r.key is not None else None,
                    "value": orjson.loads(r.value) if r.value else None,
                }
                out.write(orjson.dumps(line) + b"\n")
        counts[topic] = len(records)
    return counts


def read_outputs(run_dir: Path, topic: str) -> Iterator[dict[str, Any]]:
    """The records of one output topic as collected: ``{"partition", "key", "value"}``."""
    path = output_path(run_dir, topic)
    if not path.exists():
        return
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


@dataclass(frozen=True)
class TopicDiff:
    topic: str
    same: int
    only_a: int
    only_b: int
    example_a: Any = None
    example_b: Any = None

    @property
    def equal(self) -> bool:
        return self.only_a == 0 and self.only_b == 0


def compare_outputs(run_a: Path, run_b: Path) -> list[TopicDiff]:
    """Per output topic, records (partition, key, projected value) in one run and not the other.

    Order within a partition is not compared: the scoring agent's sends from
    concurrent batches may interleave differently; every record must match.
    """
    diffs = []
    for topic in OUTPUT_TOPICS:
        a, b = _multiset(run_a, topic), _multiset(run_b, topic)
        only_a, only_b = a - b, b - a
        diffs.append(
            TopicDiff(
                topic,
                same=sum((a & b).values()),
                only_a=sum(only_a.values()),
                only_b=sum(only_b.values()),
                example_a=orjson.loads(next(iter(only_a))) if only_a else None,
                example_b=orjson.loads(next(iter(only_b))) if only_b else None,
            )
        )
    return diffs


def _multiset(run_dir: Path, topic: str) -> Counter[bytes]:
    return Counter(
        orjson.dumps(
            {"partition": r["partition"], "key": r["key"], "value": project(topic, r["value"])},
            option=orjson.OPT_SORT_KEYS,
        )
        for r in read_outputs(run_dir, topic)
    )
