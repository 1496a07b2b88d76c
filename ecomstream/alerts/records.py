"""The detector's input (a scored review) and output (an alert), with their JSON codecs.

Why ids are hashes of what the detector already knows: an episode is identified by
its item and the bucket it started in, and each message of an episode by its
transition (firing at a severity, or resolved). Replaying the same scores in the
same order therefore yields byte-identical alerts, and a consumer can drop the
duplicates that at-least-once delivery allows by ``alert_id`` alone.

>>> episode_id("i0007", 1_767_228_000_000)
'ep-9d0d38a538c0d9e0'
>>> alert_id("ep-9d0d38a538c0d9e0", "firing", "warning")
'ep-9d0d38a538c0d9e0:firing:warning'
>>> review = ScoredReview.from_dict({"review_id": "r1", "item_id": "i1", "category": "home",
...     "ts": 1_767_225_600_000, "label": "negative", "rating": 1,
...     "probabilities": {"negative": 0.97, "positive": 0.03}, "text": "太差了"})
>>> review.negative, review.p_negative, review.excerpt
(True, 0.97, '太差了')
>>> excerpt("一二三四五六", 4)
'一二三…'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

AlertState = Literal["firing", "resolved"]
Severity = Literal["warning", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = ("warning", "critical")
ALERT_FORMAT: Final = "ecomstream-sentiment-alert/1"


def episode_id(item_id: str, start_ms: int) -> str:
    """Deterministic id of the episode of ``item_id`` that started in the bucket at ``start_ms``."""
    digest = hashlib.blake2b(f"{item_id}\x1f{start_ms}".encode(), digest_size=8).hexdigest()
    return f"ep-{digest}"


def alert_id(episode: str, state: AlertState, severity: Severity) -> str:
    """One id per message: an episode sends each (state, severity) at most once."""
    return f"{episode}:{state}:{severity}"


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (an ellipsis marks a cut), whitespace folded."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


@dataclass(frozen=True, slots=True)
class ScoredReview:
    """What the detector needs from one ``review-scores`` value."""

    review_id: str
    item_id: str
    category: str
    ts: int  # the review's event time, epoch ms
    negative: bool
    p_negative: float
    rating: int | None = None
    excerpt: str | None = None

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ScoredReview:
        """Parse a ``review-scores`` value; raises ``ValueError`` when it cannot be used."""
        try:
            label = value["label"]
            if label not in ("negative", "positive"):
                raise ValueError(f"unknown label {label!r}")
            probabilities = value.get("probabilities") or {}
            p_neg = probabilities.get("negative")
            if p_neg is None:
                p_pos = probabilities.get("positive")
                p_neg = 1.0 - float(p_pos) if p_pos is not None else float(label == "negative")
            rating = value.get("rating")
            text = value.get("excerpt", value.get("text"))
            ts = value["ts"]
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise ValueError(f"ts must be epoch ms, got {ts!r}")
            return cls(
                review_id=str(value["review_id"]),
                item_id=str(value["item_id"]),
                category=str(value.get("category") or "unknown"),
                ts=ts,
                negative=label == "negative",
                p_negative=float(p_neg),
                rating=int(rating) if isinstance(rating, int) and 1 <= rating <= 5 else None,
                excerpt=text if isinstance(text, str) else None,
            )
        except KeyError as exc:
            raise ValueError(f"review score lacks field {exc.args[0]!r}") from None
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"malformed review score: {exc}") from None

    @classmethod
    def from_json(cls, raw: bytes) -> ScoredReview:
        value = orjson.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("review score is not a JSON object")
        return cls.from_dict(value)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One of the most negative reviews in the window; ``excerpt`` is None in private mode."""

    review_id: str
    ts: int
    p_negative: float
    excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "review_id": self.review_id,
            "ts": self.ts,
            "p_negative": round(self.p_negative, 4),
        }
        if self.excerpt is not None:
            out["excerpt"] = self.excerpt
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Evidence:
        return cls(value["review_id"], value["ts"], value["p_negative"], value.get("excerpt"))


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One message on ``sentiment-alerts`` (keyed by ``item_id``)."""

    alert_id: str
    episode_id: str
    item_id: str
    category: str
    state: AlertState
    severity: Severity
    ts: int  # event time at which the transition was decided
    episode_start: int  # start of the bucket in which the episode fired
    window_start: int
    window_end: int
    reviews: int
    negative: int
    negative_share: float | None
    mean_rating: float | None
    baseline: float  # the item's expected negative share (shrunk toward the category)
    baseline_reviews: float  # effective (decayed) reviews behind the item's own baseline
    category_prior: float
    lower: float  # Wilson lower bound of the window's negative share at ``z``
    upper: float  # Wilson upper bound at z_resolve
    z: float  # z_fire for firing messages, z_resolve for resolved ones
    threshold: float  # what the bound was compared with (baseline + margin)
    p_value: float  # exact one-sided binomial P(X >= negative | reviews, baseline)
    reason: str  # firing: "threshold" / "escalated"; resolved: "recovered" / "no_data"
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    llr: float | None = None  # the llr fire test's statistic (nats), when it decided

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ALERT_FORMAT,
            "alert_id": self.alert_id,
            "episode_id": self.episode_id,
            "item_id": self.item_id,
            "category": self.category,
            "state": self.state,
            "severity": self.severity,
            "ts": self.ts,
            "episode_start": self.episode_start,
            "window": {"start": self.window_start, "end": self.window_end},
            "counts": {
                "reviews": self.reviews,
                "negative": self.negative,
                "positive": self.reviews - self.negative,
            },
            "negative_share": _round(self.negative_share, 4),
            "mean_rating": _round(self.mean_rating, 3),
            "baseline": {
                "negative_share": round(self.baseline, 4),
                "item_reviews": round(self.baseline_reviews, 2),
                "category_prior": round(self.category_prior, 4),
            },
            "score": {
                "method": "wilson" if self.llr is None else "llr",
                **({} if self.llr is None else {"llr": round(self.llr, 4)}),
                "lower": round(self.lower, 4),
                "upper": round(self.upper, 4),
                "z": self.z,
                "threshold": round(self.threshold, 4),
                "p_value": float(f"{self.p_value:.4g}"),
            },
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> AlertRecord:
        base, score, counts = value["baseline"], value["score"], value["counts"]
        return cls(
            alert_id=value["alert_id"],
            episode_id=value["episode_id"],
            item_id=value["item_id"],
            category=value["category"],
            state=value["state"],
            severity=value["severity"],
            ts=value["ts"],
            episode_start=value["episode_start"],
            window_start=value["window"]["start"],
            window_end=value["window"]["end"],
            reviews=counts["reviews"],
            negative=counts["negative"],
            negative_share=value["negative_share"],
            mean_rating=value["mean_rating"],
            baseline=base["negative_share"],
            baseline_reviews=base["item_reviews"],
            category_prior=base["category_prior"],
            lower=score["lower"],
            upper=score["upper"],
            z=score["z"],
            threshold=score["threshold"],
            p_value=score["p_value"],
            reason=value["reason"],
            evidence=tuple(Evidence.from_dict(e) for e in value["evidence"]),
            llr=score.get("llr"),
        )


def encode_alert(alert: AlertRecord) -> bytes:
    """The JSON value written to ``sentiment-alerts``."""
    return orjson.dumps(alert.to_dict())


def decode_alert(raw: bytes) -> AlertRecord:
    """Inverse of :func:`encode_alert` (floats come back rounded as written)."""
    return AlertRecord.from_dict(orjson.loads(raw))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
