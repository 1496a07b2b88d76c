"""Timeline figure: an item's window negative share against its baseline, with alerts.

Why one panel per incident, event time on the x axis in minutes from the run's
start: delay and hysteresis are then read straight off the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ecomstream.alerts.detector import Assessment
from ecomstream.alerts.records import AlertRecord


def plot_timelines(
    path: Path,
    panels: Sequence[Mapping[str, Any]],
    series: Mapping[str, Sequence[Assessment]],
    alerts: Sequence[AlertRecord],
    *,
    origin_ms: int,
    title: str = "",
) -> Path:
    """One panel per entry of ``panels`` (``item_id``, optional ``start_ts``/``end_ts``, ``label``).

    Draws the window negative share, the baseline, the Wilson lower bound and the firing
    threshold; shades the incident; marks firing (▲) and resolved (▼) alerts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(panels))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows), squeeze=False, sharex=False)

    def minutes(ts: int) -> float:
        return (ts - origin_ms) / 60_000

    for ax, panel in zip(axes[:, 0], panels, strict=False):
        item = panel["item_id"]
        points = series.get(item, ())
        xs = [minutes(p.ts) for p in points]
        ax.step(
            xs,
            [p.negative_share if p.negative_share is not None else float("nan") for p in points],
            where="post",
            color="tab:red",
            label="window negative share",
        )
        ax.step(xs, [p.baseline for p in points], where="post", color="tab:blue", label="baseline")
        ax.step(
            xs,
            [p.lower for p in points],
            where="post",
            color="tab:orange",
            alpha=0.6,
            linestyle=":",
            label="Wilson lower bound",
        )
        ax.step(
            xs,
            [p.threshold for p in points],
            where="post",
            color="grey",
            linestyle="--",
            linewidth=0.8,
            label="threshold",
        )
        volume = ax.twinx()
        volume.step(
            xs,
            [p.reviews for p in points],
            where="post",
            color="tab:green",
            alpha=0.25,
            label="reviews in window",
        )
        volume.set_ylabel("reviews", color="tab:green")
        if panel.get("start_ts") is not None:
            end = panel.get("end_ts")
            right = (
                minutes(end) if end is not None else (xs[-1] if xs else minutes(panel["start_ts"]))
            )
            ax.axvspan(
                minutes(panel["start_ts"]), right, color="tab:red", alpha=0.08, label="incident"
            )
        for alert in alerts:
            if alert.item_id != item:
                continue
            if alert.state == "firing":
                color = "darkred" if alert.severity == "critical" else "darkorange"
                ax.plot(
                    minutes(alert.ts), 1.02, marker="^", color=color, markersize=9, clip_on=False
                )
            else:
                ax.plot(
                    minutes(alert.ts), 1.02, marker="v", color="green", markersize=9, clip_on=False
                )
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("negative share")
        ax.set_title(panel.get("label", item), fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("event time (minutes from run start)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
