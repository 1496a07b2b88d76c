"""The worker's hot path in Rust (``native/``, module ``ecomstream_native``).

Why: in Python the behaviour flow cost about 50 µs of CPU per event
(``python -m benchmarks.behaviour_cpu --native off``), spread over dict look-ups and
small objects that Python cannot make cheaper, against a budget of about 33 µs for
30,000 events/s on one worker. Two pieces move to Rust, each computing exactly what
the Python reference computes — the same floating-point operations in the same
order, the same JSON bytes:

* :class:`NativeItemIndex` — the worker's item replica (fed the ``items`` changelog
  with ``put_encoded``) and :func:`~ecomstream.recommend.recommender.rank` over it;
* :class:`NativeBehaviour` — profiles held in Rust: the update rules of
  :mod:`ecomstream.profiles`, the pipeline's item deltas and debounce
  (:func:`~ecomstream.recommend.pipeline.process_events`), the update JSON and the
  changelog bytes of :mod:`ecomstream.profiles.codec`, so either implementation reads
  a profile the other wrote; and a validation fast path: a message the schemas of
  :mod:`ecomstream.events` plainly accept is parsed and checked in Rust, any other
  goes to the Python decoder, which accepts it or gives the dead letter its reason
  (so the fast path can refuse more than pydantic, never accept more).

The Python code stays the specification, used by the offline evaluation, the replay
tools and the tests; ``tests/unit/recommend/test_native.py`` and
``tests/unit/dataflows/test_behaviour_native.py`` compare the two byte for byte.
``ECOMSTREAM_NATIVE`` chooses: ``auto`` (default) uses Rust when the extension is
built, ``on`` requires it, ``off`` runs the Python reference. Float sums follow
CPython 3.11 (``sum`` became compensated in 3.12; the tests would show a difference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from ecomstream.events import ClickEvent, Event, Limits, PurchaseEvent
from ecomstream.processing import TableSpec
from ecomstream.profiles.config import CARTED
from ecomstream.profiles.profile import UserProfile
from ecomstream.profiles.scores import ReviewScore
from ecomstream.recommend.items import (
    DEFAULT_ITEM_CONFIG,
    ItemConfig,
    ItemIndex,
    ItemRecord,
    encode_item,
)
from ecomstream.recommend.pipeline import DEFAULT_PIPELINE_CONFIG, PipelineConfig
from ecomstream.recommend.recommender import (
    DEFAULT_RECOMMENDER_CONFIG,
    RECENT_REASONS,
    RankedItem,
    RecommenderConfig,
    excluded_items,
    update_id,
)

try:
    import ecomstream_native as _native
except ImportError:  # built by `make setup` (pip install ./native); optional elsewhere
    _native = None

# The RecommenderConfig fields the native ranking reads as they are.
_RANK_FIELDS: Final = (
    "k",
    "neighbours_per_seed",
    "per_category",
    "w_covis",
    "w_popular",
    "w_recent",
    "w_shop",
    "diversity",
    "max_per_category",
    "use_sentiment",
    "sentiment_pseudo_reviews",
    "sentiment_exponent",
    "sentiment_floor",
    "sentiment_ceiling",
    "incident_multiplier",
    "demote_below",
    "praise_above",
)
# (profiles touched, [(item key, delta value)], [(user_id, event_id, ts, purchased)],
#  applied, duplicates)
Processed = tuple[
    dict[str, Any], list[tuple[bytes, bytes]], list[tuple[str, str, int, bool]], int, int
]
PROFILES_TABLE: Final = "profiles"  # the behaviour flow's table, whichever the implementation
Choice = Literal["auto", "on", "off"]  # Settings.native (ECOMSTREAM_NATIVE)


def available() -> bool:
    """Whether the extension is built and importable."""
    return _native is not None


def wanted(choice: Choice = "auto") -> bool:
    """Whether the worker's replica should be native: ``auto`` when built, ``on`` always.

    >>> wanted("off")
    False
    """
    if choice == "off":
        return False
    if choice == "on" and not available():
        raise RuntimeError("ECOMSTREAM_NATIVE=on, but ecomstream_native is not built (make setup)")
    return available()


def replica_index(
    config: ItemConfig = DEFAULT_ITEM_CONFIG, choice: Choice = "auto"
) -> ItemIndex | NativeItemIndex:
    """The index a worker's replica uses: native when :func:`wanted`."""
    return NativeItemIndex(config) if wanted(choice) else ItemIndex(config)


