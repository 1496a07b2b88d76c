"""A real Triton Inference Server, started from the ``nvidia-pytriton`` wheel's binary, by PID.

Why: there is no Docker here, but the wheel bundles ``tritonserver`` 2.51 with
its python backend. Starting the binary directly has pitfalls (FIELD_NOTES,
"Triton Inference Server without Docker"), all handled here:

1. the backend directory is built per data dir: ``backends/python/`` holds
   links to the wheel's ``libtriton_python.so`` and ``triton_python_backend_utils.py``
   plus a *copy* of the stub built for the running Python;
2. ``LD_LIBRARY_PATH`` carries the wheel's ``nvidia_pytriton.libs`` and the base
   interpreter's LIBDIR (else the stub loads another libpython);
3. ``PATH`` starts with this virtualenv's ``bin`` (the stub finds the
   environment through ``python3`` there; it ignores PYTHONPATH);
4. the server runs from an empty working directory (the stub puts it first
   on ``sys.path``);
5. (model side) one intra-op thread per instance, see ``config.pbtxt``;
6. each data dir gets its own python-backend shared-memory prefix, so the
   ``/dev/shm/triton_python_backend_shm_region_*`` regions a killed server
   leaves are removed exactly, never another server's.

Layout of a data directory::

    backends/python/    backend directory (links + stub copy), rebuilt on start
    work/               the server's (empty) working directory
    tritonserver.log    server output
    tritonserver.pid    pidfile
    server.json         repository, address and ports of the last start (for down/status)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ecomstream.launchers.process import (
    DEFAULT_HOST,
    PidFile,
    is_alive,
    port_is_free,
    start_background,
    stop_process,
    tail,
    wait_for,
    wait_started,
)

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
SHM_REGION_PREFIX = "triton_python_backend_shm_region_"
BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
STUB_NAME = "triton_python_backend_stub"


class TritonError(RuntimeError):
    """Triton could not be prepared, started or stopped."""


# --------------------------------------------------------------------------- the wheel


def triton_dist() -> Path:
    """The wheel's ``pytriton/tritonserver`` folder (found without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonError(
            "nvidia-pytriton is not installed (pip install 'ecomstream[serving]'): "
            "it carries the tritonserver binary"
        )
    dist = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    if not (dist / "bin" / "tritonserver").is_file():
        raise TritonError(f"no tritonserver binary under {dist}")
    return dist


def tritonserver_binary() -> Path:
    return triton_dist() / "bin" / "tritonserver"


def library_dirs() -> list[Path]:
    """What the binary and the stub need on LD_LIBRARY_PATH (pitfall 2)."""
    dirs = [triton_dist().parents[1] / "nvidia_pytriton.libs"]
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        dirs.append(Path(libdir))
    return [d for d in dirs if d.is_dir()]


def stub_for_running_python() -> Path:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = triton_dist() / "python_backend_stubs" / version / STUB_NAME
    if not stub.is_file():
        raise TritonError(f"the wheel has no python-backend stub for Python {version}")
    return stub


