"""What a handler sees for one (partition, batch): that partition's tables and an output queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, overload

from ecomstream.processing.tables import PartitionStore, TableSpec, TableView

V = TypeVar("V")


class OutputRecord(NamedTuple):
    """A record queued by a handler; written in the next commit (its transaction)."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class BatchContext:
    """Handed to the handler with the records of one input partition.

    - ``partition``: the input partition number; the tables seen are this
      partition's state (inputs are co-partitioned, so every input topic's
      partition ``p`` shares state partition ``p``).
    - ``table(name_or_spec)``: a dict-like :class:`TableView` of that state;
      writes mark keys dirty (see :class:`TableSpec` for in-place changes).
    - ``touch(table, key)``: mark a key changed after mutating its value in place.
    - ``send(topic, key, value)``: queue an output record. It is written in
      the same transaction as the state changes and the input offsets, so a
      ``read_committed`` reader sees it exactly once.

    Views and the context are valid for the duration of the handler call.
    """

    __slots__ = ("_outputs", "_specs", "_stores", "_views", "partition")

    def __init__(
        self,
        partition: int,
        specs: Mapping[str, TableSpec[Any]],
        stores: Mapping[str, PartitionStore[Any]],
        outputs: list[OutputRecord],
    ) -> None:
        self.partition = partition
        self._specs = specs
        self._stores = stores
        self._outputs = outputs
        self._views: dict[str, TableView[Any]] = {}

    @overload
    def table(self, table: TableSpec[V]) -> TableView[V]: ...

    @overload
    def table(self, table: str) -> TableView[Any]: ...

    def table(self, table: str | TableSpec[Any]) -> TableView[Any]:
        name = table if isinstance(table, str) else table.name
        view = self._views.get(name)
        if view is None:
            try:
                spec = self._specs[name]
            except KeyError:
                raise KeyError(f"no table {name!r}; tables: {sorted(self._specs)}") from None
            view = TableView(name, self._stores[name], spec.mutable)
            self._views[name] = view
        return view

    def touch(self, table: str | TableSpec[Any], key: str) -> None:
        """Mark ``key`` of ``table`` changed (its value was mutated in place)."""
        self.table(table).touch(key)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Queue an output record (partitioned by key like the Java client unless ``partition``)."""
        if key is None and value is None:
            raise ValueError("an output record needs a key or a value")
        self._outputs.append(OutputRecord(topic, key, value, partition, timestamp_ms, headers))

    def __repr__(self) -> str:
        return f"<BatchContext partition={self.partition} tables={sorted(self._specs)}>"
