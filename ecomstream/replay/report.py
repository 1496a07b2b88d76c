"""One evaluation report over a replay's outputs and the simulator's ground truth.

Every figure is computed from what the pipeline emitted in the replay, and set
beside what the per-capability evaluations (``ecomstream evaluate alerts`` /
``recommendations``) compute from the same input and the same review scores:
if the two disagree, the stream and the offline logic have drifted apart.

* sentiment: the served labels against the ratings (≥ 4 positive, ≤ 2 negative;
  3 stars left out), accuracy, macro-F1, confusion;
* alerts: the pipeline's ``sentiment-alerts`` matched to the truth's incidents
  (precision, recall, delay, false alarms), beside ``ecomstream evaluate alerts``'s
  figures over the same scores (one monitor for the whole shop, open episodes
  flushed at the end); and the detector run offline as the stream deploys it (a
  monitor per partition), which must give the very same alerts;
* recommendations: HR@K / NDCG@K of each purchase against the last list the
  pipeline emitted for that user before the order (popularity if none), beside
  the offline evaluation's (a) popularity, (b) no sentiment, (c) sentiment;
* throughput and latency observed during the replay.

>>> q = sentiment_quality([("negative", 1), ("positive", 5), ("negative", 5), ("positive", 3)])
>>> q["rated"], q["accuracy"], q["macro_f1"], q["confusion"]["positive"]
(3, 0.6667, 0.6667, {'negative': 1, 'positive': 1})
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka.partitioner import DefaultPartitioner

from ecomstream.alerts.config import AlertConfig
from ecomstream.alerts.evaluate import replay as replay_detector
from ecomstream.alerts.evaluate import score_run
from ecomstream.alerts.monitor import SentimentMonitor
from ecomstream.alerts.records import AlertRecord, ScoredReview
from ecomstream.recommend.evaluate import (
    EvalConfig,
    Evaluated,
    build_report,
    read_recording,
)
from ecomstream.recommend.evaluate import replay as replay_recommender
from ecomstream.recommend.metrics import hit_rate_at, ndcg_at
from ecomstream.replay.driver import MANIFEST
from ecomstream.replay.outputs import compare_outputs, read_outputs

K: Final = 10
LABELS: Final = ("negative", "positive")


def sentiment_quality(labelled: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """Served label vs rating polarity, over (label, rating) pairs."""
    confusion = {t: dict.fromkeys(LABELS, 0) for t in LABELS}
    reviews = negatives = 0
    for label, rating in labelled:
        reviews += 1
        negatives += label == "negative"
        if rating != 3 and label in LABELS:
            confusion["positive" if rating >= 4 else "negative"][label] += 1
    rated = sum(sum(row.values()) for row in confusion.values())
    f1s = []
    for cls in LABELS:
        tp = confusion[cls][cls]
        predicted = sum(confusion[t][cls] for t in LABELS)
        actual = sum(confusion[cls].values())
        f1s.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    correct = sum(confusion[t][t] for t in LABELS)
    return {
        "reviews": reviews,
        "rated": rated,
        "accuracy": round(correct / rated, 4) if rated else None,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if rated else None,
        "negative_share": round(negatives / reviews, 4) if reviews else None,
        "confusion": confusion,
    }


def _alert_config(settings: Mapping[str, str]) -> AlertConfig:
    """The detector configuration the replay's worker ran with (``alert_*`` settings)."""
    env = {f"ECOMSTREAM_{k.upper()}": v for k, v in settings.items()}
    return AlertConfig.from_env(env)


def as_deployed(
    reviews: Sequence[ScoredReview], config: AlertConfig, partitions: int
) -> list[AlertRecord]:
    """The alerts the stream's topology computes: one monitor per ``review-scores`` partition
    (its own clock and category baselines), reviews in event-time order, no end-of-input flush.
    """
    partitioner = DefaultPartitioner()
    numbers = list(range(partitions))
    monitors: dict[int, SentimentMonitor] = {}
    alerts: list[AlertRecord] = []
    for review in sorted(reviews, key=lambda r: (r.ts, r.review_id)):
        p = partitioner(review.item_id.encode(), numbers, numbers)
        monitor = monitors.setdefault(p, SentimentMonitor(config))
        alerts += monitor.observe(review).alerts
    return alerts


