"""Replay simulated reviews through the detector and score its alerts against the ground truth.

Why replay the pure logic and not the Faust app: the detector is deterministic in
the order of its input, so a replay of the recorded stream gives exactly the alerts
the agent would send, in seconds, and can be repeated over many seeds.

Labels: when the JSONL carries ``review-scores`` records (a pipeline recording), the
scorer's labels are used. Otherwise a rating stand-in: rating <= 2 negative, >= 4
positive, 3 by a coin seeded with (seed, review_id) — the report says which was used.
``label_noise`` flips stand-in labels at random to emulate a scorer that is right
``1 - label_noise`` of the time. With a ``labeller``
(:class:`~ecomstream.alerts.modellabels.ModelLabeller`, ``--model DIR``) every review's
text is scored by an exported model instead, and the report gives the model's
agreement with the ratings.

False alarms at 1 per 10,000 reviews need far more incident-free reviews than the
simulator makes in minutes (it spends ~340 clicks per review), so
:func:`stationary_run` adds long reviews-only streams with each item's measured
review rate, category and hidden quality, rated by the simulator's own rating model.

Scoring (per run, then pooled):

* an *episode* is a ``firing`` alert with reason ``threshold`` (its first message);
* it *matches* an incident on the same item when it fires between the incident's
  start and its end (or the run's end) plus one window length (the window still
  holds incident reviews after a recovery); unmatched episodes are false alarms;
* precision = matched episodes / episodes; recall = incidents with a matched
  episode / incidents; delay = first matched firing − incident start (event time);
* false alarms per 10,000 reviews, on runs without incidents (and, separately,
  unmatched episodes on runs with incidents).

>>> rating_label("r1", 1, 0), rating_label("r1", 5, 0)
((True, 0.95), (False, 0.05))
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from ecomstream.alerts.config import (
    DEFAULT_CONFIG,
    FULL64_MODEL_PRESET,
    QUICK_MODEL_PRESET,
    AlertConfig,
)
from ecomstream.alerts.detector import Assessment, ItemState, SentimentDetector
from ecomstream.alerts.modellabels import Agreement, ModelLabeller
from ecomstream.alerts.monitor import SentimentMonitor
from ecomstream.alerts.records import AlertRecord, ScoredReview

TARGETS: Final = {
    "precision": 0.9,
    "recall": 0.9,
    "median_delay_windows": 1.0,
    "false_alarms_per_10k": 1.0,
}
MAX_PANELS: Final = 6
# Named detector presets for ``--preset`` (tuned per model; figures in their docstrings).
PRESETS: Final[Mapping[str, Mapping[str, str]]] = {
    "quick": QUICK_MODEL_PRESET,
    "full64": FULL64_MODEL_PRESET,
}
P_NEGATIVE_BY_RATING: Final = {1: 0.95, 2: 0.85, 4: 0.15, 5: 0.05}


def rating_label(review_id: str, rating: int, seed: int, noise: float = 0.0) -> tuple[bool, float]:
    """Stand-in label from the rating: (negative?, p_negative); 3 stars by a seeded coin.

    ``noise``: flip the label with this probability (seeded too), to emulate a scorer
    whose accuracy is ``1 - noise`` (the field notes measured 0.80–0.85 on the corpus).
    """
    digest = hashlib.blake2b(f"{seed}\x1f{review_id}".encode(), digest_size=8).digest()
    if rating != 3:
        p = P_NEGATIVE_BY_RATING[min(5, max(1, rating))]
    else:
        p = 0.6 if digest[0] < 128 else 0.4
    if noise and int.from_bytes(digest[1:5], "big") < noise * 2**32:
        p = 1.0 - p
    return p > 0.5, p


def from_review(value: Mapping[str, Any], seed: int, noise: float = 0.0) -> ScoredReview:
    """A ``reviews`` event value scored by the rating stand-in."""
    rating = int(value["rating"])
    negative, p_negative = rating_label(str(value["review_id"]), rating, seed, noise)
    return ScoredReview(
        review_id=str(value["review_id"]),
        item_id=str(value["item_id"]),
        category=str(value["category"]),
        ts=int(value["ts"]),
        negative=negative,
        p_negative=p_negative,
        rating=rating,
        excerpt=value.get("text"),
    )


def load_scored(
    source: Path | str | Iterable[Any], *, seed: int = 0, noise: float = 0.0
) -> tuple[list[ScoredReview], str]:
    """Scored reviews in stream order, and where their labels came from ("scorer"/"rating").

    ``source``: a JSONL path (``{"topic","key","value"}`` lines), or an iterable of
    :class:`ScoredReview`, of such records, of ``review-scores`` values, or of simulator
    events (objects with ``.topic`` and ``.event``).
    """
    scored: list[ScoredReview] = []
    reviews: list[Mapping[str, Any]] = []
    texts: dict[str, str] = {}

    def take(record: Any) -> None:
        if isinstance(record, ScoredReview):
            scored.append(record)
        elif hasattr(record, "topic") and hasattr(record, "event"):
            if record.topic == "reviews":
                reviews.append(record.event.model_dump())
        elif isinstance(record, Mapping) and "topic" in record:
            if record["topic"] == "review-scores":
                scored.append(ScoredReview.from_dict(record["value"]))
            elif record["topic"] == "reviews":
                reviews.append(record["value"])
        elif isinstance(record, Mapping):
            scored.append(ScoredReview.from_dict(record))
        else:
            raise TypeError(f"cannot read a scored review from {type(record).__name__}")

    if isinstance(source, str | Path):
        with Path(source).open("rb") as lines:
            for line in lines:
                # Clicks and purchases are most of a recording: skip them unparsed.
                if b'"review' in line[:40]:
                    take(orjson.loads(line))
    else:
        for record in source:
            take(record)
    if scored:
        for value in reviews:
            texts[str(value["review_id"])] = str(value.get("text", ""))
        if texts:
            scored = [
                s
                if s.excerpt is not None or s.review_id not in texts
                else _with_excerpt(s, texts[s.review_id])
                for s in scored
            ]
        return scored, "scorer"
    label = f"rating (label noise {noise:g})" if noise else "rating"
    return [from_review(value, seed, noise) for value in reviews], label


def _with_excerpt(review: ScoredReview, text: str) -> ScoredReview:
    return ScoredReview(
        review.review_id,
        review.item_id,
        review.category,
        review.ts,
        review.negative,
        review.p_negative,
        review.rating,
        text,
    )


@dataclass
class Replay:
    alerts: list[AlertRecord]
    series: dict[str, list[Assessment]]
    reviews: int
    too_late: int
    reviews_by_item: dict[str, list[int]]  # review times per item (for volume analysis)
    negatives_by_item: dict[str, list[int]]


def replay(
    reviews: Sequence[ScoredReview],
    config: AlertConfig = DEFAULT_CONFIG,
    *,
    track: Iterable[str] | None = None,
    roundtrip: bool = False,
) -> Replay:
    """Run the monitor over ``reviews``; keep an assessment timeline for the ``track`` items
    (all items when None), then advance open episodes to the last event time + one window."""
    tracked = None if track is None else set(track)
    series: dict[str, list[Assessment]] = defaultdict(list)

    def probe(state: ItemState, detector: SentimentDetector) -> None:
        if tracked is None or state.item_id in tracked:
            series[state.item_id].append(detector.assess(state))

    monitor = SentimentMonitor(config, roundtrip=roundtrip, probe=probe)
    alerts: list[AlertRecord] = []
    by_item: dict[str, list[int]] = defaultdict(list)
    neg_by_item: dict[str, list[int]] = defaultdict(list)
    for review in reviews:
        alerts += monitor.observe(review).alerts
        by_item[review.item_id].append(review.ts)
        if review.negative:
            neg_by_item[review.item_id].append(review.ts)
    if reviews:
        # Let the clock run one window past the last review: open episodes may resolve.
        last = monitor.clock
        step = config.bucket_ms
        for now in range(last + step, last + config.window_ms + step, step):
            alerts += monitor.tick(now)
    return Replay(
        alerts, dict(series), monitor.reviews, monitor.too_late, dict(by_item), dict(neg_by_item)
    )


@dataclass
class RunScore:
    name: str
    label_source: str
    reviews: int
    too_late: int
    incidents: list[dict[str, Any]]
    episodes: int
    matched: int
    false_alarms: list[dict[str, Any]]
    alerts: int
    start_ms: int
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        detected = [i for i in self.incidents if i["detected"]]
        delays = [i["delay_min"] for i in detected]
        return {
            "name": self.name,
            "label_source": self.label_source,
            "reviews": self.reviews,
            "too_late": self.too_late,
            "alerts": self.alerts,
            "episodes": self.episodes,
            "matched_episodes": self.matched,
            "false_alarms": len(self.false_alarms),
            "incidents": len(self.incidents),
            "detected": len(detected),
            "precision": _ratio(self.matched, self.episodes),
            "recall": _ratio(len(detected), len(self.incidents)),
            "median_delay_min": statistics.median(delays) if delays else None,
            "false_alarms_per_10k": 1e4 * len(self.false_alarms) / self.reviews
            if self.reviews
            else None,
        }


def _poisson_upper95(k: int) -> float:
    """One-sided 95% upper confidence bound of a Poisson mean after ``k`` events.

    >>> round(_poisson_upper95(0), 3), round(_poisson_upper95(2), 2)
    (2.996, 6.3)
    """
    lo, hi = float(k), float(k) + 10.0 + 5.0 * k**0.5
    for _ in range(100):  # bisection on P(X <= k | mu) = 0.05
        mid = (lo + hi) / 2
        term, cdf = math.exp(-mid), 0.0
        for i in range(k + 1):
            cdf += term
            term *= mid / (i + 1)
        lo, hi = (mid, hi) if cdf > 0.05 else (lo, mid)
    return (lo + hi) / 2


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def score_run(
    name: str,
    run: Replay,
    truth: Mapping[str, Any],
    config: AlertConfig,
    label_source: str,
) -> RunScore:
    """Match the run's episodes to the truth's incidents."""
    start_ms = int(truth.get("start_ts") or truth.get("first_event_ts") or 0)
    run_end = int(truth.get("end_ts") or truth.get("last_event_ts") or 0)
    firing = [a for a in run.alerts if a.state == "firing" and a.reason == "threshold"]
    resolved = {a.episode_id: a for a in run.alerts if a.state == "resolved"}
    escalated = {a.episode_id for a in run.alerts if a.reason == "escalated"}
    window = config.window_ms
    incidents: list[dict[str, Any]] = []
    matched_ids: set[str] = set()
    for incident in truth.get("incidents", []):
        item, start = incident["item_id"], int(incident["start_ts"])
        end = incident.get("end_ts")
        stop = int(end) if end is not None else run_end
        hits = [a for a in firing if a.item_id == item and start <= a.ts <= stop + window]
        matched_ids.update(a.episode_id for a in hits)
        times = run.reviews_by_item.get(item, [])
        negs = run.negatives_by_item.get(item, [])
        before = [t for t in times if t < start]
        neg_before = [t for t in negs if t < start]
        first = hits[0] if hits else None
        incidents.append(
            {
                "item_id": item,
                "category": incident.get("category"),
                "start_min": round((start - start_ms) / 60_000, 1),
                "end_min": None if end is None else round((int(end) - start_ms) / 60_000, 1),
                "quality_before": incident.get("quality_before"),
                "reviews_before": len(before),
                "negative_share_before": round(len(neg_before) / len(before), 3)
                if before
                else None,
                "reviews_first_window": sum(1 for t in times if start <= t < start + window),
                "reviews_during": sum(1 for t in times if start <= t < stop),
                "negative_during": sum(1 for t in negs if start <= t < stop),
                "detected": first is not None,
                "delay_min": None if first is None else round((first.ts - start) / 60_000, 2),
                "severity": None
                if first is None
                else (
                    "critical"
                    if first.severity == "critical" or first.episode_id in escalated
                    else "warning"
                ),
                "episodes": len(hits),
                "resolved_min": None
                if first is None or first.episode_id not in resolved
                else round((resolved[first.episode_id].ts - start_ms) / 60_000, 1),
                "window_reviews_at_firing": None if first is None else first.reviews,
                "baseline_at_firing": None if first is None else round(first.baseline, 3),
            }
        )
    false_alarms = [
        {
            "item_id": a.item_id,
            "ts_min": round((a.ts - start_ms) / 60_000, 1),
            "severity": a.severity,
            "reviews": a.reviews,
            "negative": a.negative,
            "baseline": round(a.baseline, 3),
            "baseline_reviews": round(a.baseline_reviews, 1),
            "lower": round(a.lower, 3),
        }
        for a in firing
        if a.episode_id not in matched_ids
    ]
    return RunScore(
        name=name,
        label_source=label_source,
        reviews=run.reviews,
        too_late=run.too_late,
        incidents=incidents,
        episodes=len(firing),
        matched=len({a.episode_id for a in firing} & matched_ids),
        false_alarms=false_alarms,
        alerts=len(run.alerts),
        start_ms=start_ms,
    )


def pooled(scores: Sequence[RunScore], config: AlertConfig) -> dict[str, Any]:
    """Metrics over all runs: incident runs for precision/recall/delay, clean runs for FA."""
    with_incidents = [s for s in scores if s.incidents]
    clean = [s for s in scores if not s.incidents and not s.extra.get("stationary")]
    stationary = [s for s in scores if s.extra.get("stationary")]
    episodes = sum(s.episodes for s in with_incidents)
    matched = sum(s.matched for s in with_incidents)
    incidents = [i for s in with_incidents for i in s.incidents]
    delays = sorted(i["delay_min"] for i in incidents if i["detected"])
    clean_reviews = sum(s.reviews for s in clean)
    clean_fa = sum(len(s.false_alarms) for s in clean)
    st_reviews = sum(s.reviews for s in stationary)
    st_fa = sum(len(s.false_alarms) for s in stationary)
    all_quiet_reviews, all_quiet_fa = clean_reviews + st_reviews, clean_fa + st_fa
    inc_reviews = sum(s.reviews for s in with_incidents)
    inc_fa = sum(len(s.false_alarms) for s in with_incidents)
    window_min = config.window_ms / 60_000
    out: dict[str, Any] = {
        "runs": len(scores),
        "incident_runs": len(with_incidents),
        "clean_runs": len(clean),
        "incidents": len(incidents),
        "detected": len(delays),
        "episodes": episodes,
        "matched_episodes": matched,
        "precision": _ratio(matched, episodes),
        "recall": _ratio(len(delays), len(incidents)),
        "median_delay_min": statistics.median(delays) if delays else None,
        "p90_delay_min": delays[min(len(delays) - 1, int(0.9 * len(delays)))] if delays else None,
        "max_delay_min": delays[-1] if delays else None,
        "window_min": window_min,
        "clean_reviews": clean_reviews,
        "clean_false_alarms": clean_fa,
        "clean_false_alarms_per_10k": 1e4 * clean_fa / clean_reviews if clean_reviews else None,
        "stationary_runs": len(stationary),
        "stationary_reviews": st_reviews,
        "stationary_false_alarms": st_fa,
        "stationary_false_alarms_per_10k": 1e4 * st_fa / st_reviews if st_reviews else None,
        # The target is checked on every incident-free review, simulator and stationary.
        "quiet_reviews": all_quiet_reviews,
        "quiet_false_alarms": all_quiet_fa,
        "false_alarms_per_10k": 1e4 * all_quiet_fa / all_quiet_reviews
        if all_quiet_reviews
        else None,
        # One-sided 95% upper bound of the rate (Poisson; 3.0 per N reviews when none seen).
        "false_alarms_per_10k_upper95": 1e4 * _poisson_upper95(all_quiet_fa) / all_quiet_reviews
        if all_quiet_reviews
        else None,
        "incident_run_reviews": inc_reviews,
        "incident_run_false_alarms": inc_fa,
        "incident_run_false_alarms_per_10k": 1e4 * inc_fa / inc_reviews if inc_reviews else None,
        "too_late": sum(s.too_late for s in scores),
    }
    checks = {
        "precision": out["precision"] is not None and out["precision"] >= TARGETS["precision"],
        "recall": out["recall"] is not None and out["recall"] >= TARGETS["recall"],
        "median_delay": out["median_delay_min"] is not None
        and out["median_delay_min"] <= TARGETS["median_delay_windows"] * window_min,
        "false_alarms": out["false_alarms_per_10k"] is not None
        and out["false_alarms_per_10k"] <= TARGETS["false_alarms_per_10k"],
    }
    out["targets"] = TARGETS
    out["meets"] = checks
    return out


@dataclass
class RunInput:
    """One run to evaluate: a name, its reviews (any :func:`load_scored` source), its truth."""

    name: str
    source: Path | str | Iterable[Any]
    truth: Mapping[str, Any] | Path | str
    label_source: str | None = None  # overrides what load_scored infers


def evaluate_runs(
    runs: Sequence[RunInput],
    out_dir: Path | str,
    *,
    config: AlertConfig = DEFAULT_CONFIG,
    seed: int = 0,
    label_noise: float = 0.0,
    plot: bool = True,
    extra: Mapping[str, Any] | None = None,
    labeller: ModelLabeller | None = None,
) -> dict[str, Any]:
    """Evaluate several runs; writes ``alerts-report.json``, ``alerts-report.md``,
    ``alerts-timeline.png`` and the alerts of each run (``<name>.alerts.jsonl``).

    ``labeller``: score every review's text with a model instead of using the labels the
    runs carry (rating stand-in or recorded scores)."""
    from ecomstream.simulator.groundtruth import load_truth

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores: list[RunScore] = []
    panels: list[dict[str, Any]] = []
    series: dict[str, list[Assessment]] = {}
    plot_alerts: list[AlertRecord] = []
    origin: int | None = None
    agreement = Agreement()
    for run in runs:
        truth = run.truth if isinstance(run.truth, Mapping) else load_truth(Path(run.truth))
        reviews, label_source = load_scored(run.source, seed=seed, noise=label_noise)
        label_source = run.label_source or label_source
        if labeller is not None:
            reviews = labeller.relabel(reviews, desc=f"scoring {run.name}")
            label_source = labeller.name
        run_agreement = Agreement.of_reviews(reviews)
        agreement += run_agreement
        incident_items = [i["item_id"] for i in truth.get("incidents", [])]
        result = replay(reviews, config, track=None if plot else incident_items)
        score = score_run(run.name, result, truth, config, label_source)
        score.extra["stationary"] = bool(truth.get("stationary"))
        score.extra["rating_agreement"] = run_agreement.accuracy
        scores.append(score)
        with (out / f"{run.name}.alerts.jsonl").open("wb") as f:
            for alert in result.alerts:
                f.write(orjson.dumps(alert.to_dict()) + b"\n")
        if plot and len(panels) < MAX_PANELS:
            # Incidents of the first runs, then a false alarm if there is room.
            chosen = [
                {
                    "item_id": i["item_id"],
                    "start_ts": i["start_ts"],
                    "end_ts": i.get("end_ts"),
                    "label": f"{run.name}: incident on {i['item_id']} ({i.get('category')})",
                }
                for i in truth.get("incidents", [])
            ]
            chosen += [
                {"item_id": fa["item_id"], "label": f"{run.name}: false alarm on {fa['item_id']}"}
                for fa in score.false_alarms[:1]
            ]
            if origin is None:
                origin = score.start_ms
            shift = origin - score.start_ms  # align runs on their own start
            for panel in chosen[: MAX_PANELS - len(panels)]:
                key = f"{run.name}/{panel['item_id']}"
                series[key] = [
                    p._replace(ts=p.ts + shift) for p in result.series.get(panel["item_id"], [])
                ]
                plot_alerts += [
                    _shifted(a, key, shift) for a in result.alerts if a.item_id == panel["item_id"]
                ]
                panels.append(
                    {
                        **panel,
                        "item_id": key,
                        "start_ts": None
                        if panel.get("start_ts") is None
                        else panel["start_ts"] + shift,
                        "end_ts": None if panel.get("end_ts") is None else panel["end_ts"] + shift,
                    }
                )
    summary = pooled(scores, config)
    report = {
        "format": "ecomstream-alerts-evaluation/1",
        "label_source": sorted({s.label_source for s in scores}),
        "labels": {
            "model": None if labeller is None else labeller.info,
            "agreement_with_ratings": agreement.to_dict(),
        },
        "config": config.to_dict(),
        "summary": summary,
        "runs": [
            {
                **s.summary(),
                "rating_agreement": s.extra["rating_agreement"],
                "incidents_detail": s.incidents,
                "false_alarm_detail": s.false_alarms,
            }
            for s in scores
        ],
        **({"extra": dict(extra)} if extra else {}),
    }
    (out / "alerts-report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if plot and panels and origin is not None:
        from ecomstream.alerts.plots import plot_timelines

        plot_timelines(
            out / "alerts-timeline.png",
            panels,
            series,
            plot_alerts,
            origin_ms=origin,
            title="sentiment alerts: window negative share vs baseline",
        )
        report["timeline"] = "alerts-timeline.png"
    (out / "alerts-report.md").write_text(render_markdown(report))
    return report


def _shifted(alert: AlertRecord, key: str, shift: int) -> AlertRecord:
    from dataclasses import replace

    return replace(alert, item_id=key, ts=alert.ts + shift)


def evaluate_alerts(
    jsonl_or_scored: Path | str | Iterable[Any],
    truth: Mapping[str, Any] | Path | str,
    out_dir: Path | str,
    *,
    config: AlertConfig = DEFAULT_CONFIG,
    seed: int = 0,
    label_noise: float = 0.0,
    plot: bool = True,
    name: str = "run",
) -> dict[str, Any]:
    """Evaluate one run (a simulator JSONL, or scored reviews) against its ground truth."""
    return evaluate_runs(
        [RunInput(name, jsonl_or_scored, truth)],
        out_dir,
        config=config,
        seed=seed,
        label_noise=label_noise,
        plot=plot,
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    meets = s["meets"]

    def mark(key: str) -> str:
        return "✅" if meets[key] else "❌"

    lines = [
        "# Sentiment alerts — evaluation",
        "",
        f"Labels: **{', '.join(report['label_source'])}** "
        "(model = every review's text scored in-process by the exported model; "
        "scorer = the model's labels from `review-scores`; rating = stand-in: ≤2 negative, "
        "≥4 positive, 3 by a seeded coin).",
        "",
        *_labels_markdown(report.get("labels")),
        f"Runs: {s['runs']} ({s['incident_runs']} simulator runs with incidents,"
        f" {s['clean_runs']} without, {s['stationary_runs']} stationary reviews-only runs"
        " without).",
        "",
        "| metric | value | target | |",
        "| --- | --- | --- | --- |",
        f"| precision | {_fmt(s['precision'])} ({s['matched_episodes']}/{s['episodes']} episodes)"
        f" | ≥ {TARGETS['precision']} | {mark('precision')} |",
        f"| recall | {_fmt(s['recall'])} ({s['detected']}/{s['incidents']} incidents)"
        f" | ≥ {TARGETS['recall']} | {mark('recall')} |",
        f"| median delay | {_fmt(s['median_delay_min'], 1)} min (p90 {_fmt(s['p90_delay_min'], 1)},"
        f" max {_fmt(s['max_delay_min'], 1)}) | ≤ {s['window_min']:.0f} min (one window)"
        f" | {mark('median_delay')} |",
        f"| false alarms / 10k reviews, all incident-free reviews |"
        f" {_fmt(s['false_alarms_per_10k'], 2)} ({s['quiet_false_alarms']} in"
        f" {s['quiet_reviews']:,}; 95% upper bound {_fmt(s['false_alarms_per_10k_upper95'], 2)})"
        f" | ≤ {TARGETS['false_alarms_per_10k']} | {mark('false_alarms')} |",
        "| … of which simulator runs without incidents |"
        f" {_fmt(s['clean_false_alarms_per_10k'], 2)}"
        f" ({s['clean_false_alarms']} in {s['clean_reviews']:,}) | | |",
        f"| … of which stationary reviews-only runs | "
        f"{_fmt(s['stationary_false_alarms_per_10k'], 2)}"
        f" ({s['stationary_false_alarms']} in {s['stationary_reviews']:,}) | | |",
        f"| unmatched episodes / 10k reviews (incident runs) |"
        f" {_fmt(s['incident_run_false_alarms_per_10k'], 2)} ({s['incident_run_false_alarms']})"
        " | – | |",
        "",
        "## Runs",
        "",
        "| run | reviews | incidents | detected | episodes | false alarms | median delay (min) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['name']} | {run['reviews']:,} | {run['incidents']} | {run['detected']} | "
            f"{run['episodes']} | {run['false_alarms']} | {_fmt(run['median_delay_min'], 1)} |"
        )
    lines += [
        "",
        "## Incidents",
        "",
        "| run | item | start–end (min) | reviews before | neg. share before | reviews 1st window "
        "| detected | delay (min) | severity | resolved (min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in report["runs"]:
        for i in run["incidents_detail"]:
            lines.append(
                f"| {run['name']} | {i['item_id']} | {i['start_min']}–{i['end_min'] or 'end'} | "
                f"{i['reviews_before']} | "
                f"{_fmt(i['negative_share_before'])} | {i['reviews_first_window']} | "
                f"{'yes' if i['detected'] else 'no'} | {_fmt(i['delay_min'], 1)} | "
                f"{i['severity'] or '–'} | {_fmt(i['resolved_min'], 1)} |"
            )
    fas = [(run["name"], fa) for run in report["runs"] for fa in run["false_alarm_detail"]]
    if fas:
        lines += [
            "",
            "## False alarms",
            "",
            "| run | item | at (min) | window | baseline (eff. reviews) | lower bound |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, fa in fas:
            lines.append(
                f"| {name} | {fa['item_id']} | {fa['ts_min']} | {fa['negative']}/{fa['reviews']} | "
                f"{fa['baseline']} ({fa['baseline_reviews']}) | {fa['lower']} |"
            )
    if "timeline" in report:
        lines += ["", f"![timeline]({report['timeline']})"]
    config = report["config"]
    lines += [
        "",
        "## Config",
        "",
        "```",
        *(f"{k} = {v}" for k, v in config.items()),
        "```",
    ]
    if "extra" in report:
        lines += [
            "",
            "## Runs were made with",
            "",
            "```",
            orjson.dumps(report["extra"], option=orjson.OPT_INDENT_2).decode(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _labels_markdown(labels: Mapping[str, Any] | None) -> list[str]:
    """The report's lines on the model used (if any) and the labels' agreement with ratings."""
    if not labels:
        return []
    lines: list[str] = []
    model = labels.get("model")
    if model:
        quantized = ", int8" if model.get("quantized") else ""
        where = f" (`{model['artifact']}`)" if model.get("artifact") else ""
        lines += [f"Model: `{model['name']}` version {model['version']}{quantized}{where}.", ""]
    a = labels["agreement_with_ratings"]
    if a["rated"]:
        lines += [
            f"Agreement of the labels with the ratings (≥4 positive, ≤2 negative):"
            f" accuracy {_fmt(a['accuracy'])} over {a['rated']:,} reviews; labelled negative:"
            f" {_fmt(a['negative_given_low'])} of ≤2-star, {_fmt(a['negative_given_high'])}"
            f" of ≥4-star, {_fmt(a['negative_given_3'])} of 3-star reviews.",
            "",
        ]
    return lines


def simulated_runs(
    seeds: Sequence[int],
    *,
    random_incidents: int,
    clean: bool = True,
    **overrides: Any,
) -> list[RunInput]:
    """In-memory simulator runs (no files): per seed, one with ``random_incidents`` incidents
    (plus any explicit ``incidents=`` specs in ``overrides``) and, with ``clean``, the same
    seed without any incident."""
    from ecomstream.simulator import Shop, SimConfig

    runs: list[RunInput] = []
    for seed in seeds:
        variants: list[tuple[str, dict[str, Any]]] = []
        if random_incidents or overrides.get("incidents"):
            variants.append(("inc", {**overrides, "random_incidents": random_incidents}))
        if clean:
            variants.append(("clean", {**overrides, "random_incidents": 0, "incidents": ()}))
        for tag, settings in variants:
            shop = Shop(SimConfig(seed=seed, **settings))
            events = [e for e in shop.events() if e.topic == "reviews"]
            runs.append(RunInput(f"s{seed}-{tag}", events, shop.truth()))
    return runs


def stationary_run(
    run: RunInput, *, hours: float, scale: float, seed: int = 0, noise: float = 0.0
) -> RunInput:
    """A long incident-free stream shaped like ``run`` (a simulator run without incidents).

    Why: the simulator spends ~340 click events per review, so a false-alarm rate of
    1 per 10,000 reviews cannot be measured on its runs in minutes. This keeps what
    matters to the detector — each item's review rate (measured on ``run``, times
    ``scale``), its category and its hidden quality, and the simulator's own rating
    model (:class:`~ecomstream.simulator.reviews.ReviewWriter`) — and drops the clicks:
    Poisson review arrivals per item over ``hours``, labelled by the rating stand-in.
    Each review gets a corpus text picked for its rating as the simulator picks it, so a
    model can label it; the texts come from a random stream of their own, which leaves
    the ratings (and the stand-in's labels) as they were without texts.
    """
    import random

    from ecomstream.data.corpus import load_review_corpus
    from ecomstream.simulator.reviews import ReviewWriter

    truth = run.truth if isinstance(run.truth, Mapping) else None
    if truth is None or truth.get("incidents"):
        raise ValueError("a stationary run needs an in-memory truth without incidents")
    reviews, _ = load_scored(run.source, seed=seed)
    if not reviews:
        raise ValueError("the run has no reviews to measure rates on")
    span_h = max(1e-9, (reviews[-1].ts - reviews[0].ts) / 3_600_000)
    counts: dict[str, int] = defaultdict(int)
    for r in reviews:
        counts[r.item_id] += 1
    catalog = truth["catalog"]
    rng = random.Random(f"stationary:{run.name}:{seed}")
    writer = ReviewWriter(rng, positive=("+",), negative=("-",))
    corpus = load_review_corpus()
    texts = ReviewWriter(
        random.Random(f"stationary-text:{run.name}:{seed}"),
        positive=corpus.positive,
        negative=corpus.negative,
    )
    start = int(truth["start_ts"])
    end = start + round(hours * 3_600_000)
    arrivals: list[tuple[int, str]] = []
    for item in sorted(counts):
        per_ms = counts[item] * scale / span_h / 3_600_000
        t = start + rng.expovariate(per_ms)
        while t < end:
            arrivals.append((int(t), item))
            t += rng.expovariate(per_ms)
    arrivals.sort()
    out: list[ScoredReview] = []
    for n, (ts, item) in enumerate(arrivals):
        quality = float(catalog[item]["quality"])
        rating = writer.rating(quality)
        review_id = f"st{seed}-{n:08d}"
        negative, p_negative = rating_label(review_id, rating, seed, noise)
        text = texts.text(rating, quality)
        out.append(
            ScoredReview(
                review_id, item, catalog[item]["category"], ts, negative, p_negative, rating, text
            )
        )
    stationary_truth = {
        "start_ts": start,
        "end_ts": end,
        "incidents": [],
        "stationary": {"from": run.name, "hours": hours, "scale": scale},
    }
    label = f"rating (label noise {noise:g})" if noise else "rating"
    return RunInput(f"{run.name}-stationary-x{scale:g}", out, stationary_truth, label)


def config_from_args(preset: str | None, settings: Sequence[str]) -> AlertConfig:
    """The detector config of ``--preset NAME`` (or the defaults) with ``--set FIELD=VALUE``
    applied on top.

    >>> config_from_args("quick", ["llr_fire=6"]).llr_fire, config_from_args(None, []).fire_test
    (6.0, 'wilson')
    """
    values = dict(PRESETS[preset]) if preset else {}
    values.update((k.strip(), v) for k, v in (s.split("=", 1) for s in settings))
    return AlertConfig.from_preset(values)


def main(argv: Sequence[str] | None = None) -> None:
    """``ecomstream evaluate alerts`` — see ``--help``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="ecomstream evaluate alerts", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "jsonl", nargs="?", type=Path, help="simulator JSONL (omit with --simulate)"
    )
    parser.add_argument("--truth", type=Path, help="ground truth (default: <jsonl>.truth.json)")
    parser.add_argument("--out", type=Path, default=Path("reports/alerts"))
    parser.add_argument("--simulate", action="store_true", help="run the simulator in memory")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds for --simulate")
    parser.add_argument("--incidents", type=int, default=3, help="random incidents per run")
    parser.add_argument("--no-clean", action="store_true", help="skip the incident-free runs")
    parser.add_argument("--duration", default=None, help="simulated time per run, e.g. 2h")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--incident-duration", default=None, help="e.g. 45m (default: no recovery)")
    parser.add_argument("--label-seed", type=int, default=0, help="seed of the 3-star coin")
    parser.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="flip stand-in labels with this probability (emulates a scorer's errors)",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="start from a detector preset for a model's labels (quick: QUICK_MODEL_PRESET,"
        " full64: FULL64_MODEL_PRESET); --set overrides it",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an AlertConfig field (repeatable)",
    )
    parser.add_argument(
        "--stationary-hours",
        type=float,
        default=0.0,
        help="also replay an incident-free reviews-only stream this long per clean run",
    )
    parser.add_argument(
        "--stationary-scale",
        default="1",
        help="review volume × this (stress); comma-separated for several runs each",
    )
    parser.add_argument(
        "--sim-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a SimConfig field, e.g. incident_quality=0.3 (repeatable)",
    )
    parser.add_argument(
        "--sim-incident",
        action="append",
        default=[],
        metavar="ITEM@OFFSET",
        help="an explicit incident, e.g. i0123@90m (repeatable; with --incidents 0 for only these)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help="label every review by this exported model (model.onnx, tokenizer.json, meta.json),"
        " e.g. serving/triton_repo/review_sentiment/1, instead of the rating stand-in",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="texts per model call (with --model)"
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.model is not None and args.label_noise:
        parser.error("--label-noise emulates a scorer; with --model the model is the scorer")

    try:
        config = config_from_args(args.preset, args.set)
    except ValueError as exc:
        parser.error(str(exc))
    if args.simulate:
        from ecomstream.simulator.config import parse_duration

        overrides: dict[str, Any] = {}
        if args.duration:
            overrides["duration_s"] = parse_duration(args.duration)
        if args.users:
            overrides["users"] = args.users
        if args.incident_duration:
            overrides["incident_duration_s"] = parse_duration(args.incident_duration)
        for item in args.sim_set:
            name, _, raw = item.partition("=")
            overrides[name.strip()] = float(raw) if "." in raw else int(raw)
        if args.sim_incident:
            from ecomstream.simulator.config import IncidentSpec

            overrides["incidents"] = tuple(IncidentSpec.parse(x) for x in args.sim_incident)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        runs = simulated_runs(
            seeds, random_incidents=args.incidents, clean=not args.no_clean, **overrides
        )
        scales = [float(x) for x in args.stationary_scale.split(",") if x.strip()]
        if args.stationary_hours > 0:
            runs += [
                stationary_run(
                    r,
                    hours=args.stationary_hours,
                    scale=scale,
                    seed=args.label_seed,
                    noise=args.label_noise,
                )
                for scale in scales
                for r in runs
                if r.name.endswith("-clean")
            ]
        extra = {"seeds": seeds, "incidents": args.incidents, **overrides}
        if args.stationary_hours > 0:
            extra["stationary"] = {"hours": args.stationary_hours, "scales": scales}
    else:
        if args.jsonl is None:
            parser.error("give a JSONL file or --simulate")
        truth = args.truth or args.jsonl.with_name(
            args.jsonl.name.removesuffix(".jsonl") + ".truth.json"
        )
        runs = [RunInput(args.jsonl.stem, args.jsonl, truth)]
        extra = {"jsonl": str(args.jsonl), "truth": str(truth)}
    if args.preset:
        extra["preset"] = args.preset
    labeller = None
    if args.model is not None:
        labeller = ModelLabeller.load(args.model, batch_size=args.batch_size)
        extra["model"] = str(args.model)
    report = evaluate_runs(
        runs,
        args.out,
        config=config,
        seed=args.label_seed,
        label_noise=args.label_noise,
        plot=not args.no_plot,
        extra={**extra, "label_noise": args.label_noise},
        labeller=labeller,
    )
    s = report["summary"]
    agreement = report["labels"]["agreement_with_ratings"]["accuracy"]
    print(
        f"precision={_fmt(s['precision'])} recall={_fmt(s['recall'])} "
        f"median_delay={_fmt(s['median_delay_min'], 1)}min "
        f"false_alarms/10k={_fmt(s['false_alarms_per_10k'], 2)} "
        f"(labels: {', '.join(report['label_source'])}; agreement with ratings "
        f"{_fmt(agreement)}) → {args.out}/alerts-report.md"
    )


if __name__ == "__main__":
    main()
