"""Worker settings from ``ECOMSTREAM_*`` environment variables, with local defaults.

Why one class: the Faust app, the CLI and the tests all build the same
settings, so a replay namespace or a test's free port is one field away.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    recommendation_delivery: Literal["immediate", "transactional"] = Field(
        "immediate",
        description="immediate: recommendation updates leave right after their batch "
        "(at-least-once, stable update ids); transactional: with the next commit (exactly-once).",
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
