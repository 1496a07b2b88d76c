"""Results as JSON plus a markdown section of BENCHMARKS.md, with the machine and command."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).parent / "results"
BENCHMARKS_MD = Path(__file__).parent.parent / "BENCHMARKS.md"


@dataclass
class Variant:
    name: str
    unit: str
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def fmt(value: float) -> str:
    """Whole numbers from 100 up, three significant digits below (latencies in ms).

    >>> fmt(183890.4), fmt(12.345), fmt(0.8)
    ('183,890', '12.3', '0.8')
    """
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(name: str, title: str, variants: Sequence[Variant], params: dict[str, object]) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md``; return the markdown path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "name": name,
        "title": title,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "make bench  # python -m benchmarks " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "params": params,
        "variants": [asdict(v) | {"median": v.median} for v in variants],
    }
    (RESULTS / f"{name}.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    lines = [
        f"## {title}",
        "",
        f"Measured {info['when']} on {info['machine']['cpu']} ({info['machine']['cores']} cores), "
        f"Python {info['machine']['python']}. Command: `{info['command']}`.",
        "Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()) + ".",
        "",
        "| variant | median | unit | runs | note |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for v in variants:
        runs = ", ".join(fmt(r) for r in v.runs)
        lines.append(f"| {v.name} | {fmt(v.median)} | {v.unit} | {runs} | {v.note} |")
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def assemble(names: Sequence[str]) -> None:
    """Rebuild BENCHMARKS.md from every results/<name>.md present, in ``names`` order."""
    parts = [
        "# Benchmarks",
        "",
        "Produced by `make bench`; each section says when, on what machine and with which",
        "parameters it ran. Variants inside one table ran in the same process, interleaved,",
        "so they share the machine's noise. Medians of the runs; every run is listed.",
        "",
    ]
    for name in names:
        md = RESULTS / f"{name}.md"
        if md.exists():
            parts.append(md.read_text())
    BENCHMARKS_MD.write_text("\n".join(parts))
