"""Small simulated runs shared by the simulator tests (each generated once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ecomstream.data.corpus import ReviewCorpus, load_review_corpus
from ecomstream.simulator import IncidentSpec, Shop, SimConfig, SimEvent


@dataclass(frozen=True)
class Run:
    config: SimConfig
    events: list[SimEvent]
    truth: dict[str, Any]


def simulate(config: SimConfig, corpus: ReviewCorpus) -> Run:
    shop = Shop(config, corpus)
    events = list(shop.events())
    return Run(config, events, shop.truth())


@pytest.fixture(scope="session")
def corpus() -> ReviewCorpus:
    return load_review_corpus()


SMALL = SimConfig(seed=7, users=800, items=120, categories=8, duration_s=2 * 3600.0)


@pytest.fixture(scope="session")
def small_run(corpus: ReviewCorpus) -> Run:
    return simulate(SMALL, corpus)


# Three hours; an explicit incident at 90 min and a random one, both recovering after 50 min.
INCIDENTS = SimConfig(
    seed=11,
    users=4_000,
    items=300,
    categories=8,
    duration_s=3 * 3600.0,
    incidents=(IncidentSpec("i0005", 5400.0),),
    random_incidents=1,
    incident_duration_s=50 * 60.0,
)


@pytest.fixture(scope="session")
def incident_run(corpus: ReviewCorpus) -> Run:
    return simulate(INCIDENTS, corpus)