def alerts_section(
    run_dir: Path, truth: Mapping[str, Any], config: AlertConfig, partitions: int
) -> dict[str, Any]:
    scores = [r["value"] for r in read_outputs(run_dir, "review-scores") if r["value"]]
    reviews = sorted((ScoredReview.from_dict(v) for v in scores), key=lambda r: (r.ts, r.review_id))
    offline = replay_detector(reviews, config)
    emitted = [AlertRecord.from_dict(r["value"]) for r in read_outputs(run_dir, "sentiment-alerts")]
    pipeline = dataclasses.replace(offline, alerts=emitted)
    deployed = as_deployed(reviews, config, partitions)
    label = "review-scores of the replay"
    return {
        "pipeline": score_run("pipeline", pipeline, truth, config, label).summary(),
        "offline_detector": score_run("offline", offline, truth, config, label).summary(),
        "same_alerts_as_offline": sorted(a.alert_id for a in emitted)
        == sorted(a.alert_id for a in deployed)
        and sorted(a.ts for a in emitted) == sorted(a.ts for a in deployed),
    }


def _recording(inputs: Path, run_dir: Path) -> Path:
    """Input events + the replay's scores and alerts, as one JSONL the offline tools read."""
    handle = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False)  # noqa: SIM115
    with handle, inputs.open("rb") as source:
        for line in source:
            handle.write(line)
        for topic in ("review-scores", "sentiment-alerts"):
            for r in read_outputs(run_dir, topic):
                handle.write(orjson.dumps({"topic": topic, "key": r["key"], "value": r["value"]}))
                handle.write(b"\n")
    return Path(handle.name)


def emitted_lists(run_dir: Path) -> dict[str, tuple[list[int], list[tuple[str, ...]]]]:
    """Per user, the pipeline's recommendation updates: (times, item lists), by time."""
    per_user: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    for r in read_outputs(run_dir, "recommendation-updates"):
        v = r["value"]
        per_user[v["user_id"]].append((int(v["ts"]), tuple(i["item_id"] for i in v["items"])))
    out = {}
    for user, updates in per_user.items():
        updates.sort(key=lambda u: u[0])
        out[user] = ([t for t, _ in updates], [items for _, items in updates])
    return out


def shown_by_pipeline(
    evaluated: Sequence[Evaluated], lists: Mapping[str, tuple[list[int], list[tuple[str, ...]]]]
) -> list[tuple[str, ...]]:
    """For each purchase, the last list emitted for its user before it (else popularity)."""
    shown = []
    for e in evaluated:
        times, items = lists.get(e.user_id, ([], []))
        i = bisect.bisect_left(times, e.ts)
        shown.append(items[i - 1] if i else e.fresh["popularity"])
    return shown


def recommendations_section(
    inputs: Path, run_dir: Path, truth: Mapping[str, Any]
) -> dict[str, Any]:
    recording = _recording(inputs, run_dir)
    try:
        config = EvalConfig(k=K)
        result = replay_recommender(read_recording(recording), config)
        offline = build_report(result, dict(truth), config, inputs)
    finally:
        recording.unlink()
    targets = [e.item_id for e in result.evaluated]
    shown = shown_by_pipeline(result.evaluated, emitted_lists(run_dir))
    return {
        "k": K,
        "purchases": len(targets),
        "pipeline_shown": {
            "hr": hit_rate_at(shown, targets, K),
            "ndcg": ndcg_at(shown, targets, K),
        },
        "offline_shown": offline["shown"],
        "offline_fresh": offline["fresh"],
        "offline_checks": offline["checks"],
    }


