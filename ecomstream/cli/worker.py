"""``ecomstream worker``: run one Faust worker of the ``streams`` app.

Why exec and not import: ``ecomstream`` never imports ``streams`` (the
library stays usable without the Faust app); the worker is its own process.
"""

from __future__ import annotations

import os
import sys

import click


@click.command()
@click.option("--bootstrap-servers", envvar="ECOMSTREAM_BOOTSTRAP_SERVERS", default=None)
@click.option("--web-port", type=int, envvar="ECOMSTREAM_WEB_PORT", default=None)
@click.option("--topic-prefix", envvar="ECOMSTREAM_TOPIC_PREFIX", default=None)
@click.option("--store", envvar="ECOMSTREAM_STORE", default=None, help="rocksdb:// or memory://")
@click.option("--data-dir", envvar="ECOMSTREAM_DATA_DIR", default=None)
@click.option("--loglevel", default="info", show_default=True)
def worker(
    bootstrap_servers: str | None,
    web_port: int | None,
    topic_prefix: str | None,
    store: str | None,
    data_dir: str | None,
    loglevel: str,
) -> None:
    """Consume the input topics and run every agent (metrics on /metrics, readiness on /ready)."""
    env = dict(os.environ)
    for name, value in (
        ("BOOTSTRAP_SERVERS", bootstrap_servers),
        ("WEB_PORT", web_port),
        ("TOPIC_PREFIX", topic_prefix),
        ("STORE", store),
        ("DATA_DIR", data_dir),
    ):
        if value is not None:
            env[f"ECOMSTREAM_{name}"] = str(value)
    argv = [sys.executable, "-m", "streams", "worker", "--loglevel", loglevel]
    if web_port is not None:
        argv += ["--web-port", str(web_port)]
    os.execvpe(sys.executable, argv, env)
