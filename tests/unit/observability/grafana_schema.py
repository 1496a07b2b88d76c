"""The Grafana dashboard JSON schema, generated from npm ``@grafana/schema`` (tools/grafana-schema).

Why generated and cached: the schema is derived from Grafana's own TypeScript
types (ts-json-schema-generator) for the release pinned in
tools/grafana-schema/package.json — the same release docker-compose.yml runs.
Generating takes a few seconds, so the bundle is cached outside the repository
under a key of the tool's package.json, lockfile and generator script; a
version bump regenerates it.

Setup (``make setup`` should do it; done here on first use otherwise)::

    npm ci --prefix tools/grafana-schema
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL_DIR = REPO_ROOT / "tools" / "grafana-schema"
TOOL_FILES = ("package.json", "package-lock.json", "generate.mjs")


class GrafanaSchemaError(RuntimeError):
    """The schema could not be generated (node/npm missing, npm ci or the generator failed)."""


def cache_root() -> Path:
    override = os.environ.get("ECOMSTREAM_GRAFANA_SCHEMA_CACHE")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ecomstream" / "grafana-schema"


def tool_key() -> str:
    digest = hashlib.sha256()
    for name in TOOL_FILES:
        digest.update(name.encode() + b"\0" + (TOOL_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], timeout: float) -> None:
    try:
        result = subprocess.run(argv, cwd=TOOL_DIR, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise GrafanaSchemaError(f"{argv[0]} is not installed (Node.js 18+ is needed)") from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise GrafanaSchemaError(f"{' '.join(argv)} failed (exit {result.returncode}):\n{output}")


def ensure_node_modules() -> None:
    """``npm ci`` in tools/grafana-schema unless its lockfile's packages are installed."""
    installed = TOOL_DIR / "node_modules" / ".package-lock.json"
    lock = TOOL_DIR / "package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise GrafanaSchemaError("npm is not installed (Node.js 18+ is needed)")
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], timeout=600)


def schema_path() -> Path:
    """The cached bundle, generated first if missing."""
    target = cache_root() / tool_key() / "schema.json"
    if target.is_file():
        return target
    with _locked(cache_root() / ".lock"):
        if target.is_file():
            return target
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise GrafanaSchemaError("node is not installed (Node.js 18+ is needed)")
        _run([node, "generate.mjs", str(target)], timeout=300)
    return target


def load_bundle() -> dict[str, Any]:
    """``{"grafanaSchemaVersion", "latestSchemaVersion", "dashboard", "panels": {type: {...}}}``."""
    bundle: dict[str, Any] = json.loads(schema_path().read_text())
    return bundle