def evaluate_run(run_dir: Path) -> dict[str, Any]:
    """The report of one replay run directory (see the module docstring)."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    labelled = [
        (str(r["value"]["label"]), int(r["value"]["rating"]))
        for r in read_outputs(run_dir, "review-scores")
        if r["value"]
    ]
    report: dict[str, Any] = {
        "run": str(run_dir),
        "namespace": manifest["namespace"],
        "model": manifest["model"],
        "settings": manifest["settings"],
        "inputs": manifest["inputs"],
        "outputs": manifest["outputs"],
        "observed": manifest["observed"],
        "sentiment": sentiment_quality(labelled),
    }
    truth_path = run_dir / "truth.json"
    inputs = manifest["source"].get("jsonl")
    if not truth_path.exists() or not inputs:
        report["notes"] = ["no simulator JSONL and truth: alerts and recommendations not scored"]
        return report
    truth = json.loads(truth_path.read_text())
    config = _alert_config(manifest["settings"])
    partitions = int(manifest.get("partitions", 4))
    report["alerts"] = alerts_section(run_dir, truth, config, partitions)
    report["recommendations"] = recommendations_section(Path(inputs), run_dir, truth)
    return report


def label_flips(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Reviews whose label differs between two runs (two models over the same reviews)."""

    def labels(run: Path) -> dict[str, str]:
        return {
            r["value"]["review_id"]: r["value"]["label"]
            for r in read_outputs(run, "review-scores")
            if r["value"]
        }

    a, b = labels(run_a), labels(run_b)
    common = a.keys() & b.keys()
    flipped = sorted(rid for rid in common if a[rid] != b[rid])
    return {"common_reviews": len(common), "flipped": len(flipped), "examples": flipped[:5]}


def compare_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    reports = [evaluate_run(run_a), evaluate_run(run_b)]
    diffs = compare_outputs(run_a, run_b)
    return {
        "runs": reports,
        "label_flips": label_flips(run_a, run_b),
        "output_differences": [
            {"topic": d.topic, "same": d.same, "only_a": d.only_a, "only_b": d.only_b}
            for d in diffs
        ],
    }


def _get(report: Mapping[str, Any], *path: str) -> Any:
    node: Any = report
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_R: Final = "recommendations"
ROWS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("events replayed / s", ("observed", "events_per_s")),
    ("replay steps", ("observed", "steps")),
    ("step p50 / p99 (s)", ("observed", "step_s_p50")),
    ("", ("observed", "step_s_p99")),
    ("scoring call p50 / p99 (ms)", ("observed", "scoring_call_ms_p50")),
    ("", ("observed", "scoring_call_ms_p99")),
    ("reviews scored", ("sentiment", "reviews")),
    ("sentiment accuracy vs ratings", ("sentiment", "accuracy")),
    ("sentiment macro-F1 vs ratings", ("sentiment", "macro_f1")),
    ("negative share", ("sentiment", "negative_share")),
    ("alerts: precision", ("alerts", "pipeline", "precision")),
    ("alerts: recall", ("alerts", "pipeline", "recall")),
    ("alerts: median delay (min)", ("alerts", "pipeline", "median_delay_min")),
    ("alerts: false alarms / 10k reviews", ("alerts", "pipeline", "false_alarms_per_10k")),
    ("alerts = offline detector per partition", ("alerts", "same_alerts_as_offline")),
    ("offline detector, one monitor: precision", ("alerts", "offline_detector", "precision")),
    ("offline detector, one monitor: recall", ("alerts", "offline_detector", "recall")),
    ("recs: HR@10, lists the pipeline emitted", (_R, "pipeline_shown", "hr")),
    ("recs: NDCG@10, lists the pipeline emitted", (_R, "pipeline_shown", "ndcg")),
    ("offline (c) sentiment, shown: HR@10", (_R, "offline_shown", "sentiment", "hr")),
    ("offline (b) no sentiment, shown: HR@10", (_R, "offline_shown", "no_sentiment", "hr")),
    ("offline (a) popularity: HR@10", (_R, "offline_fresh", "popularity", "hr")),
    ("offline (c) sentiment, fresh: HR@10", (_R, "offline_fresh", "sentiment", "hr")),
    ("offline (b) no sentiment, fresh: HR@10", (_R, "offline_fresh", "no_sentiment", "hr")),
)


