"""Generic helpers to run a local server as a background process, owned by PID.

Why this module: Kafka, Triton and Prometheus launchers all need the same few
things done carefully — a pidfile, a child in its own session with its output
in a log file, polling with a deadline (never fixed sleeps), and a stop that
signals *exactly* the process we started (its ``/proc/<pid>/cmdline`` must
carry a marker such as the data directory) and escalates to SIGKILL.

Everything here is Linux-specific (``/proc``) and synchronous, except
:func:`wait_for_async`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"


# --------------------------------------------------------------------------- polling


def wait_for(
    condition: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    description: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns a truthy value; return that value.

    Why: waiting on a fixed sleep is either slow or flaky; a deadline with a
    short poll is neither. Exceptions of the types in ``ignore`` count as "not
    yet" (e.g. ``ConnectionRefusedError`` while a server boots). On timeout a
    ``TimeoutError`` names ``description`` and the last ignored exception.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                _timeout_message(description or repr(condition), timeout, last_error)
            )
        time.sleep(min(interval, remaining))


@overload
async def wait_for_async(
    condition: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    *,
    description: str | None = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def wait_for_async(
    condition: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    *,
    description: str | None = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def wait_for_async(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    description: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Async :func:`wait_for`: ``condition`` may be a plain or a coroutine function."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                _timeout_message(description or repr(condition), timeout, last_error)
            )
        await asyncio.sleep(min(interval, remaining))


def _timeout_message(what: str, timeout: float, last_error: BaseException | None) -> str:
    message = f"timed out after {timeout:.1f}s waiting for {what}"
    if last_error is not None:
        message += f" (last error: {last_error!r})"
    return message


# --------------------------------------------------------------------------- ports


def find_free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port the OS reports free right now (bind to port 0, read it back).

    Why: tests run beside other engineers' services; fixed ports collide. There
    is an unavoidable window before the server binds it; callers should fail
    clearly (the server's log) rather than retry blindly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = DEFAULT_HOST) -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, like servers use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = DEFAULT_HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- /proc


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process.

    Why not just ``kill(pid, 0)``: a child we started and signalled stays a
    zombie until reaped, and would look alive forever. We reap it if it is
    ours, and treat state ``Z`` as dead otherwise.
    """
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state field follows the parenthesised command name, which may hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` from ``/proc``, or None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cmdline_mentions(pid: int, marker: str) -> bool:
    """Whether any argument of ``pid`` contains ``marker`` (guards against PID reuse)."""
    args = cmdline(pid)
    return args is not None and any(marker in arg for arg in args)


# --------------------------------------------------------------------------- pidfile


class PidFile:
    """A pidfile holding one decimal PID; missing or garbage reads as None."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> int | None:
        """The PID written in the file, or None."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def write(self, pid: int) -> None:
        """Write ``pid`` atomically (a reader never sees a half-written file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(self.path)

    def remove(self) -> None:
        """Remove the file if present."""
        self.path.unlink(missing_ok=True)

    def running_pid(self, marker: str) -> int | None:
        """The PID if it is alive *and* its cmdline mentions ``marker``; else None.

        A stale pidfile (dead process, or a reused PID running something else)
        is removed, so the next start is not blocked by it.
        """
        pid = self.read()
        if pid is None:
            return None
        if is_alive(pid) and cmdline_mentions(pid, marker):
            return pid
        log.info("removing stale pidfile %s (pid %s)", self.path, pid)
        self.remove()
        return None


# --------------------------------------------------------------------------- start / stop


def start_background(
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stdin closed, stdout+stderr appended to ``log_path``.

    Why a new session: the server must outlive the CLI that started it and
    must not receive the terminal's Ctrl-C meant for a test run.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    # Popen may return while the kernel is still inside exec, when
    # /proc/<pid>/cmdline reads empty; marker checks right after a start
    # would then miss. Return once the new program's argv is visible.
    wait_for(
        lambda: proc.poll() is not None or bool(cmdline(proc.pid)),
        10.0,
        0.001,
        description=f"pid {proc.pid} to exec {argv[0]}",
    )
    log.debug("started pid %d: %s", proc.pid, " ".join(argv))
    return proc


def wait_started(
    pid: int,
    proc: subprocess.Popen[bytes] | None,
    ready: Callable[[], bool],
    *,
    what: str,
    log_tail: Callable[[], str],
    error: type[Exception],
    timeout: float,
    interval: float = 0.1,
) -> None:
    """Poll ``ready`` until it holds; raise ``error`` with the log's tail if the process
    exits first or the deadline passes (a server that dies while booting says why)."""

    def check() -> bool:
        if proc is not None and proc.pid == pid:
            exited = proc.poll() is not None
        else:
            exited = not is_alive(pid)
        if exited:
            raise error(f"{what} (pid {pid}) exited during startup\n{log_tail()}")
        return ready()

    try:
        wait_for(check, timeout, interval, description=what)
    except TimeoutError as exc:
        raise error(f"{exc}\n{log_tail()}") from exc


def stop_process(
    pid: int,
    *,
    marker: str | None = None,
    term_timeout: float = 30.0,
    kill_timeout: float = 10.0,
) -> bool:
    """Stop exactly ``pid``: SIGTERM, wait up to ``term_timeout``, then SIGKILL.

    If ``marker`` is given, the process is only signalled when its cmdline
    mentions it (so a reused PID is never hit). Returns True if a process was
    signalled, False if it was already gone or not ours. Raises
    ``TimeoutError`` if it survives SIGKILL for ``kill_timeout``.
    """
    if not is_alive(pid):
        return False
    if marker is not None and not cmdline_mentions(pid, marker):
        log.warning("pid %d does not mention %r; not signalling it", pid, marker)
        return False
    if not _signal(pid, signal.SIGTERM):
        return False
    try:
        wait_for(lambda: not is_alive(pid), term_timeout, 0.05, description=f"pid {pid} to exit")
        return True
    except TimeoutError:
        log.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", pid, term_timeout)
    _signal(pid, signal.SIGKILL)
    wait_for(lambda: not is_alive(pid), kill_timeout, 0.05, description=f"pid {pid} to die")
    return True


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind this process like Ctrl-C, so ``finally`` blocks stop its children.

    Why: CPython's default SIGTERM ends the interpreter on the spot, and a demo,
    replay or benchmark killed that way (a CI timeout, ``kill``) left its Kafka
    broker, Triton or worker running with nobody to stop them. Exits with 143.
    """

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if missing) — for error messages."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
