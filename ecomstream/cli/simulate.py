"""``ecomstream simulate``: run the synthetic shop into a JSONL file or into Kafka.

Why one command for both: a file run and a Kafka run of the same seed carry the
same events, so a recording can stand in for the broker in tests and demos.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ecomstream.config import Settings
from ecomstream.events import INPUT_TOPICS
from ecomstream.simulator.config import (
    DEFAULT_DURATION_S,
    IncidentSpec,
    SimConfig,
    SimConfigError,
    parse_duration,
    parse_start,
)
from ecomstream.simulator.runner import RunSummary, default_truth_path, run_to_jsonl, run_to_kafka


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _start(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_start(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO time or epoch ms: {exc}") from None


def _incidents(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[IncidentSpec, ...]:
    try:
        return tuple(IncidentSpec.parse(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


async def _produce(
    config: SimConfig,
    settings: Settings,
    bootstrap_servers: str,
    *,
    rate: float,
    truth_path: Path,
    progress: bool,
) -> RunSummary:
    """Create the input topics if missing (as the workers would), then produce the run."""
    from ecomstream.topics import ensure_topics

    await ensure_topics(
        bootstrap_servers,
        [settings.topic(name) for name in INPUT_TOPICS],
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    return await run_to_kafka(
        config,
        bootstrap_servers=bootstrap_servers,
        topic_name=settings.topic,
        rate=rate,
        truth_path=truth_path,
        progress=progress,
    )


_D = SimConfig()  # option defaults come from the library's, so the two never drift


@click.command(name="simulate")
@click.option("--seed", type=int, default=_D.seed, show_default=True, help="Same seed → same run.")
@click.option("--users", type=click.IntRange(min=1), default=_D.users, show_default=True)
@click.option("--items", type=click.IntRange(min=1), default=_D.items, show_default=True)
@click.option("--categories", type=click.IntRange(1, 64), default=_D.categories, show_default=True)
@click.option(
    "--start",
    "start_ms",
    default="2026-01-01T00:00Z",
    show_default=True,
    callback=_start,
    help="Event time of the first moment (ISO 8601, UTC if no zone; or epoch ms).",
)
@click.option(
    "--duration",
    "duration_s",
    callback=_duration,
    help="Simulated time, e.g. 90m, 2h [default: 2h unless --events is given].",
)
@click.option("--events", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option(
    "--sessions-per-user-hour",
    type=click.FloatRange(min=0, min_open=True),
    default=_D.sessions_per_user_hour,
    show_default=True,
)
@click.option(
    "--review-rate",
    type=click.FloatRange(0, 1),
    default=_D.review_rate,
    show_default=True,
    help="Share of purchased items that get a review.",
)
@click.option(
    "--review-influence",
    type=click.FloatRange(0, 1),
    default=_D.review_influence,
    show_default=True,
    help="How much recent reviews sway shoppers (0: an incident does not hurt sales).",
)
@click.option(
    "--deals",
    type=click.IntRange(min=0),
    default=_D.deals,
    show_default=True,
    help="Featured items (incident items first) that sell far better than the rest.",
)
@click.option(
    "--incident",
    "incidents",
    multiple=True,
    callback=_incidents,
    metavar="ITEM_ID@OFFSET",
    help="Collapse ITEM_ID's quality OFFSET after the start (e.g. i0042@45m). Repeatable.",
)
@click.option(
    "--incidents",
    "random_incidents",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Incidents on random popular items, mid-run.",
)
@click.option(
    "--incident-duration",
    "incident_duration_s",
    callback=_duration,
    help="Quality recovers after this long [default: never].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSONL here instead of producing to Kafka.",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ground-truth JSON [default: next to --out as NAME.truth.json, else var/sim/truth.json].",
)
@click.option("--bootstrap-servers", help="Kafka brokers [default: ECOMSTREAM_BOOTSTRAP_SERVERS].")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Kafka only: events per second (token bucket); 0 = as fast as possible.",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def simulate(
    seed: int,
    users: int,
    items: int,
    categories: int,
    start_ms: int,
    duration_s: float | None,
    events: int | None,
    sessions_per_user_hour: float,
    review_rate: float,
    review_influence: float,
    deals: int,
    incidents: tuple[IncidentSpec, ...],
    random_incidents: int,
    incident_duration_s: float | None,
    out: Path | None,
    truth_path: Path | None,
    bootstrap_servers: str | None,
    rate: float,
    progress: bool,
) -> None:
    """Generate a deterministic shop's clicks, purchases and reviews, with ground truth."""
    if duration_s is None and events is None:
        duration_s = DEFAULT_DURATION_S
    try:
        config = SimConfig(
            seed=seed,
            users=users,
            items=items,
            categories=categories,
            start_ms=start_ms,
            duration_s=duration_s,
            events=events,
            sessions_per_user_hour=sessions_per_user_hour,
            review_rate=review_rate,
            review_influence=review_influence,
            deals=deals,
            incidents=incidents,
            random_incidents=random_incidents,
            incident_duration_s=incident_duration_s,
        )
    except SimConfigError as exc:
        raise click.UsageError(str(exc)) from None
    truth_path = truth_path or default_truth_path(out)
    summary: RunSummary
    try:
        if out is not None:
            summary = run_to_jsonl(config, out, truth_path, progress=progress)
        else:
            settings = Settings()
            summary = asyncio.run(
                _produce(
                    config,
                    settings,
                    bootstrap_servers or settings.bootstrap_servers,
                    rate=rate,
                    truth_path=truth_path,
                    progress=progress,
                )
            )
    except SimConfigError as exc:  # e.g. an incident item that is not in the catalog
        raise click.UsageError(str(exc)) from None
    click.echo(summary.line())