def render_markdown(
    reports: Sequence[Mapping[str, Any]], comparison: Mapping[str, Any] | None
) -> str:
    names = [f"`{r['namespace']}`" for r in reports]
    lines = ["# Replay evaluation", ""]
    for r in reports:
        model = r.get("model") or {}
        lines.append(
            f"- `{r['namespace']}`: model {model.get('name')} v{model.get('version')} "
            f"({model.get('dir')}), settings {r.get('settings') or '{}'}, "
            f"inputs {r['inputs']}, outputs {r['outputs']}"
        )
    lines += ["", f"| | {' | '.join(names)} |", "| --- |" + " ---: |" * len(reports)]
    for label, path in ROWS:
        if not label:  # the second half of a "p50 / p99" row
            continue
        cells = []
        for r in reports:
            cell = _fmt(_get(r, *path))
            if "p50 / p99" in label:
                cell += " / " + _fmt(_get(r, *path[:-1], path[-1].replace("p50", "p99")))
            cells.append(cell)
        lines.append(f"| {label} | {' | '.join(cells)} |")
    if comparison is not None:
        flips = comparison["label_flips"]
        lines += [
            "",
            "## Differences",
            "",
            f"Labels that differ between the two runs: {flips['flipped']:,} of "
            f"{flips['common_reviews']:,} reviews (e.g. {', '.join(flips['examples']) or '–'}).",
            "",
            "| output topic | identical records | only in A | only in B |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {d['topic']} | {d['same']:,} | {d['only_a']:,} | {d['only_b']:,} |"
            for d in comparison["output_differences"]
        ]
    lines += [
        "",
        "Sentiment is scored against the simulator's ratings (≥ 4 positive, ≤ 2 negative). "
        "Alerts and recommendations are scored against the simulator's ground truth; the "
        "offline figures are the per-capability evaluations run on the same input and the "
        "same review scores. `shown` lists are the last the stream emitted before an order; "
        "`fresh` lists are computed at the order. The pipeline emits a user's list at most "
        "once per replay step, so with steps longer than a session its HR falls below the "
        "offline `shown`, which cuts before every order. Throughput is of the stepped replay "
        "(deterministic; one worker), not the free-running worker (see BENCHMARKS.md).",
        "",
        "![replay evaluation](replay-report.png)",
        "",
    ]
    return "\n".join(lines)


def plot(reports: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("sentiment vs ratings", (("accuracy", ("sentiment", "accuracy")),
                                  ("macro-F1", ("sentiment", "macro_f1")))),
        ("sentiment alerts", (("precision", ("alerts", "pipeline", "precision")),
                              ("recall", ("alerts", "pipeline", "recall")))),
        ("next purchase, HR@10", (
            ("pipeline", ("recommendations", "pipeline_shown", "hr")),
            ("(a) pop.", ("recommendations", "offline_fresh", "popularity", "hr")),
            ("(b) no sent.", ("recommendations", "offline_shown", "no_sentiment", "hr")),
            ("(c) sent.", ("recommendations", "offline_shown", "sentiment", "hr")),
        )),
    )  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    width = 0.8 / max(1, len(reports))
    for ax, (title, metrics) in zip(axes, panels, strict=True):
        for i, report in enumerate(reports):
            values = [_get(report, *p) or 0.0 for _, p in metrics]
            xs = [m + (i - (len(reports) - 1) / 2) * width for m in range(len(metrics))]
            bars = ax.bar(xs, values, width, label=report["namespace"])
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(metrics)), [m for m, _ in metrics], fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(run_dirs: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Evaluate one run, or compare two; writes replay-report.{json,md,png} into ``out_dir``."""
    if len(run_dirs) not in (1, 2):
        raise ValueError("give one run to evaluate or two to compare")
    comparison = compare_runs(*run_dirs) if len(run_dirs) == 2 else None
    reports = comparison["runs"] if comparison else [evaluate_run(run_dirs[0])]
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"runs": reports, **({"comparison": comparison} if comparison else {})}
    if comparison:
        document["comparison"] = {k: v for k, v in comparison.items() if k != "runs"}
    (out_dir / "replay-report.json").write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    )
    (out_dir / "replay-report.md").write_text(render_markdown(reports, comparison))
    plot(reports, out_dir / "replay-report.png")
    return document
