"""Worker settings from ``ECOMSTREAM_*`` environment variables, with local defaults.

Why one class: the Faust app, the CLI and the tests all build the same
settings, so a replay namespace or a test's free port is one field away.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

D = TypeVar("D")
_SCALARS: typing.Final = (bool, int, float, str)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECOMSTREAM_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "ecomstream"
    topic_prefix: str = Field("", description="Prepended to every topic name (replay namespaces).")
    partitions: int = 4
    replication_factor: int = 1
    store: str = Field(
        "rocksdb://",
        description="Table store: rocksdb:// (RocksDB, hot keys cached) or memory://.",
    )
    table_cache_keys: int = Field(
        25_000, description="rocksdb://: decoded keys kept in memory per table partition."
    )
    data_dir: Path = Path("var/worker")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    max_review_chars: int = Field(5_000, description="Longer review text is a validation failure.")
    score_reviews: bool = Field(True, description="Run the review scoring agent.")
    commit_interval_ms: int = Field(100, description="Batch processors' transaction interval.")
    items_commit_interval_ms: int = Field(
        500,
        description="The item processor's transaction interval. Each commit writes every "
        "touched item's whole record, and every worker's replica installs each one: a longer "
        "interval writes fewer (make bench: a third as many as at 100 ms), and replicas, alerts "
        "and re-keyed scores see item changes that much later.",
    )
    recommendation_delivery: Literal["immediate", "transactional"] = Field(
        "immediate",
        description="immediate: recommendation updates leave right after their batch "
        "(at-least-once, stable update ids); transactional: with the next commit (exactly-once).",
    )
    native: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Profiles, item replica and ranking in Rust (native/; same bytes, faster): "
        "auto uses it when built, on requires it, off keeps the Python reference.",
    )
    full_gc_interval_s: float = Field(
        600.0,
        description="Full garbage collections run when idle, at least this often "
        "(see ecomstream.processing.collector); 0 keeps CPython's own schedule.",
    )
    stepped: bool = Field(
        False, description="Replay mode: processors run only on POST /step (deterministic)."
    )
    instance_id: str = Field(
        "", description="Stable per worker (fences a crashed predecessor); default host:port."
    )

    @property
    def instance(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{self.web_port}"

    def topic(self, name: str) -> str:
        """The physical topic name for a contract topic name."""
        return f"{self.topic_prefix}{name}"

    def internal_topic(self, name: str) -> str:
        """The physical name of one of this app's internal topics (repartitions, replicas).

        Namespaced by ``app_id``, as Kafka Streams and Faust name theirs: two apps on
        one cluster (a canary, an evaluation run, a second shop) share the contract
        topics, but each must read only its own item deltas and re-keyed scores, or it
        counts the other's work as its own.

        >>> Settings(app_id="shop", topic_prefix="replay.").internal_topic("item-deltas")
        'replay.shop-item-deltas'
        """
        return f"{self.topic_prefix}{self.app_id}-{name}"


def dataclass_from_env(cls: type[D], prefix: str, environ: Mapping[str, str] | None = None) -> D:
    """The defaults of dataclass ``cls``, with each ``<prefix><FIELD>`` variable applied.

    Why: the domain configs (alert detector, recommender, profile debounce) are plain
    frozen dataclasses; this is how an operator sets them on a worker. Only fields of
    scalar type (bool, int, float, str, optionally None) can be set; values are parsed
    by pydantic (``"30"``, ``"2.5"``, ``"true"``/``"0"``), ``"none"`` clears an
    optional field. A misspelt variable or a bad value is an error naming it, not
    silently a default.

    >>> @dataclasses.dataclass(frozen=True)
    ... class Example:
    ...     debounce_s: float = 30.0
    ...     cap: int | None = None
    >>> dataclass_from_env(Example, "X_", {"X_DEBOUNCE_S": "5", "X_CAP": "none", "Y": "1"})
    Example(debounce_s=5.0, cap=None)
    >>> dataclass_from_env(Example, "X_", {"X_DEBOUNCE": "5"})
    Traceback (most recent call last):
    ...
    ValueError: X_DEBOUNCE: unknown setting; known: X_DEBOUNCE_S, X_CAP
    """
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    settable: dict[str, tuple[str, Any]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        options = typing.get_args(hints[f.name])
        optional = type(hints[f.name]) is types.UnionType and type(None) in options
        scalar = [t for t in options if t is not type(None)] if optional else [hints[f.name]]
        if len(scalar) == 1 and scalar[0] in _SCALARS:
            settable[prefix + f.name.upper()] = (f.name, hints[f.name] if optional else scalar[0])
    values: dict[str, Any] = {}
    for variable, raw in environ.items():
        if not variable.startswith(prefix):
            continue
        if variable not in settable:
            raise ValueError(f"{variable}: unknown setting; known: {', '.join(settable)}")
        name, kind = settable[variable]
        text = raw.strip()
        try:
            if text.lower() == "none" and type(kind) is types.UnionType:
                values[name] = None
            else:
                values[name] = TypeAdapter(kind).validate_python(text)
        except ValidationError as exc:
            reason = exc.errors(include_url=False)[0]["msg"]
            raise ValueError(f"{variable}={raw!r}: {reason}") from None
    return cls(**values)
