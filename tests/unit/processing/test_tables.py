"""Tables, changelog encoding, commit snapshots and recovery: the parts that need no broker."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from ecomstream.processing.changelog import changelog_topic, encode_changes
from ecomstream.processing.commit import snapshot
from ecomstream.processing.context import BatchContext, OutputRecord
from ecomstream.processing.tables import PartitionStore, TableSpec, TableView

COUNTS = TableSpec[int]("counts", encode=lambda v: str(v).encode(), decode=lambda b: int(b))
LISTS = TableSpec[list[str]](
    "lists",
    encode=lambda v: ",".join(v).encode(),
    decode=lambda b: b.decode().split(",") if b else [],
    mutable=True,
)


def test_writes_mark_keys_dirty_reads_do_not() -> None:
    store: PartitionStore[int] = PartitionStore()
    counts = TableView("counts", store)
    counts["a"] = 1
    counts["a"] = counts["a"] + 1
    counts.setdefault("b", 5)
    assert store.dirty == {"a", "b"}
    store.take_dirty()
    assert counts.get("a") == 2 and counts["b"] == 5 and "a" in counts
    assert counts.setdefault("b", 7) == 5
    assert counts.get("missing", 0) == 0 and counts.get("missing") is None
    assert store.dirty == set()  # reads of an immutable table are free
    assert sorted(counts) == ["a", "b"] and len(counts) == 2


def test_deletes_and_pops_mark_dirty() -> None:
    store: PartitionStore[int] = PartitionStore()
    counts = TableView("counts", store)
    counts.update({"a": 1, "b": 2, "c": 3})
    store.take_dirty()
    del counts["a"]
    assert counts.pop("b") == 2
    assert counts.pop("zz", -1) == -1
    with pytest.raises(KeyError):
        counts.pop("zz")
    with pytest.raises(KeyError):
        del counts["zz"]
    assert store.dirty == {"a", "b"}
    assert store.data == {"c": 3}


def test_mutable_table_reads_count_as_writes_and_touch_marks() -> None:
    store: PartitionStore[list[str]] = PartitionStore()
    store.data["u"] = ["x"]
    lists = TableView("lists", store, mutable=True)
    lists.get("u", []).append("y")
    assert store.dirty == {"u"}
    store.take_dirty()
    lists.setdefault("u", []).append("z")
    assert store.dirty == {"u"}
    store.take_dirty()
    assert lists.get("nobody") is None and store.dirty == set()  # absent keys are not dirtied
    plain: PartitionStore[list[str]] = PartitionStore()
    plain.data["u"] = []
    TableView("lists", plain).touch("u")
    assert plain.dirty == {"u"}


def test_changelog_has_one_record_per_key_and_tombstones() -> None:
    store: PartitionStore[int] = PartitionStore()
    counts = TableView("counts", store)
    for _ in range(10):
        counts["a"] = counts.get("a", 0) + 1
    counts["b"] = 1
    del counts["b"]
    counts["c"] = 3
    records = sorted(encode_changes(COUNTS, store, store.take_dirty()))
    assert records == [(b"a", b"10"), (b"b", None), (b"c", b"3")]
    assert store.dirty == set()


def test_recovery_replays_last_write_per_key_and_deletes() -> None:
    log = [(b"a", b"1"), (b"b", b"1"), (b"a", b"5"), (b"b", None), (None, b"junk"), (b"c", b"2")]
    store: PartitionStore[int] = PartitionStore()
    assert store.restore(log, COUNTS.decode) == len(log)
    assert store.data == {"a": 5, "c": 2}
    assert store.dirty == set()


def test_recovery_of_what_a_commit_wrote_gives_the_same_state() -> None:
    store: PartitionStore[int] = PartitionStore()
    counts = TableView("counts", store)
    log: list[tuple[bytes | None, bytes | None]] = []
    for step in range(5):  # five commits
        for i in range(20):
            key = f"k{(i * 7 + step) % 13}"
            counts[key] = counts.get(key, 0) + 1
        if step % 2:
            counts.pop("k3", None)
        log += encode_changes(COUNTS, store, store.take_dirty())
    recovered: PartitionStore[int] = PartitionStore()
    recovered.restore(log, COUNTS.decode)
    assert recovered.data == store.data


def test_snapshot_takes_dirty_keys_outputs_and_moved_offsets() -> None:
    stores = {0: {"counts": PartitionStore[int]()}, 1: {"counts": PartitionStore[int]()}}
    outputs: list[OutputRecord] = []
    ctx = BatchContext(0, {"counts": COUNTS}, stores[0], outputs)
    table = ctx.table(COUNTS)
    table["a"] = 1
    table["a"] = 2
    ctx.send("out", b"a", b"2")
    positions = {TopicPartition("in", 0): 10, TopicPartition("in", 1): 4}
    committed = {TopicPartition("in", 1): 4}
    changelogs = {"counts": changelog_topic("g", "counts")}
    payload = snapshot(changelogs, {"counts": COUNTS}, stores, outputs, positions, committed)
    assert payload.changelog == {TopicPartition("g-counts-changelog", 0): [(b"a", b"2")]}
    assert payload.offsets == {TopicPartition("in", 0): 10}
    assert payload.outputs == [OutputRecord("out", b"a", b"2")]
    assert stores[0]["counts"].dirty == set()
    again = snapshot(changelogs, {"counts": COUNTS}, stores, [], positions, positions)
    assert again.empty


def test_context_tables_by_name_or_spec_and_touch() -> None:
    stores: dict[str, PartitionStore[Any]] = {
        "counts": PartitionStore[int](),
        "lists": PartitionStore[list[str]](),
    }
    specs: dict[str, TableSpec[Any]] = {"counts": COUNTS, "lists": LISTS}
    ctx = BatchContext(3, specs, stores, [])
    assert ctx.partition == 3
    assert ctx.table("counts") is ctx.table(COUNTS)
    ctx.table(LISTS)["u"] = ["a"]
    ctx.touch("counts", "x")
    assert stores["counts"].dirty == {"x"} and stores["lists"].dirty == {"u"}
    with pytest.raises(KeyError, match="no table"):
        ctx.table("nope")
    with pytest.raises(ValueError):
        ctx.send("out", None, None)


def test_table_names_are_checked() -> None:
    with pytest.raises(ValueError):
        TableSpec[int]("has space", encode=str.encode, decode=bytes.decode)  # type: ignore[arg-type]
