"""Process helpers: pidfiles, stopping exactly one real child, free ports, polling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecomstream.launchers.process import (
    PidFile,
    cmdline,
    cmdline_mentions,
    find_free_port,
    is_alive,
    port_accepts,
    port_is_free,
    start_background,
    stop_process,
    tail,
    wait_for,
    wait_for_async,
)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real child process whose cmdline carries the test's tmp dir as a marker."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)]
    proc = start_background(argv, tmp_path / "sleep.log")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_pidfile_roundtrip(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "sub" / "x.pid")
    assert pidfile.read() is None
    pidfile.write(1234)
    assert pidfile.read() == 1234
    pidfile.remove()
    assert pidfile.read() is None
    pidfile.remove()  # idempotent


def test_pidfile_garbage_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_text("not a pid\n")
    assert PidFile(tmp_path / "x.pid").read() is None


def test_running_pid_checks_cmdline_and_clears_stale(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pidfile = PidFile(tmp_path / "x.pid")
    pidfile.write(sleeper.pid)
    assert pidfile.running_pid(str(tmp_path)) == sleeper.pid
    # Same PID, but not running what we think (PID reuse): stale, removed.
    assert pidfile.running_pid("/no/such/marker") is None
    assert not pidfile.path.exists()


def test_running_pid_of_dead_process_is_none(tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    pidfile = PidFile(tmp_path / "x.pid")
    pidfile.write(proc.pid)
    assert pidfile.running_pid("true") is None
    assert not pidfile.path.exists()


def test_cmdline_of_real_process(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    assert cmdline(sleeper.pid) == sleeper.args
    assert cmdline_mentions(sleeper.pid, str(tmp_path))
    assert not cmdline_mentions(sleeper.pid, "elsewhere")


def test_start_background_new_session_and_log(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    proc = start_background([sys.executable, "-c", "print('hello', flush=True)"], log)
    assert proc.wait(timeout=30) == 0
    assert "hello" in log.read_text()
    assert tail(log, 1) == "hello"


def test_new_session(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    assert os.getsid(sleeper.pid) == sleeper.pid != os.getsid(0)


def test_stop_real_child(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    assert is_alive(sleeper.pid)
    assert stop_process(sleeper.pid, marker=str(tmp_path), term_timeout=10)
    assert not is_alive(sleeper.pid)
    assert stop_process(sleeper.pid, marker=str(tmp_path)) is False  # already gone


def test_stop_refuses_process_without_marker(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    assert stop_process(sleeper.pid, marker="/some/other/data/dir") is False
    assert is_alive(sleeper.pid)


def test_stop_escalates_to_sigkill(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "stubborn.log"
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = start_background([sys.executable, "-c", code, str(tmp_path)], log)
    try:
        wait_for(lambda: "ready" in log.read_text(), 30, description="child to ignore SIGTERM")
        assert stop_process(proc.pid, marker=str(tmp_path), term_timeout=0.3)
        assert not is_alive(proc.pid)
        assert "SIGKILL" in caplog.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: not is_alive(proc.pid), 5, description="killed child to count as dead")
    assert not is_alive(proc.pid)


def test_free_port_is_bindable_and_in_use_is_detected() -> None:
    port = find_free_port()
    assert port_is_free(port)
    assert not port_accepts(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not port_is_free(port)
        assert port_accepts(port)


def test_wait_for_returns_first_truthy_value() -> None:
    calls = iter([0, None, "", "done"])
    assert wait_for(lambda: next(calls), 5, 0.001) == "done"


def test_wait_for_times_out_with_description_and_last_error() -> None:
    def boom() -> bool:
        raise ConnectionRefusedError("not yet")

    with pytest.raises(TimeoutError, match=r"the thing.*not yet"):
        wait_for(boom, 0.05, 0.01, description="the thing", ignore=(ConnectionRefusedError,))


def test_wait_for_propagates_unexpected_errors() -> None:
    def broken() -> bool:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        wait_for(broken, 5, ignore=(ConnectionError,))


async def test_wait_for_async_accepts_sync_and_async_conditions() -> None:
    state = {"n": 0}

    async def bump() -> int:
        state["n"] += 1
        return state["n"] if state["n"] >= 3 else 0

    assert await wait_for_async(bump, 5, 0.001) == 3
    assert await wait_for_async(lambda: state["n"] == 3, 5) is True
    with pytest.raises(TimeoutError):
        await wait_for_async(lambda: False, 0.05, 0.01)


def test_tail_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "missing.log") == ""


def test_sigterm_runs_finally_blocks_so_children_get_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned-up"
    code = (
        "import pathlib, sys, time\n"
        "from ecomstream.launchers.process import exit_on_sigterm\n"
        "exit_on_sigterm()\n"
        "try:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "finally:\n"
        "    pathlib.Path(sys.argv[1]).write_text('stopped the broker')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(marker)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "stopped the broker"
