"""Run the benchmarks and rebuild BENCHMARKS.md: ``python -m benchmarks [name ...] [options]``.

Options are passed to each benchmark's ``run`` that takes them (e.g. ``--events 50000``
for a quick iteration); a benchmark without that parameter keeps its default.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
from typing import Any

from benchmarks.report import assemble
from ecomstream.launchers.process import exit_on_sigterm

ALL = ["ingest", "processing", "profiles_path", "table_store", "scoring"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*ALL, []], default=ALL)
    parser.add_argument("--events", dest="n_events", type=int, help="events per run")
    parser.add_argument("--repeats", type=int, help="rounds of every variant")
    parser.add_argument(
        "--commit-intervals",
        type=lambda text: tuple(int(ms) for ms in text.split(",")),
        help="profiles_path: commit intervals in ms, comma-separated (default 100,50,20)",
    )
    parser.add_argument(
        "--latency-seconds", type=float, help="profiles_path: length of each paced latency run"
    )
    args = parser.parse_args()
    exit_on_sigterm()  # a killed run still stops its brokers and workers
    options = {k: v for k, v in vars(args).items() if k != "names" and v is not None}
    logging.basicConfig(level=logging.WARNING)
    for name in args.names or ALL:
        run = importlib.import_module(f"benchmarks.{name}").run
        accepted = inspect.signature(run).parameters
        kwargs: dict[str, Any] = {k: v for k, v in options.items() if k in accepted}
        path = run(**kwargs)
        print(path.read_text())
    assemble(ALL)


main()
