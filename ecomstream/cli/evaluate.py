"""``ecomstream evaluate``: offline evaluations over a simulator run and its ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from ecomstream.cli.replay import bootstrap_option, model_option, set_option, step_option
from ecomstream.recommend.evaluate import evaluate_recommendations
from ecomstream.recommend.seeds import evaluate_recommendations_seeds


@click.group()
def evaluate() -> None:
    """Evaluate alerts and recommendations against the simulator's ground truth."""


@evaluate.command(
    name="alerts",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def alerts(args: tuple[str, ...]) -> None:
    """Precision, recall, delay and false alarms of the sentiment detector (see --help)."""
    from ecomstream.alerts.evaluate import main

    main(list(args))


evaluate.add_command(evaluate_recommendations, name="recommendations")
evaluate.add_command(evaluate_recommendations_seeds, name="recommendations-seeds")


@evaluate.command(name="replay")
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A replay run directory (twice: compare two runs).",
)
@click.option(
    "--jsonl",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay this simulator recording first (needs Kafka up).",
)
@model_option
@set_option
@click.option(
    "--compare-model",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also replay with this model and compare.",
)
@click.option(
    "--compare-set",
    multiple=True,
    metavar="SETTING=VALUE",
    help="Also replay with these settings and compare (repeatable).",
)
@click.option(
    "--alert-preset",
    type=click.Choice(["quick"]),
    default=None,
    help="Detector settings tuned for the quick model's labels (QUICK_MODEL_PRESET).",
)
@click.option(
    "--compare-alert-preset",
    type=click.Choice(["quick"]),
    default=None,
    help="Also replay with that preset and compare.",
)
@click.option(
    "--namespace",
    default="eval",
    show_default=True,
    help="Namespace of the replays (-a, -b appended when comparing); reset first.",
)
@step_option
@bootstrap_option
@click.option(
    "--train-if-missing",
    is_flag=True,
    help="With --jsonl and no model installed: train and install the quick model first.",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/replay"),
    show_default=True,
    help="Where --jsonl replays keep their run directories.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/replay"),
    show_default=True,
)
def replay_report(
    runs: tuple[Path, ...],
    jsonl: Path | None,
    model_dir: Path | None,
    overrides: tuple[str, ...],
    compare_model: Path | None,
    compare_set: tuple[str, ...],
    alert_preset: str | None,
    compare_alert_preset: str | None,
    namespace: str,
    step: str,
    bootstrap_servers: str,
    train_if_missing: bool,
    runs_dir: Path,
    out: Path,
) -> None:
    """One report over replay outputs and the simulator's truth; two runs side by side.

    Either --run DIR [--run DIR], or --jsonl FILE to replay it first (with
    --compare-model / --compare-set: a second replay of the same input).
    """
    from ecomstream.cli.replay import default_model_dir, parse_setting, run_and_report
    from ecomstream.replay.driver import ReplayConfig
    from ecomstream.replay.report import write_report
    from ecomstream.replay.source import read_jsonl_source
    from ecomstream.simulator.config import parse_duration

    if bool(runs) == bool(jsonl):
        raise click.UsageError("give --run DIR (once or twice) or --jsonl FILE")
    if jsonl is not None:
        if model_dir is None and train_if_missing:
            from ecomstream.demo import DemoPlan, ensure_model

            ensure_model(DemoPlan(), click.echo)
        model_dir = model_dir or default_model_dir()
        if model_dir is None:
            raise click.UsageError("no model installed: export one or give --model")
        events = read_jsonl_source(jsonl)
        truth = jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".truth.json")
        base = {**_preset(alert_preset), **dict(parse_setting(text) for text in overrides)}
        variants = [(model_dir, base)]
        if compare_model or compare_set or compare_alert_preset:
            other = {
                **base,
                **_preset(compare_alert_preset),
                **dict(parse_setting(text) for text in compare_set),
            }
            variants.append((compare_model or model_dir, other))
        names = [namespace] if len(variants) == 1 else [f"{namespace}-a", f"{namespace}-b"]
        runs = ()
        for name, (model, settings) in zip(names, variants, strict=True):
            config = ReplayConfig(
                namespace=name,
                bootstrap_servers=bootstrap_servers,
                run_dir=runs_dir / name,
                step_ms=int(parse_duration(step) * 1000),
                model_dir=model,
                settings=settings,
                reset=True,
            )
            run_and_report(config, events, {"jsonl": str(jsonl)}, truth)
            runs += (config.run_dir,)
    if len(runs) > 2:
        raise click.UsageError("at most two runs")
    click.echo("evaluating (offline checks replay the same input; a minute or two)...")
    document = write_report(list(runs), out)
    for report in document["runs"]:
        s, a = report["sentiment"], report.get("alerts", {}).get("pipeline", {})
        r = report.get("recommendations", {}).get("pipeline_shown", {})
        click.echo(
            f"{report['namespace']}: sentiment acc {s['accuracy']}, alerts P={a.get('precision')} "
            f"R={a.get('recall')}, HR@10 {r.get('hr')}, {report['observed']['events_per_s']} ev/s"
        )
    click.echo(f"report → {out / 'replay-report.md'}")


def _preset(name: str | None) -> dict[str, str]:
    """Worker settings (``alert_<field>``) of a named detector preset."""
    if name is None:
        return {}
    from ecomstream.alerts.config import QUICK_MODEL_PRESET

    return {f"alert_{field}": value for field, value in QUICK_MODEL_PRESET.items()}
