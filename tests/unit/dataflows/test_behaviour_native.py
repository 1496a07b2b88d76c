"""The behaviour flow over native profiles writes exactly what the Python flow writes.

Every output (item deltas, recommendation updates, dead letters) and every changelog
record of the profiles table is compared byte for byte, over a simulated shop with
the things a stream really carries: malformed messages, a redelivered batch, late
events, review scores re-keyed by user, and a restart that rebuilds the profiles
from their changelog bytes (written by one implementation, read by the other).
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from ecomstream.config import Settings
from ecomstream.dataflows import BehaviourFlow, ItemFlow, TopicNames
from ecomstream.dataflows.items import ITEMS
from ecomstream.events import ReviewEvent
from ecomstream.processing import BatchContext, OutputRecord, PartitionStore
from ecomstream.processing.commit import snapshot
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.recommend import native
from ecomstream.recommend.items import ItemIndex
from ecomstream.simulator.config import IncidentSpec, SimConfig
from ecomstream.simulator.shop import generate

pytestmark = pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")

NAMES = TopicNames.from_settings(Settings())
Rec = ConsumerRecord[bytes, bytes]


def _stream(seed: int) -> list[list[Rec]]:
    """Batches of input records on partition 0, as a consumer would see them."""
    rng = random.Random(seed)
    config = SimConfig(
        seed=seed,
        users=300,
        items=90,
        events=12_000,
        duration_s=None,
        review_delay_median_s=30.0,
        incidents=(IncidentSpec("i0002", 120.0),),
    )
    offsets: dict[str, int] = {}
    records: list[Rec] = []

    def add(topic: str, key: bytes, value: bytes) -> None:
        offset = offsets[topic] = offsets.get(topic, -1) + 1
        records.append(ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, 0, 0, []))

    for n, sim in enumerate(generate(config)):
        event = sim.event
        if rng.random() < 0.03:  # late: up to 20 minutes behind its neighbours
            event = event.model_copy(update={"ts": event.ts - rng.randrange(1, 1_200_000)})
        add(sim.topic, sim.key.encode(), event.to_json())
        if isinstance(event, ReviewEvent):  # its score, re-keyed by user
            negative = event.rating <= 2
            score = {
                "review_id": event.review_id,
                "user_id": event.user_id,
                "item_id": event.item_id,
                "category": event.category,
                "label": "negative" if negative else "positive",
                "probabilities": {"negative": 0.9 if negative else 0.2},
                "ts": event.ts + 1_000,
            }
            add(NAMES.review_scores_by_user, sim.key.encode(), orjson.dumps(score))
        if n % 997 == 0:  # malformed: a dead letter, never a crash
            add(NAMES.clicks, b"u-bad", b'{"event_id": "x", "ts": "yesterday"}')
    batches = [records[i : i + 400] for i in range(0, len(records), 400)]
    batches.insert(7, batches[5])  # redelivered after a crash: every event a duplicate
    return batches


def _stable(topic: str, value: bytes | None) -> bytes | None:
    """The value without what differs between any two runs: a dead letter's wall-clock ts."""
    if topic != NAMES.dead_letters or value is None:
        return value
    return orjson.dumps({k: v for k, v in orjson.loads(value).items() if k != "ts"})


