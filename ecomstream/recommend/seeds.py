"""The recommendation evaluation over several simulator seeds, in one command.

One seed's report says what happened on one simulated shop; whether (c) beats (b), or
only got lucky, shows across seeds that the rules were not tuned on (tuning used
seeds 1–4; 101–106 are held out). Each seed is simulated to a JSONL, replayed and
scored by :func:`~ecomstream.recommend.evaluate.run_evaluation` (its full report goes
to ``OUT/seed-S/``), and ``OUT/summary.md`` / ``summary.json`` / ``summary.png`` put
the seeds side by side.

    ecomstream evaluate recommendations-seeds reports/recs-seeds --seeds 101-106

>>> parse_seeds("101-103,7")
(101, 102, 103, 7)
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click
import orjson

from ecomstream.recommend.evaluate import LABELS, VARIANTS, run_evaluation
from ecomstream.recommend.metrics import PairedComparison
from ecomstream.simulator.config import SimConfig, parse_duration
from ecomstream.simulator.runner import run_to_jsonl

DEFAULT_USERS: Final = SimConfig().users


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"101-106"``, ``"1,2,5"`` or a mix of both, in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return tuple(seeds)


@dataclass(frozen=True, slots=True)
class SeedRun:
    seed: int
    duration_s: float
    incidents: int
    users: int = DEFAULT_USERS


def evaluate_seed(run: SeedRun, out_dir: Path) -> dict[str, Any]:
    """Simulate one seed and evaluate it; returns its report (also written to ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / "run.jsonl"
    truth = out_dir / "run.truth.json"
    config = SimConfig(
        seed=run.seed, users=run.users, duration_s=run.duration_s, random_incidents=run.incidents
    )
    run_to_jsonl(config, jsonl, truth)
    report = run_evaluation(jsonl, truth, out_dir / "report")
    jsonl.unlink()  # large and reproducible from the seed; the truth file stays
    return report


def summarise(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per seed: the headline figures; overall: on how many seeds each target held."""
    rows = []
    for seed, report in sorted(reports.items()):
        fresh = report["fresh"]
        exposure = report.get("exposure", {}).get("fresh", {})
        rows.append(
            {
                "seed": seed,
                "purchases": report["purchases_scored"],
                "hr": {v: fresh[v]["hr"] for v in VARIANTS},
                "ndcg": {v: fresh[v]["ndcg"] for v in VARIANTS},
                "paired": report["paired"]["fresh"],
                "paired_session": report["paired"]["session"],
                "exposure": {v: exposure.get(v, {}).get("incident_exposure") for v in VARIANTS},
                "checks": report["checks"],
            }
        )
    held = {
        name: sum(1 for row in rows if row["checks"][name])
        for name in ("c_hr_at_least_2x_a", "c_beats_b", "c_beats_b_hr", "c_beats_b_ndcg")
    }
    return {"k": next(iter(reports.values()))["k"] if reports else 10, "rows": rows, "held": held}


def render_summary(summary: dict[str, Any], command: str) -> str:
    k, rows, held = summary["k"], summary["rows"], summary["held"]
    n = len(rows)
    lines = [
        "# Recommendation evaluation across seeds",
        "",
        f"Command: `{command}`. Lists just before each order (*fresh*); every seed's full "
        "report is in `seed-S/report/`.",
        "",
        f"| seed | lines | HR@{k} (a) | HR@{k} (b) | HR@{k} (c) | NDCG@{k} (b) | NDCG@{k} (c) "
        "| (c) vs (b): higher / lower | sign p | ΔNDCG (95% CI) | incident exposure (b) → (c) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        p = PairedComparison(**row["paired"])
        hr, ndcg, exp = row["hr"], row["ndcg"], row["exposure"]
        exposure = (
            f"{exp['no_sentiment']:.1%} → {exp['sentiment']:.1%}"
            if exp["sentiment"] is not None
            else "n/a"
        )
        lines.append(
            f"| {row['seed']} | {row['purchases']} | {hr['popularity']:.4f} | "
            f"{hr['no_sentiment']:.4f} | {hr['sentiment']:.4f} | {ndcg['no_sentiment']:.4f} | "
            f"{ndcg['sentiment']:.4f} | {p.higher} / {p.lower} | {p.sign_p:.2g} | "
            f"{p.ndcg_diff:+.4f} ({p.ndcg_diff_low:+.4f} … {p.ndcg_diff_high:+.4f}) | "
            f"{exposure} |"
        )
    lines += [
        "",
        "Targets, seeds where each held:",
        "",
        f"- (c) HR@{k} ≥ 2 × (a): {held['c_hr_at_least_2x_a']} of {n}",
        f"- (c) beats (b) on the same purchase lines (NDCG@{k} higher beyond its 95% "
        f"interval, no HR@{k} hit given up): {held['c_beats_b']} of {n}",
        f"- (c) HR@{k} strictly above (b)'s: {held['c_beats_b_hr']} of {n}; "
        f"NDCG@{k} above: {held['c_beats_b_ndcg']} of {n}",
        "",
        "![per seed](summary.png)",
        "",
    ]
    return "\n".join(lines)


def plot_summary(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, rows = summary["k"], summary["rows"]
    seeds = [str(row["seed"]) for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.26
    colours = ("#9e9e9e", "#5c8fd6", "#2e7d32")
    for i, v in enumerate(VARIANTS):
        xs = [n + (i - 1) * width for n in range(len(rows))]
        left.bar(xs, [row["hr"][v] for row in rows], width, label=LABELS[v], color=colours[i])
    left.set_xticks(range(len(rows)), seeds)
    left.set_xlabel("seed")
    left.set_title(f"HR@{k}, lists just before the order", fontsize=10)
    left.set_ylim(0, 1.15)
    left.legend(fontsize=7, loc="upper left")
    pairs = [PairedComparison(**row["paired"]) for row in rows]
    means = [p.ndcg_diff for p in pairs]
    errors = [
        [p.ndcg_diff - p.ndcg_diff_low for p in pairs],
        [p.ndcg_diff_high - p.ndcg_diff for p in pairs],
    ]
    right.errorbar(range(len(rows)), means, yerr=errors, fmt="o", color=colours[2], capsize=4)
    right.axhline(0.0, color="#555555", linewidth=0.8)
    right.set_xticks(range(len(rows)), seeds)
    right.set_xlabel("seed")
    right.set_title(f"NDCG@{k} (c) − (b), same purchases, 95% bootstrap CI", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.command(name="evaluate-recommendations-seeds")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seeds", default="101-106", show_default=True, help="e.g. 101-106 or 1,2,5.")
@click.option("--duration", default="2h", show_default=True, help="Simulated time per seed.")
@click.option("--incidents", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--users", type=click.IntRange(min=1), default=DEFAULT_USERS, show_default=True)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=min(os.cpu_count() or 1, 4),
    show_default="CPUs, at most 4",
)
def evaluate_recommendations_seeds(
    out_dir: Path, seeds: str, duration: str, incidents: int, users: int, jobs: int
) -> None:
    """Simulate and evaluate every seed; write OUT_DIR/summary.md with the seeds side by side."""
    try:
        chosen = parse_seeds(seeds)
        duration_s = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    started = time.perf_counter()
    reports: dict[int, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(chosen))) as pool:
        futures = {
            pool.submit(
                evaluate_seed, SeedRun(seed, duration_s, incidents, users), out_dir / f"seed-{seed}"
            ): seed
            for seed in chosen
        }
        for future in as_completed(futures):
            seed = futures[future]
            report = reports[seed] = future.result()
            pairing = PairedComparison(**report["paired"]["fresh"])
            click.echo(
                f"[{len(reports)}/{len(chosen)}] seed {seed}: "
                f"HR@{report['k']} (a/b/c) "
                + "/".join(f"{report['fresh'][v]['hr']:.4f}" for v in VARIANTS)
                + f"; (c) vs (b): {pairing.summary(report['k'])} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    summary = summarise(reports)
    command = (
        f"ecomstream evaluate recommendations-seeds {out_dir} --seeds {seeds} "
        f"--duration {duration} --incidents {incidents}"
        + (f" --users {users}" if users != DEFAULT_USERS else "")
    )
    (out_dir / "summary.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"
    )
    (out_dir / "summary.md").write_text(render_summary(summary, command), encoding="utf-8")
    plot_summary(summary, out_dir / "summary.png")
    held, n = summary["held"], len(chosen)
    click.echo(
        f"(c) ≥ 2×(a) on HR: {held['c_hr_at_least_2x_a']}/{n} seeds; (c) beats (b) paired: "
        f"{held['c_beats_b']}/{n}; HR strictly above: {held['c_beats_b_hr']}/{n}"
    )
    click.echo(f"summary → {out_dir / 'summary.md'}")
