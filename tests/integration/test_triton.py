"""A real Triton serving the tiny model: same answers as in-process, batching, crash and restart."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ecomstream.cli import main
from ecomstream.inference.onnx import OnnxScorer
from ecomstream.inference.repository import install_model
from ecomstream.inference.resilience import Backoff, CircuitState
from ecomstream.inference.triton import TritonScorer
from ecomstream.launchers.process import wait_for_async
from ecomstream.launchers.triton import TritonError, TritonServer
from ecomstream.testing.triton import TINY_MODEL_NAME, free_ports, sample_review_texts

pytestmark = pytest.mark.integration

MODEL = "review_sentiment"


async def inference_stats(url: str) -> dict[str, int]:
    """Successful requests and model executions of MODEL so far (Triton's statistics API)."""
    import tritonclient.grpc.aio as grpcclient

    async with grpcclient.InferenceServerClient(url) as client:
        stats = await client.get_inference_statistics(MODEL, as_json=True)
    model = stats["model_stats"][0]
    return {
        "requests": int(model["inference_stats"]["success"].get("count", 0)),
        "executions": int(model.get("execution_count", 0)),
        "inferences": int(model.get("inference_count", 0)),
    }


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model="{MODEL}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_served_probabilities_equal_in_process_onnx(
    triton_server: TritonServer, tiny_sentiment_artifact: Path
) -> None:
    texts = sample_review_texts(60)
    expected = await OnnxScorer(tiny_sentiment_artifact).score(texts)
    async with TritonScorer(triton_server.grpc_url, MODEL) as scorer:
        assert await scorer.wait_ready(30)
        as_one_request = await scorer.score(texts)
        # The same texts as concurrent single requests: batched with other texts by Triton.
        one_by_one = await asyncio.gather(*(scorer.score([t]) for t in texts))
    for served in (as_one_request, [s[0] for s in one_by_one]):
        assert len(served) == len(expected)
        for got, want in zip(served, expected, strict=True):
            assert got.label == want.label
            assert (got.model_name, got.model_version) == (TINY_MODEL_NAME, "seed0")
            for label, p in want.probabilities.items():
                assert got.probabilities[label] == pytest.approx(p, abs=1e-4)
    assert {s.label for s in expected} == {"negative", "positive"}


async def test_concurrent_requests_are_batched(triton_server: TritonServer) -> None:
    texts = sample_review_texts(64)[:64]
    url = triton_server.grpc_url
    before = await inference_stats(url)
    metrics_before = triton_server.metrics()
    async with TritonScorer(url, MODEL, max_in_flight=64) as scorer:
        results = await asyncio.gather(*(scorer.score([t]) for t in texts))
    assert len(results) == len(texts)

    # Triton records statistics just after sending each response: poll until all are in.
    async def settled() -> dict[str, int]:
        stats = await inference_stats(url)
        return stats if stats["requests"] - before["requests"] >= len(texts) else {}

    after = await wait_for_async(settled, timeout=10, description="statistics to settle")
    requests = after["requests"] - before["requests"]
    executions = after["executions"] - before["executions"]
    print(f"\nbatching: {requests} requests -> {executions} model executions")
    assert requests == len(texts)
    assert after["inferences"] - before["inferences"] == len(texts)
    assert executions < requests

    def metric_delta(name: str) -> float:
        return metric(triton_server.metrics(), name) - metric(metrics_before, name)

    await wait_for_async(
        lambda: metric_delta("nv_inference_request_success") >= len(texts),
        timeout=10,
        description="metrics to settle",
    )
    assert metric_delta("nv_inference_request_success") == len(texts)
    assert metric_delta("nv_inference_exec_count") < len(texts)


async def test_a_bad_request_fails_alone_not_its_batch(triton_server: TritonServer) -> None:
    import tritonclient.grpc.aio as grpcclient
    from tritonclient.utils import InferenceServerException

    async def send(client: Any, payload: bytes) -> Any:
        data = np.array([payload], dtype=np.object_).reshape(1, 1)
        tensor = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
        tensor.set_data_from_numpy(data)
        return await client.infer(MODEL, [tensor])

    payloads = ["很好的手机".encode()] * 10 + [b"\xff\xfe not utf-8"]
    before = await inference_stats(triton_server.grpc_url)
    async with grpcclient.InferenceServerClient(triton_server.grpc_url) as client:
        results = await asyncio.gather(*(send(client, p) for p in payloads), return_exceptions=True)

    async def settled() -> dict[str, int]:
        stats = await inference_stats(triton_server.grpc_url)
        return stats if stats["requests"] - before["requests"] >= len(payloads) - 1 else {}

    after = await wait_for_async(settled, timeout=10, description="statistics to settle")
    bad = results[-1]
    assert isinstance(bad, InferenceServerException)
    assert bad.status() == "StatusCode.INVALID_ARGUMENT"
    assert "UTF-8" in (bad.message() or "")
    good = [r for r in results[:-1] if not isinstance(r, BaseException)]
    assert len(good) == len(payloads) - 1
    probabilities = [r.as_numpy("PROBABILITIES") for r in good]
    assert all(np.allclose(p, probabilities[0]) for p in probabilities)
    assert after["executions"] - before["executions"] < len(payloads)  # they shared batches


