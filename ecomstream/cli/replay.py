"""``ecomstream replay``: re-run the pipeline over recorded input in an isolated namespace."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import click

from ecomstream.inference.repository import installed_versions
from ecomstream.replay.driver import ReplayConfig, ReplayError, run_replay
from ecomstream.replay.source import (
    OffsetRange,
    RecordedEvent,
    read_jsonl_source,
    read_kafka_source,
)
from ecomstream.simulator.config import parse_duration, parse_start
from ecomstream.topics import partitions_of

TRITON_REPO = Path("serving/triton_repo")
MODEL_NAME = "review_sentiment"


def default_model_dir() -> Path | None:
    """The newest model version installed in the Triton repository, if any."""
    versions = installed_versions(TRITON_REPO, MODEL_NAME)
    return TRITON_REPO / MODEL_NAME / str(max(versions)) if versions else None


# Options shared with ``ecomstream evaluate replay``.
bootstrap_option = click.option(
    "--bootstrap-servers",
    envvar="ECOMSTREAM_BOOTSTRAP_SERVERS",
    default="127.0.0.1:9092",
    show_default=True,
)
model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Exported model artifact (default: newest installed).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SETTING=VALUE",
    help="Worker setting for the replay, e.g. alert_z_fire=2.5 (repeatable).",
)
step_option = click.option(
    "--step", default="1m", show_default=True, help="Event time per replay step."
)


@click.command()
@click.option("--namespace", required=True, help="Isolated namespace: topics replay.<NS>.*")
@click.option(
    "--jsonl",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Source: a simulator JSONL recording.",
)
@click.option(
    "--source-prefix",
    default=None,
    help="Source: the input topics <PREFIX>clicks|purchases|reviews ('' = live).",
)
@click.option("--since", default=None, help="Topic source: from this time (ISO or epoch ms).")
@click.option("--until", default=None, help="Topic source: up to this time (exclusive).")
@click.option(
    "--offsets",
    multiple=True,
    metavar="TOPIC/P=START:END",
    help="Topic source: an offset range instead of times (repeatable).",
)
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Simulator ground truth (default: <jsonl>.truth.json).",
)
@bootstrap_option
@model_option
@click.option("--no-model", is_flag=True, help="Do not score reviews.")
@step_option
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="0: as fast as possible; 1: recorded speed; 60: a minute per second.",
)
@set_option
@click.option(
    "--partitions",
    type=int,
    default=None,
    help="Partitions of the namespace topics (default: the source's, or 4).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default: runs/replay/<namespace>).",
)
@click.option("--reset", is_flag=True, help="Delete the namespace's topics and run dir first.")
def replay(
    namespace: str,
    jsonl: Path | None,
    source_prefix: str | None,
    since: str | None,
    until: str | None,
    offsets: tuple[str, ...],
    truth: Path | None,
    bootstrap_servers: str,
    model_dir: Path | None,
    no_model: bool,
    step: str,
    speed: float,
    overrides: tuple[str, ...],
    partitions: int | None,
    out: Path | None,
    reset: bool,
) -> None:
    """Replay recorded input through the real worker, deterministically, and collect outputs.

    Kafka must be running (``ecomstream kafka up``). The outputs, a manifest and
    the ground truth land in the run directory, for ``ecomstream evaluate replay``.
    """
    if (jsonl is None) == (source_prefix is None):
        raise click.UsageError("give exactly one source: --jsonl FILE or --source-prefix PREFIX")
    if not no_model:
        model_dir = model_dir or default_model_dir()
        if model_dir is None:
            raise click.UsageError("no model installed: export one, give --model, or --no-model")
    settings = dict(parse_setting(text) for text in overrides)
    source: dict[str, Any]
    events: list[RecordedEvent]
    if jsonl is not None:
        events = read_jsonl_source(jsonl)
        truth = truth or jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".truth.json")
        source = {"jsonl": str(jsonl)}
    else:
        assert source_prefix is not None
        try:
            ranges = [OffsetRange.parse(text) for text in offsets]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--offsets") from exc
        events = asyncio.run(
            read_kafka_source(
                bootstrap_servers,
                prefix=source_prefix,
                since_ms=parse_start(since) if since else None,
                until_ms=parse_start(until) if until else None,
                offsets=ranges,
            )
        )
        partitions = partitions or max(
            [len(asyncio.run(partitions_of(bootstrap_servers, source_prefix + "clicks"))), 1]
        )
        source = {"topics_prefix": source_prefix, "since": since, "until": until,
                  "offsets": list(offsets)}  # fmt: skip
    run_dir = out or Path("runs/replay") / namespace
    config = ReplayConfig(
        namespace=namespace,
        bootstrap_servers=bootstrap_servers,
        run_dir=run_dir,
        step_ms=int(parse_duration(step) * 1000),
        speed=speed or None,
        model_dir=None if no_model else model_dir,
        partitions=partitions or 4,
        settings=settings,
        reset=reset,
    )
    run_and_report(config, events, source, truth)


def run_and_report(
    config: ReplayConfig,
    events: list[RecordedEvent],
    source: dict[str, Any],
    truth: Path | None,
) -> dict[str, Any]:
    """Run one replay, keep the ground truth beside its outputs, print a summary line."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # the progress bar says enough
    click.echo(
        f"replaying {len(events):,} events into namespace {config.namespace!r} ({config.prefix}*)"
    )
    try:
        manifest = run_replay(config, events, source)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    if truth is not None and truth.exists():
        shutil.copyfile(truth, config.run_dir / "truth.json")
    observed = manifest["observed"]
    click.echo(
        f"done in {observed['wall_s']:.0f}s ({observed['events_per_s']:,.0f} events/s, "
        f"{observed['steps']} steps); outputs {manifest['outputs']} → {config.run_dir}"
    )
    return manifest


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r}: expected SETTING=VALUE", param_hint="--set")
    return name.strip().lower(), value.strip()
