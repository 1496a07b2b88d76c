"""Item-side state, the recommender, the batch pipeline and the offline evaluation.

Keying and partitioning with several workers
--------------------------------------------
* **User side — partitioned by user_id.** The profile table is keyed by user_id and
  co-partitioned with ``clicks`` / ``purchases`` / ``reviews`` (all keyed by user_id, same
  partition count): a user's events and profile live on one worker, the profile is
  read and written locally, once per batch, and the changelog restores it.
  ``review-scores`` (keyed by item_id) reaches the profile side only through a
  repartition by user_id (``apply_review_score`` for the average sentiment).
* **Item side — single writer per item, read replicated.** Item records are *written*
  by the owner of their item_id partition: the user side sends each batch's
  :class:`~ecomstream.recommend.items.ItemDelta` (one per touched item, keyed by
  item_id) to an internal topic; ``review-scores`` and ``sentiment-alerts`` are
  already keyed by item_id. The owner's table changelog (compacted, one record per
  item) is *read* by every worker as a global table, and each worker's
  :class:`~ecomstream.recommend.items.ItemIndex` (or its Rust twin,
  :class:`~ecomstream.recommend.native.NativeItemIndex`, which also ranks) installs the
  records (``put_encoded``) and derives the per-category popularity lists and the
  shop-wide sentiment prior.
* Why: the recommender, running where the user is, needs any item's neighbours,
  popularity and sentiment without a network hop, and item state is bounded per item
  (measured: ~1.7 KB encoded, ~4.5 KB as Python objects with 50–75 neighbours), so a
  replica per worker is affordable up to ~10⁵ items (~0.5 GB); for larger catalogues
  lower ``max_neighbours`` (ranking reads only ``neighbours_per_seed`` = 10 per item).
  A replicated table written by several workers would lose concurrent updates (last
  write wins); one owner per item does not.
  Replicas lag by the item processor's commit interval (500 ms by default: each commit
  writes every touched item's whole record, and every replica installs it) plus the
  changelog round trip, which a recommendation tolerates.
* The logic does not depend on this choice: deltas are commutative forward-decayed
  sums (any grouping or order gives the same record up to float rounding), and the
  owner path and the replica path of ``ItemIndex`` answer identically. A single
  worker (tests, replay) simply applies the deltas to its own ``ItemIndex``.

Modules: :mod:`~ecomstream.recommend.items`, :mod:`~ecomstream.recommend.pipeline`,
:mod:`~ecomstream.recommend.recommender`, :mod:`~ecomstream.recommend.evaluate` (one
recording), :mod:`~ecomstream.recommend.metrics` (HR, NDCG, the paired test),
:mod:`~ecomstream.recommend.seeds` (the evaluation over several simulator seeds),
:mod:`~ecomstream.recommend.native` (the replica and ranking in Rust, identical lists).
"""

from ecomstream.recommend.items import (
    ALL,
    DEFAULT_ITEM_CONFIG,
    CategoryTop,
    ItemConfig,
    ItemDelta,
    ItemIndex,
    ItemRecord,
    ItemView,
    alert_state,
    apply_alert,
    apply_delta,
    apply_review_score,
    decode_delta,
    decode_item,
    encode_delta,
    encode_item,
)
from ecomstream.recommend.pipeline import (
    DEFAULT_PIPELINE_CONFIG,
    BatchOutcome,
    PipelineConfig,
    ProfileCache,
    Trigger,
    process_batch,
    process_events,
    process_review_scores,
)
from ecomstream.recommend.recommender import (
    DEFAULT_RECOMMENDER_CONFIG,
    RankedItem,
    RecommendationUpdate,
    RecommenderConfig,
    is_spared,
    rank,
    recommend,
    recommend_popular,
    sentiment_multiplier,
    update_id,
)

__all__ = [
    "ALL",
    "DEFAULT_ITEM_CONFIG",
    "DEFAULT_PIPELINE_CONFIG",
    "DEFAULT_RECOMMENDER_CONFIG",
    "BatchOutcome",
    "CategoryTop",
    "ItemConfig",
    "ItemDelta",
    "ItemIndex",
    "ItemRecord",
    "ItemView",
    "PipelineConfig",
    "ProfileCache",
    "RankedItem",
    "RecommendationUpdate",
    "RecommenderConfig",
    "Trigger",
    "alert_state",
    "apply_alert",
    "apply_delta",
    "apply_review_score",
    "decode_delta",
    "decode_item",
    "encode_delta",
    "encode_item",
    "is_spared",
    "process_batch",
    "process_events",
    "process_review_scores",
    "rank",
    "recommend",
    "recommend_popular",
    "sentiment_multiplier",
    "update_id",
]
