"""RocksStore: a table partition in RocksDB with a write-back cache of decoded values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecomstream.processing.stores import RocksStore
from ecomstream.processing.tables import PartitionStore, TableView


def _store(tmp_path: Path, cache_keys: int = 2) -> RocksStore[dict[str, int]]:
    return RocksStore(
        tmp_path / "db",
        lambda v: json.dumps(v).encode(),
        lambda b: json.loads(b),
        cache_keys=cache_keys,
    )


def test_values_changed_in_place_survive_eviction(tmp_path: Path) -> None:
    store = _store(tmp_path, cache_keys=1)
    view = TableView("t", PartitionStore(store), mutable=True)
    for i in range(5):
        view[f"u{i}"] = {"clicks": i}
    profile = view["u0"]
    profile["clicks"] += 10  # changed in place, as the profile flow does
    assert view["u4"] == {"clicks": 4}  # u4 is now the most recent: only it stays decoded
    store.trim()  # between batches: u0 is written back with its change
    reread = store.get("u0")
    assert reread == {"clicks": 10} and reread is not profile  # decoded from disk
    assert len(store) == 5 and sorted(store) == [f"u{i}" for i in range(5)]


def test_sizes_deletes_and_overwrites_count_once(tmp_path: Path) -> None:
    store = _store(tmp_path, cache_keys=1)
    store["a"] = {"n": 1}
    store["b"] = {"n": 2}
    store.trim()  # both on disk, nothing cached
    store["a"] = {"n": 3}  # overwrite of a key that is only on disk
    assert len(store) == 2 and store["a"] == {"n": 3}
    del store["b"]
    assert len(store) == 1 and "b" not in store and store.get("b") is None
    with pytest.raises(KeyError):
        del store["b"]
    with pytest.raises(KeyError):
        store["missing"]


def test_recovery_applies_the_changelog_without_decoding(tmp_path: Path) -> None:
    decoded: list[bytes] = []

    def decode(raw: bytes) -> dict[str, int]:
        decoded.append(raw)
        return dict(json.loads(raw))

    store = RocksStore(tmp_path / "db", lambda v: json.dumps(v).encode(), decode, cache_keys=10)
    partition = PartitionStore(store)
    changelog = [(b"a", b'{"n": 1}'), (b"b", b'{"n": 2}'), (b"a", b'{"n": 3}'), (b"b", None),
                 (None, b"skipped")]  # fmt: skip
    assert partition.restore(changelog, decode) == 5
    assert decoded == []  # stays encoded until read
    assert dict(store.items()) == {"a": {"n": 3}} and len(store) == 1


def test_close_deletes_the_database_and_a_new_store_starts_empty(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store["a"] = {"n": 1}
    store.trim()
    store.close()
    assert not (tmp_path / "db").exists()
    assert len(_store(tmp_path)) == 0  # the changelog, not old files, is the truth