class NativeItemIndex:
    """The replica's records in Rust; answers :func:`~ecomstream.recommend.recommender.rank`."""

    def __init__(self, config: ItemConfig = DEFAULT_ITEM_CONFIG) -> None:
        if _native is None:
            raise RuntimeError("ecomstream_native is not built: pip install ./native")
        self.config = config
        self._index = _native.ItemIndex(
            config.half_life_ms, config.sentiment_half_life_ms, config.category_top
        )
        # Native parameters per (recommender config, item config) pair; configs are frozen.
        self._configs: dict[tuple[int, int], tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._index)

    def put_encoded(self, raw: bytes) -> None:
        """Install a value of the ``items`` table's changelog (replaces the item's record)."""
        self._index.put_encoded(raw)

    def put(self, record: ItemRecord) -> None:
        self._index.put_encoded(encode_item(record))

    def get(self, item_id: str) -> ItemRecord | None:
        """A copy of the item's record (slow path: for inspection, not for ranking)."""
        fields = self._index.fields(item_id)
        if fields is None:
            return None
        r = ItemRecord(item_id)
        (r.category, r.lm, r.pop, r.nb, r.nb_total, r.price) = fields[:6]
        (r.slm, r.neg, r.pos, r.reviews, r.incident, r.alert_ts) = fields[6:]
        return r

    def top(self, category: str, n: int) -> list[tuple[str, float]]:
        return self._index.top(category, n)

    def sentiment_prior(self, now: int) -> float:
        return self._index.sentiment_prior()

    def _native_config(self, config: RecommenderConfig, item_config: ItemConfig) -> Any:
        key = (id(config), id(item_config))
        found = self._configs.get(key)
        if found is None or found[0] is not config or found[1] is not item_config:
            native = _native.RankConfig(
                **{name: getattr(config, name) for name in _RANK_FIELDS},
                recent_half_life_ms=config.recent_half_life_s * 1000.0,
                carted=CARTED,
                sentiment_half_life_ms=item_config.sentiment_half_life_ms,
                recent_reasons=dict(RECENT_REASONS),
                seeds=config.seeds,
                held_seeds=config.held_seeds,
                categories=config.categories,
                exclude_bought_ms=(
                    round(config.exclude_bought_s * 1000) if config.exclude_bought_s > 0 else None
                ),
                sentiment_spares=config.sentiment_spares,
            )
            found = self._configs[key] = (config, item_config, native)  # held: ids stay unique
        return found[2]

    def rank(
        self,
        profile: UserProfile,
        now: int,
        config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
        item_config: ItemConfig = DEFAULT_ITEM_CONFIG,
    ) -> tuple[RankedItem, ...]:
        """What :func:`~ecomstream.recommend.recommender.rank` returns for this index."""
        spares = config.sentiment_spares
        spared = (
            [item for item, entry in profile.seen.items() if entry[1] >= spares]
            if spares is not None
            else []
        )
        rows = self._index.rank(
            self._native_config(config, item_config),
            now,
            profile.seed_entries(config.seeds, config.held_seeds),
            profile.top_categories(config.categories) if config.w_popular else [],
            list(excluded_items(profile, now, config)),
            spared,
        )
        return tuple(
            RankedItem(item, category, round(score, 6), tuple(reasons))
            for item, category, score, reasons in rows
        )


class NativeBehaviour:
    """The behaviour flow's hot path over profiles held in Rust: what
    :class:`~ecomstream.dataflows.BehaviourFlow` runs when its replica is native.

    :meth:`process_messages` is triage plus
    :func:`~ecomstream.recommend.pipeline.process_events`,
    :meth:`recommend` is ``recommend(...).to_json()`` and :attr:`table` holds the
    profiles with the codec's bytes (:mod:`ecomstream.profiles.codec`), all identical
    to the Python reference; the Python code remains the specification and the tests
    compare the two (``tests/unit/recommend/test_native.py``).
    """

    def __init__(
        self,
        index: NativeItemIndex,
        pipeline: PipelineConfig = DEFAULT_PIPELINE_CONFIG,
        recommender: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
    ) -> None:
        p, i = pipeline.profile, pipeline.items
        self.index = index
        self.kernel = _native.BehaviourKernel(
            interest_half_life_ms=p.interest_half_life_ms,
            max_categories=p.max_categories,
            recent_seen=p.recent_seen,
            recent_bought=p.recent_bought,
            session_items=p.session_items,
            windows=[(w.name, w.bucket_ms, w.buckets) for w in p.windows],
            price_alpha=p.price_alpha,
            review_interest=p.review_interest,
            interest_weights=p.interest_weights,
            strengths=p.strengths,
            debounce_ms=p.debounce_ms,
            cart_triggers=p.cart_triggers,
            signature_categories=p.signature_categories,
            signature_items=p.signature_items,
            min_new_items=p.min_new_items,
            item_half_life_ms=i.half_life_ms,
            pop_weights=i.pop_weights,
            covisit_decay=i.covisit_decay,
            debounce=pipeline.debounce,
            click=ClickEvent,
            purchase=PurchaseEvent,
        )
        self.rank_config = index._native_config(recommender, i)
        self.table: TableSpec[Any] = TableSpec(
            PROFILES_TABLE, encode=self.kernel.encode, decode=self.kernel.decode, mutable=True
        )

    def process_messages(
        self,
        load: Callable[[str], Any],
        messages: list[tuple[str, int, int, bytes | None]],
        decode: Callable[[int], Event | None],
        limits: Limits,
    ) -> tuple[Processed, dict[str, int], int]:
        """Triage and :func:`~ecomstream.recommend.pipeline.process_events` over
        ``(topic, partition, offset, value)``.

        Rust parses and validates the plainly valid messages itself, exactly as the
        schemas of :mod:`ecomstream.events` accept them (the tests compare); every other
        goes to ``decode(index)`` — the Python decoder, which returns the event or None
        for a refused one. Returns ``(outcome, events accepted per topic, newest ts)``.
        """
        return self.kernel.process_messages(
            load, messages, decode, limits.max_message_bytes, limits.max_review_chars
        )

    def process_review_scores(
        self, load: Callable[[str], Any], scores: list[tuple[ReviewScore, str, int, int]]
    ) -> dict[str, Any]:
        """The profiles touched (review scores re-keyed by user; see ``process_review_scores``)."""
        rows = [(s.user_id, s.p_positive, s.ts, topic, part, off) for s, topic, part, off in scores]
        profiles, _, _ = self.kernel.process_review_scores(load, rows)
        return profiles

    def recommend(self, profile: Any, user_id: str, event_id: str, ts: int) -> bytes:
        """The ``recommendation-updates`` value a trigger causes."""
        return self.kernel.recommend(
            self.index._index, profile, self.rank_config, update_id(user_id, event_id), event_id, ts
        )
