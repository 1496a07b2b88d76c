"""Same seed → byte-identical JSONL and truth; another seed → another run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ecomstream.data.corpus import ReviewCorpus
from ecomstream.simulator import SimConfig, generate, run_to_jsonl

CONFIG = SimConfig(seed=3, users=300, items=80, categories=8, duration_s=3600.0, random_incidents=1)


def test_same_seed_gives_byte_identical_output(tmp_path: Path, corpus: ReviewCorpus) -> None:
    a = run_to_jsonl(CONFIG, tmp_path / "a.jsonl", corpus=corpus)
    b = run_to_jsonl(CONFIG, tmp_path / "b.jsonl", corpus=corpus)
    assert a.events > 1_000
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert a.truth_path == tmp_path / "a.truth.json"
    assert a.truth_path.read_bytes() == b.truth_path.read_bytes()


def test_another_seed_gives_another_run(tmp_path: Path, corpus: ReviewCorpus) -> None:
    run_to_jsonl(CONFIG, tmp_path / "a.jsonl", corpus=corpus)
    other = dataclasses.replace(CONFIG, seed=4)
    run_to_jsonl(other, tmp_path / "b.jsonl", corpus=corpus)
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.truth.json").read_bytes() != (tmp_path / "b.truth.json").read_bytes()


def test_event_limit_stops_exactly(corpus: ReviewCorpus) -> None:
    config = dataclasses.replace(CONFIG, duration_s=None, events=2_500)
    events = list(generate(config, corpus))
    assert len(events) == 2_500
    assert events == list(generate(config, corpus))


def test_no_global_random_state_is_used(corpus: ReviewCorpus) -> None:
    import random

    random.seed(1)
    first = [e.event.event_id for e in generate(dataclasses.replace(CONFIG, events=300), corpus)]
    random.seed(2)
    second = [e.event.event_id for e in generate(dataclasses.replace(CONFIG, events=300), corpus)]
    assert first == second
