"""Scoring settings from ``ECOMSTREAM_*`` environment variables, with local defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ScoringSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ECOMSTREAM_", extra="ignore", protected_namespaces=()
    )

    scorer: Literal["triton", "onnx"] = Field(
        "triton", description="triton: gRPC to a Triton server; onnx: in-process ONNX Runtime."
    )
    triton_grpc_url: str = "127.0.0.1:8001"
    model_name: str = "review_sentiment"
    model_version: str = Field("", description="Triton model version; empty: the server's policy.")
    model_artifact_dir: Path | None = Field(
        None,
        description="Exported artifact directory (model.onnx, tokenizer.json, meta.json) "
        "for the in-process onnx scorer.",
    )
    labels: tuple[str, ...] = ("negative", "positive")
    triton_max_batch_size: int = Field(64, ge=1, description="The model's max_batch_size.")
    score_batch_size: int = Field(32, ge=1, description="Reviews per scoring call.")
    score_batch_ms: int = Field(20, ge=0, description="Longest wait to fill a scoring batch.")
    max_in_flight: int = Field(8, ge=1, description="Concurrent requests to Triton.")
    request_timeout_s: float = Field(10.0, gt=0, description="Timeout of one Triton request.")
    score_deadline_s: float | None = Field(
        None, description="Give up on a text after this long (None: wait, i.e. backpressure)."
    )
    retry_initial_s: float = Field(0.05, ge=0)
    retry_max_s: float = Field(2.0, ge=0)
    circuit_failure_threshold: int = Field(5, ge=1)
    circuit_reset_s: float = Field(2.0, gt=0, description="Open-circuit cooldown before a probe.")
    circuit_max_reset_s: float = Field(15.0, gt=0)
    onnx_intra_op_threads: int = Field(1, ge=1)