async def test_crash_while_waiting_then_restart_scores_pending_texts(
    triton_server_factory: Callable[..., TritonServer],
    tiny_sentiment_artifact: Path,
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    install_model(tiny_sentiment_artifact, repo, version=1)
    # The committed layout keeps the model.py source at <model>/model.py. Triton must
    # only load <model>/<version>/model.py: a poisoned top-level copy proves it.
    (repo / MODEL / "model.py").write_text("raise SystemExit('top-level model.py was loaded')\n")
    server = triton_server_factory(repo)
    server.start(timeout=120)
    texts = sample_review_texts(12)
    expected = await OnnxScorer(tiny_sentiment_artifact).score(texts)

    scorer = TritonScorer(
        server.grpc_url,
        MODEL,
        request_timeout_s=5,
        backoff=Backoff(initial_s=0.02, max_s=0.2),
        circuit_failure_threshold=3,
        circuit_reset_s=0.2,
        circuit_max_reset_s=0.5,
    )
    try:
        assert await scorer.wait_ready(30)
        assert len(await scorer.score(texts[:2])) == 2

        assert server.kill()
        assert server.shm_regions() == []  # the killed server's shm regions are cleaned
        pending = [asyncio.create_task(scorer.score([t])) for t in texts]
        await wait_for_async(
            lambda: scorer.circuit_state is not CircuitState.CLOSED,
            timeout=20,
            description="the circuit to open",
        )
        assert not scorer.healthy
        await asyncio.sleep(0.5)
        assert not any(task.done() for task in pending), "a scorer returned without a server"
        assert not await scorer.wait_ready(0.2)

        started = time.monotonic()
        server.start(timeout=120)
        results = await asyncio.wait_for(asyncio.gather(*pending), 60)
        recovered = time.monotonic() - started
        print(f"\nrestart + recovery of {len(texts)} pending texts: {recovered:.1f}s")
        for got, want in zip([r[0] for r in results], expected, strict=True):
            assert got.label == want.label
            assert got.probabilities["positive"] == pytest.approx(
                want.probabilities["positive"], abs=1e-4
            )
        assert scorer.healthy
        assert scorer.breaker.times_opened >= 1
    finally:
        await scorer.close()


def test_start_failure_raises_with_the_log_tail(
    triton_server_factory: Callable[..., TritonServer],
    tiny_sentiment_artifact: Path,
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    version = install_model(tiny_sentiment_artifact, repo, version=1)
    (version / "model.py").write_text(
        "class TritonPythonModel:\n"
        "    def initialize(self, args):\n"
        "        raise RuntimeError('boom-in-initialize')\n"
    )
    server = triton_server_factory(repo)
    with pytest.raises(TritonError, match="boom-in-initialize"):
        server.start(timeout=60)
    assert server.pid() is None
    assert server.shm_regions() == []


def test_cli_install_up_status_down(tiny_sentiment_artifact: Path, tmp_path: Path) -> None:
    repo, data_dir = tmp_path / "repo", tmp_path / "data"
    http, grpc, metrics_port = free_ports(3)
    runner = CliRunner()
    result = runner.invoke(
        main, ["triton", "install", str(tiny_sentiment_artifact), "--repo", str(repo)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("review_sentiment/1")
    common = ["--data-dir", str(data_dir)]
    try:
        result = runner.invoke(
            main,
            [
                "triton",
                "up",
                "--repo",
                str(repo),
                "--http-port",
                str(http),
                "--grpc-port",
                str(grpc),
                "--metrics-port",
                str(metrics_port),
                *common,
            ],
        )
        assert result.exit_code == 0, result.output
        assert result.output.strip().splitlines()[-1] == f"127.0.0.1:{grpc}"
        status = runner.invoke(main, ["triton", "status", *common])
        assert status.exit_code == 0, status.output
        assert re.search(r"pid \d+\s+ready", status.output)
        state = json.loads((data_dir / "server.json").read_text())
        assert state["grpc_port"] == grpc
    finally:
        down = runner.invoke(main, ["triton", "down", *common])
    assert down.exit_code == 0, down.output
    assert "stopped" in down.output
    status = runner.invoke(main, ["triton", "status", *common])
    assert status.exit_code == 1
