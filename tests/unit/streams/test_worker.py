"""The worker class the app starts: quiet log levels stay cheap."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from ecomstream.config import Settings
from streams.app import create_app
from streams.worker import Worker


def test_app_starts_our_worker_class(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    assert app.conf.Worker is Worker


def test_loglevel_warn_does_not_turn_debug_records_on(tmp_path: Path) -> None:
    """faust.Worker's spinner sets the root logger to DEBUG at --loglevel warn, so every
    library debug call builds a record; ours keeps the level the operator asked for."""
    app = create_app(Settings(data_dir=tmp_path))
    worker = Worker(app, loglevel="warn", stdout=io.StringIO(), stderr=io.StringIO())
    root = logging.Logger("root-under-test", logging.WARNING)
    root.addHandler(logging.NullHandler())
    worker.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING
    assert not root.isEnabledFor(logging.DEBUG)
    assert len(root.handlers) == 1
