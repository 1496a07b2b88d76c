"""Run the benchmarks and rebuild BENCHMARKS.md: ``python -m benchmarks [name ...]``."""

from __future__ import annotations

import argparse
import importlib
import logging

from benchmarks.report import assemble

ALL = ["ingest", "processing", "profiles_path", "scoring"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*ALL, []], default=ALL)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.names or ALL:
        path = importlib.import_module(f"benchmarks.{name}").run()
        print(path.read_text())
    assemble(ALL)


main()
