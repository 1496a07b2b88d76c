"""Tables: a spec per table, and per-partition in-memory stores that remember what changed.

Why: a batch runtime writes each touched key to the changelog once per
commit, with its latest value, instead of once per event. A store therefore
keeps a set of dirty keys next to its data; the commit encodes exactly those
(a key that is gone becomes a tombstone) and clears the set once the commit
has landed.

Keys are ``str`` (utf-8 in the changelog). Values are anything the spec can
encode; they may be mutable objects changed in place, in which case the
store must be told (see :class:`TableView`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

V = TypeVar("V")
D = TypeVar("D")

_MISSING: Any = object()


@dataclass(frozen=True)
class TableSpec(Generic[V]):
    """A table: its name and how its values become changelog bytes and back.

    ``mutable``: values are objects the handler changes in place (a profile, a
    list). Then every read through the table view (``get``, ``[]``,
    ``setdefault``, ``pop``) marks the key dirty, so an in-place change is
    never lost; reading without writing costs one extra changelog record at
    the next commit. With ``mutable=False`` only assignments and deletes mark
    keys dirty, and an in-place change needs :meth:`TableView.touch`.
    """

    name: str
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]
    mutable: bool = False

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c == "/" for c in self.name):
            raise ValueError(f"bad table name {self.name!r}")


class PartitionStore(Generic[V]):
    """One table's state for one partition: the data and the keys changed since the last commit.

    Deleted keys stay in ``dirty`` while absent from ``data``: that is what
    makes them tombstones at the next commit.
    """

    __slots__ = ("data", "dirty")

    def __init__(self, data: MutableMapping[str, V] | None = None) -> None:
        # A dict, or a RocksStore (ecomstream.processing.stores) for tables bigger than memory.
        self.data: MutableMapping[str, V] = {} if data is None else data
        self.dirty: set[str] = set()

    def trim(self) -> None:
        """Between batches: let a disk-backed store write back its least used values."""
        trim = getattr(self.data, "trim", None)
        if trim is not None:
            trim()

    def close(self) -> None:
        """Release a disk-backed store's files (its content lives on in the changelog)."""
        close = getattr(self.data, "close", None)
        if close is not None:
            close()

    def __len__(self) -> int:
        return len(self.data)

    def take_dirty(self) -> set[str]:
        """The dirty keys (a copy), clearing them: what a commit snapshots.

        The set object itself stays, so views made earlier keep tracking.
        """
        dirty = self.dirty.copy()
        self.dirty.clear()
        return dirty

    def restore(
        self, records: Iterable[tuple[bytes | None, bytes | None]], decode: Callable[[bytes], V]
    ) -> int:
        """Apply changelog records in log order (a ``None`` value deletes); return how many.

        Recovery is "last write wins per key", which is exactly what a
        compacted changelog keeps. Records without a key are skipped.
        """
        data = self.data
        put_encoded = getattr(data, "put_encoded", None)
        count = 0
        for key, value in records:
            count += 1
            if key is None:
                continue
            if put_encoded is not None:  # on disk: stays encoded until read
                put_encoded(key, value)
                continue
            name = key.decode()
            if value is None:
                data.pop(name, None)
            else:
                data[name] = decode(value)
        return count


class TableView(MutableMapping[str, V]):
    """What a handler sees of one table in one partition: a dict whose writes mark keys dirty.

    ``view[k] = v``, ``del view[k]``, ``pop``, ``setdefault`` (when it inserts)
    and ``touch(k)`` mark ``k`` dirty. For a table declared ``mutable``, every
    read of a present key marks it dirty too. Iteration and ``len`` see the
    partition's data as it is now.
    """

    __slots__ = ("_data", "_dirty", "_mutable", "name")

    def __init__(self, name: str, store: PartitionStore[V], mutable: bool = False) -> None:
        self.name = name
        self._data = store.data
        self._dirty = store.dirty
        self._mutable = mutable

    def __getitem__(self, key: str) -> V:
        value = self._data[key]
        if self._mutable:
            self._dirty.add(key)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        self._data[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._dirty.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def get(self, key: str, /) -> V | None: ...

    @overload
    def get(self, key: str, /, default: V | D) -> V | D: ...

    def get(self, key: str, /, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if self._mutable:
            self._dirty.add(key)
        return value

    def setdefault(self, key: str, default: V) -> V:
        data = self._data
        value = data.get(key, _MISSING)
        if value is _MISSING:
            data[key] = value = default
            self._dirty.add(key)
        elif self._mutable:
            self._dirty.add(key)
        return value

    @overload
    def pop(self, key: str, /) -> V: ...

    @overload
    def pop(self, key: str, /, default: V | D) -> V | D: ...

    def pop(self, key: str, /, default: Any = _MISSING) -> Any:
        value = self._data.pop(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self._dirty.add(key)
        return value

    def touch(self, key: str) -> None:
        """Mark ``key`` changed (after mutating its value in place)."""
        self._dirty.add(key)

    def __repr__(self) -> str:
        return f"<TableView {self.name} keys={len(self._data)} dirty={len(self._dirty)}>"