def prepare_backend_dir(backends: Path) -> Path:
    """Build ``<backends>/python``: links to the wheel's backend files plus a stub copy.

    Idempotent: links are re-pointed and the stub re-copied when it changed.
    """
    python_dir = backends / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    wheel_backend = triton_dist() / "backends" / "python"
    for name in BACKEND_FILES:
        link = python_dir / name
        source = wheel_backend / name
        if link.is_symlink() and Path(os.readlink(link)) == source:
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(source)
    stub = stub_for_running_python()
    target = python_dir / STUB_NAME
    if not target.is_file() or target.stat().st_size != stub.stat().st_size:
        tmp = python_dir / f".{STUB_NAME}.tmp"
        shutil.copy2(stub, tmp)
        tmp.chmod(0o755)
        tmp.replace(target)
    return backends


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: library path, PATH with this venv first, one OpenMP thread."""
    env = dict(os.environ if base is None else base)
    libs = [str(d) for d in library_dirs()]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(libs)
    venv_bin = Path(sys.prefix) / "bin"
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("PYTHONPATH", None)  # the stub ignores it; the server must not see ours either
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def repository_models(repo: Path) -> list[str]:
    """Model directories (those with a config.pbtxt) of a repository."""
    if not repo.is_dir():
        return []
    return sorted(p.name for p in repo.iterdir() if (p / "config.pbtxt").is_file())


def check_repository(repo: Path, models: Sequence[str]) -> None:
    """Raise with a hint unless every model has a numbered version directory to load."""
    if not models:
        raise TritonError(f"{repo} holds no model (no <model>/config.pbtxt)")
    for model in models:
        model_dir = repo / model
        if not (model_dir / "config.pbtxt").is_file():
            raise TritonError(f"{model_dir} has no config.pbtxt")
        if not any(p.is_dir() and p.name.isdigit() for p in model_dir.iterdir()):
            raise TritonError(
                f"{model_dir} has no version directory: install an exported model first "
                f"(ecomstream triton install ARTIFACT_DIR --repo {repo})"
            )


# --------------------------------------------------------------------------- the server


def _http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class TritonServer:
    """One ``tritonserver`` owning ``data_dir``, serving ``model_repository`` on 127.0.0.1.

    ``models``: the models whose readiness :meth:`start` waits for (default:
    every model directory of the repository).
    """

    def __init__(
        self,
        model_repository: Path | str,
        data_dir: Path | str,
        *,
        host: str = DEFAULT_HOST,
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        models: Sequence[str] | None = None,
        log_verbose: int = 0,
        exit_timeout_s: int = 5,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.model_repository = Path(model_repository).expanduser().resolve()
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self._models = list(models) if models is not None else None
        self.log_verbose = log_verbose
        self.exit_timeout_s = exit_timeout_s
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self.last_start_seconds: float | None = None

    @classmethod
    def from_data_dir(cls, data_dir: Path | str) -> TritonServer:
        """A handle on a data dir with the repository and ports of its last start (down/status)."""
        state_path = Path(data_dir).expanduser().resolve() / "server.json"
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError) as exc:
            raise TritonError(f"no Triton state in {data_dir} ({exc})") from exc
        return cls(
            state["model_repository"],
            data_dir,
            host=state["host"],
            http_port=state["http_port"],
            grpc_port=state["grpc_port"],
            metrics_port=state["metrics_port"],
            models=state.get("models"),
        )

    # ----------------------------------------------------------------- paths and addresses

    @property
    def grpc_url(self) -> str:
        """``host:port`` for ``tritonclient.grpc``."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def models(self) -> list[str]:
        if self._models is not None:
            return list(self._models)
        return repository_models(self.model_repository)

    @property
    def backend_dir(self) -> Path:
        return self.data_dir / "backends"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "tritonserver.log"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def pidfile(self) -> PidFile:
        return PidFile(self.data_dir / "tritonserver.pid")

    @property
    def marker(self) -> str:
        """What the server's cmdline must mention to be ours: its backend directory."""
        return f"--backend-directory={self.backend_dir}"

    @property
    def shm_prefix(self) -> str:
        """This data dir's python-backend shared-memory prefix (see :meth:`clean_shm`)."""
        digest = hashlib.blake2b(str(self.data_dir).encode(), digest_size=5).hexdigest()
        return f"{SHM_REGION_PREFIX}es{digest}_"

    # ----------------------------------------------------------------- state

    def pid(self) -> int | None:
        """The running server's PID for this data dir, or None (stale pidfiles removed)."""
        return self.pidfile.running_pid(self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_live(self) -> bool:
        return _http_ok(f"{self.http_url}/v2/health/live")

    def is_ready(self) -> bool:
        """Server ready and every awaited model ready (HTTP health endpoints)."""
        if not _http_ok(f"{self.http_url}/v2/health/ready"):
            return False
        return all(self.model_ready(model) for model in self.models)

    def model_ready(self, model: str, version: str = "") -> bool:
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/ready"
        return _http_ok(self.http_url + path)

    def metrics(self) -> str:
        """The Prometheus text of the metrics endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=2) as response:
            return str(response.read().decode())

    # ----------------------------------------------------------------- lifecycle

    def argv(self) -> list[str]:
        return [
            str(tritonserver_binary()),
            f"--model-repository={self.model_repository}",
            self.marker,
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 120.0) -> str:
        """Start the server and wait until it and its models are ready; return the gRPC address.

        If a server for this data dir is already running it is left alone.
        If the process exits first, raises :class:`TritonError` with its log tail.
        """
        existing = self.pid()
        if existing is not None:
            log.info("Triton already running for %s (pid %d)", self.data_dir, existing)
            self._wait_ready(existing, timeout)
            return self.grpc_url
        models = self.models
        check_repository(self.model_repository, models)
        ports = {self.http_port, self.grpc_port, self.metrics_port}
        if len(ports) != 3:
            raise TritonError("http, grpc and metrics ports must differ")
        for port in sorted(ports):
            if not port_is_free(port, self.host):
                raise TritonError(f"port {self.host}:{port} is already in use")
        started = time.monotonic()
        self.clean_shm()  # what a killed earlier run of this data dir left
        prepare_backend_dir(self.backend_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._write_state(models)
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n".encode())
        self._proc = start_background(
            self.argv(), self.log_path, cwd=self.work_dir, env=server_environment()
        )
        self.pidfile.write(self._proc.pid)
        try:
            self._wait_ready(self._proc.pid, timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - started
        log.info(
            "Triton ready at %s (http %s) in %.1fs (pid %d)",
            self.grpc_url,
            self.http_url,
            self.last_start_seconds,
            self._proc.pid,
        )
        return self.grpc_url

    def _write_state(self, models: list[str]) -> None:
        state = {
            "model_repository": str(self.model_repository),
            "host": self.host,
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "metrics_port": self.metrics_port,
            "models": models,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_path)

    def _wait_ready(self, pid: int, timeout: float) -> None:
        wait_started(
            pid,
            self._proc,
            self.is_ready,
            what=f"Triton at {self.http_url}",
            log_tail=self.log_tail,
            error=TritonError,
            timeout=timeout,
            interval=0.05,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the running server and its models are ready (e.g. after a model reload)."""
        pid = self.pid()
        if pid is None:
            raise TritonError(f"no Triton running for {self.data_dir}")
        self._wait_ready(pid, timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM exactly our server (pidfile + cmdline check), SIGKILL after ``timeout``.

        Then kills stragglers of its session (python-backend stubs) and removes
        the shared-memory regions it left. Returns True if a server was stopped.
        """
        pid = self.pidfile.read()
        stopped = False
        if pid is not None:
            stopped = stop_process(pid, marker=self.marker, term_timeout=timeout)
            self._reap_session(pid)
        self._reap_own()
        self.pidfile.remove()
        self.clean_shm()
        if stopped:
            log.info("stopped Triton pid %s (%s)", pid, self.data_dir)
        return stopped

    def kill(self) -> bool:
        """SIGKILL the server at once (a crash, for tests), then clean up as :meth:`stop` does."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not is_alive(pid), 10.0, 0.02, description=f"pid {pid} to die")
        self._reap_session(pid)
        self._reap_own()
        self.pidfile.remove()
        self.clean_shm()
        return True

    def _reap_own(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None

    @staticmethod
    def _reap_session(sid: int, timeout: float = 5.0) -> None:
        """Stubs are in the server's session (we started it with a new one): wait, then SIGKILL."""

        def members() -> list[int]:
            return [pid for pid in _session_members(sid) if is_alive(pid)]

        try:
            wait_for(lambda: not members(), timeout, 0.05)
        except TimeoutError:
            for pid in members():
                log.warning("killing leftover process %d of Triton session %d", pid, sid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def shm_regions(self) -> list[Path]:
        return sorted(SHM_DIR.glob(f"{self.shm_prefix}*"))

    def clean_shm(self) -> int:
        """Remove this data dir's python-backend shm regions; only call with no server running."""
        if self.is_running():
            return 0
        removed = 0
        for path in self.shm_regions():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        if removed:
            log.info("removed %d leftover shm region(s) %s*", removed, self.shm_prefix)
        return removed

    def log_tail(self, lines: int = 40) -> str:
        text = tail(self.log_path, lines)
        return f"--- {self.log_path} ---\n{text}" if text else ""

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"TritonServer({str(self.model_repository)!r}, {str(self.data_dir)!r}, "
            f"grpc={self.grpc_url!r}, http={self.http_url!r})"
        )


def _session_members(sid: int) -> list[int]:
    """PIDs whose session id is ``sid`` (from /proc/<pid>/stat), ``sid`` itself excluded."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == sid:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # fields: state ppid pgrp session ...
        if len(fields) > 3 and fields[3] == str(sid):
            found.append(int(entry.name))
    return found