class _Worker:
    """One worker's behaviour and item flows over in-memory stores, the replica fed
    from the items table's changelog as the real replica is."""

    def __init__(self, choice: native.Choice) -> None:
        self.replica = native.replica_index(choice=choice)
        self.behaviour = BehaviourFlow(NAMES, self.replica)
        self.items = ItemFlow(NAMES)
        self.b_specs = {t.name: t for t in self.behaviour.tables}
        self.i_specs = {t.name: t for t in self.items.tables}
        self.b_stores = {0: {name: PartitionStore[Any]() for name in self.b_specs}}
        self.i_stores = {0: {name: PartitionStore[Any]() for name in self.i_specs}}
        self.outputs: list[tuple[str, bytes | None, bytes | None]] = []
        self.changelog: list[list[tuple[bytes | None, bytes | None]]] = []

    def batch(self, records: list[Rec]) -> None:
        out: list[OutputRecord] = []
        self.behaviour(BatchContext(0, self.b_specs, self.b_stores[0], out), records)
        payload = snapshot({s: s for s in self.b_specs}, self.b_specs, self.b_stores, [], {}, {})
        for records_of in payload.changelog.values():
            self.changelog.append(sorted(records_of, key=lambda kv: kv[0] or b""))
        deltas = [
            ConsumerRecord(o.topic, 0, i, 0, 0, o.key, o.value, None, 0, 0, [])
            for i, o in enumerate(out)
            if o.topic == NAMES.item_deltas
        ]
        self.outputs += [(o.topic, o.key, _stable(o.topic, o.value)) for o in out]
        item_out: list[OutputRecord] = []
        self.items(BatchContext(0, self.i_specs, self.i_stores[0], item_out), deltas)
        items = snapshot({s: s for s in self.i_specs}, self.i_specs, self.i_stores, [], {}, {})
        for tp, records_of in items.changelog.items():
            if tp.topic == ITEMS.name:
                for _, value in sorted(records_of, key=lambda kv: kv[0] or b""):
                    if value is not None:
                        self.replica.put_encoded(value)

    def restart_from(self, encoded: dict[bytes, bytes]) -> None:
        """Rebuild the profiles table from changelog bytes, as recovery does."""
        spec = self.behaviour.tables[0]
        store = PartitionStore[Any]()
        store.restore(encoded.items(), spec.decode)
        self.b_stores[0][spec.name] = store

    def profiles(self) -> dict[bytes, bytes]:
        spec = self.behaviour.tables[0]
        return {k.encode(): spec.encode(v) for k, v in self.b_stores[0][spec.name].data.items()}


@pytest.mark.parametrize("seed", [5, 6])
def test_native_and_python_flows_write_the_same_bytes(seed: int) -> None:
    batches = _stream(seed)
    python, rust = _Worker("off"), _Worker("on")
    assert isinstance(python.replica, ItemIndex)
    assert isinstance(rust.replica, native.NativeItemIndex)
    for n, records in enumerate(batches):
        python.batch(records)
        rust.batch(records)
        if n == len(batches) // 2:  # restart: each reads the profiles the *other* wrote
            from_python, from_rust = python.profiles(), rust.profiles()
            assert from_python == from_rust
            python.restart_from(from_rust)
            rust.restart_from(from_python)
    assert python.outputs == rust.outputs
    assert python.changelog == rust.changelog
    assert python.profiles() == rust.profiles()
    topics = {topic for topic, _, _ in rust.outputs}
    assert topics == {NAMES.item_deltas, NAMES.recommendation_updates, NAMES.dead_letters}


def test_the_native_codec_reads_and_writes_the_python_bytes() -> None:
    worker = _Worker("off")
    for records in _stream(7)[:12]:
        worker.batch(records)
    kernel = native.NativeBehaviour(native.NativeItemIndex()).kernel
    profiles = worker.profiles()
    assert len(profiles) > 200
    for raw in profiles.values():
        assert kernel.encode(kernel.decode(raw)) == raw
        assert encode_profile(decode_profile(raw)) == raw
    with pytest.raises(ValueError, match="unknown profile version"):
        kernel.decode(b'{"v":9,"u":"u1","t":1,"l":1}')


