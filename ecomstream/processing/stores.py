"""A table partition kept in RocksDB, with its hot keys decoded in memory.

Why: in-memory tables cost ~5 KB per user profile (about 5 GB for a million
users); RocksDB keeps the encoded values (~0.5 KB) on disk and only the
recently used keys stay decoded. The changelog stays the source of truth:
the database is created empty and filled from the changelog on recovery, so
a crash never leaves it ahead of or behind what was committed.

The in-memory part is a write-back LRU cache: values are read and changed
in place there, and only written to RocksDB when evicted. Eviction happens
in :meth:`RocksStore.trim`, which the processor calls between batches, never
while a handler may still hold a value.

>>> import tempfile
>>> store = RocksStore(Path(tempfile.mkdtemp()) / "t", str.encode, bytes.decode, cache_keys=2)
>>> for k in "abc":
...     store[k] = k * 3
>>> store.trim()  # 'a' goes to disk, decoded again on the next read
>>> store["a"], len(store), sorted(store)
('aaa', 3, ['a', 'b', 'c'])
>>> del store["b"]; store.put_encoded(b"d", b"dd"); store.put_encoded(b"c", None)
>>> sorted(store.items())
[('a', 'aaa'), ('d', 'dd')]
>>> store.close()
"""

from __future__ import annotations

import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from rocksdict import Options, Rdict, WriteBatch

V = TypeVar("V")
_MISSING: Any = object()


class RocksStore(MutableMapping[str, V], Generic[V]):
    def __init__(
        self,
        path: Path,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        *,
        cache_keys: int = 25_000,
    ) -> None:
        shutil.rmtree(path, ignore_errors=True)  # the changelog fills it; old files are stale
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), Options(raw_mode=True))
        self._encode = encode
        self._decode = decode
        self._cache: OrderedDict[str, V] = OrderedDict()
        self._cache_keys = cache_keys
        self._size = 0

    def get(self, key: str, default: Any = None) -> Any:
        cache = self._cache
        value = cache.get(key, _MISSING)
        if value is not _MISSING:
            cache.move_to_end(key)
            return value
        raw = self._db.get(key.encode())
        if raw is None:
            return default
        value = cache[key] = self._decode(raw)
        return value

    def __getitem__(self, key: str) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._cache or key.encode() in self._db)

    def __setitem__(self, key: str, value: V) -> None:
        cache = self._cache
        if key not in cache and key.encode() not in self._db:
            self._size += 1
        cache[key] = value
        cache.move_to_end(key)

    def __delitem__(self, key: str) -> None:
        in_cache = self._cache.pop(key, _MISSING) is not _MISSING
        raw_key = key.encode()
        on_disk = raw_key in self._db
        if not (in_cache or on_disk):
            raise KeyError(key)
        if on_disk:
            del self._db[raw_key]
        self._size -= 1

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[str]:
        cached = list(self._cache)
        for raw in self._db.keys():  # noqa: SIM118  (iter() fails in raw mode)
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if key not in self._cache:
                yield key
        yield from cached

    def put_encoded(self, key: bytes, value: bytes | None) -> None:
        """Recovery: apply one changelog record without decoding it (None deletes)."""
        name = key.decode()
        if value is None:
            if name in self:
                del self[name]
            return
        if self._cache.pop(name, _MISSING) is _MISSING and key not in self._db:
            self._size += 1
        self._db[key] = value

    def trim(self) -> None:
        """Write the least recently used values back to disk until the cache fits."""
        excess = len(self._cache) - self._cache_keys
        if excess <= 0:
            return
        batch = WriteBatch(raw_mode=True)
        encode, cache = self._encode, self._cache
        for _ in range(excess + self._cache_keys // 10):  # some slack: not every batch
            if not cache:
                break
            key, value = cache.popitem(last=False)
            batch.put(key.encode(), encode(value))
        self._db.write(batch)

    def close(self) -> None:
        """Close and delete the database (its content lives on in the changelog)."""
        self._cache.clear()
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