T0 = 1_767_225_600_000
VALID: dict[str, dict[str, Any]] = {
    "clicks": {"event_id": "e", "user_id": "u1", "ts": T0, "session_id": "s", "item_id": "i1",
               "category": "books", "action": "add_to_cart"},
    "purchases": {"event_id": "e", "user_id": "u1", "ts": T0, "order_id": "o1", "item_id": "i1",
                  "category": "books", "price": 12.5, "quantity": 2},
    "reviews": {"event_id": "e", "user_id": "u1", "ts": T0, "review_id": "r1", "item_id": "i1",
                "category": "books", "rating": 4, "text": "好", "lang": "zh"},
}  # fmt: skip
# (field, value): None deletes the field. Valid and invalid, the edges of every rule.
MUTATIONS: list[tuple[str, Any]] = [
    ("extra", {"nested": [1, None, "x"]}), ("campaign", None), ("campaign", "spring"),
    ("campaign", 3), ("event_id", None), ("event_id", ""), ("event_id", "x" * 128),
    ("event_id", "x" * 129), ("event_id", "é" * 128), ("event_id", "😀" * 129), ("user_id", 7),
    ("user_id", None), ("user_id", "ü"), ("ts", None), ("ts", True), ("ts", 1.7e12),
    ("ts", str(T0)), ("ts", 946_684_800_000), ("ts", 946_684_799_999), ("ts", 4_102_444_800_000),
    ("ts", 4_102_444_799_999), ("ts", 2**70), ("ts", -1), ("session_id", None),
    ("action", "VIEW"), ("action", "wishlist"), ("action", "remove_from_cart"), ("action", 1),
    ("action", None), ("item_id", ["i1"]), ("category", ""), ("category", "c" * 129),
    ("price", 45), ("price", 0), ("price", -0.01), ("price", 1_000_000), ("price", 1_000_000.5),
    ("price", "12.5"), ("price", True), ("price", None), ("quantity", 0), ("quantity", 10_000),
    ("quantity", 10_001), ("quantity", 2.0), ("quantity", False), ("rating", 0), ("rating", 5),
    ("rating", 6), ("rating", 4.0), ("text", None), ("text", ""), ("text", "长" * 5_000),
    ("text", "长" * 5_001), ("text", 5), ("lang", None), ("lang", "e"), ("lang", "en"),
    ("lang", "x" * 16), ("lang", "x" * 17), ("order_id", None), ("review_id", ""),
]  # fmt: skip
RAW: list[bytes] = [
    b"", b"null", b"[]", b'"x"', b"{", b"\xff\xfe", b" {}", b"{}",
    b'{"event_id":"e","user_id":"u\\u0031","ts":1767225600000,"session_id":"s","item_id":"i1",'
    b'"category":"b\\"ooks","action":"view"}',
    b'{"event_id":"e","event_id":"f","user_id":"u1","ts":1767225600000,"session_id":"s",'
    b'"item_id":"i1","category":"books","action":"view"}',
    b'{"event_id":"e","user_id":"\\ud800","ts":1767225600000,"session_id":"s","item_id":"i1",'
    b'"category":"books","action":"view"}',
    b'{"event_id":"e","user_id":"u1","ts":1767225600000,"session_id":"s","item_id":"i1",'
    b'"category":"books","action":"view"} x',
]  # fmt: skip


def _json(value: Any) -> bytes:
    """Like a producer would write it; stdlib json, which also writes integers past 64 bits."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _mutated() -> list[Rec]:
    records: list[Rec] = []
    for topic, valid in VALID.items():
        variants = [_json(valid)]
        for field, value in MUTATIONS:
            if field not in valid and field not in ("extra", "campaign", "lang"):
                continue
            event = dict(valid)
            if value is None and field not in ("campaign", "lang", "extra"):
                event.pop(field, None)
            else:
                event[field] = value
            variants.append(_json(event))
        variants += RAW
        for n, value in enumerate(variants):
            event_id = f"{topic}-{n}".encode()
            value = value.replace(b'"event_id":"e"', b'"event_id":"' + event_id + b'"', 1)
            key = b"u1"
            records.append(ConsumerRecord(topic, 0, len(records), 0, 0, key, value, None, 0, 0, []))
    return records


def test_the_native_validation_accepts_exactly_what_the_schemas_accept() -> None:
    """Each message alone: accepted with the same values (same profile, same outputs), or
    dead-lettered with the Python decoder's reason."""
    records = _mutated()
    assert len(records) > 150
    outcomes = set()
    for record in records:
        python, rust = _Worker("off"), _Worker("on")
        python.batch([record])
        rust.batch([record])
        assert python.outputs == rust.outputs, record.value
        assert python.profiles() == rust.profiles(), record.value
        outcomes.add(rust.outputs[0][0] == NAMES.dead_letters)
    assert outcomes == {True, False}  # accepted and refused messages were both compared
