"""The study's Figs. 2 and 3 redrawn: ab against an HTTP service, platform by platform.

Two panels per table: requests per second, and the median and 90th-percentile latency,
each platform a pair of bars, measured (solid) beside predicted (hatched, with its 95%
interval), and a diamond for the prediction of the refit that never saw that platform
(leave one platform out). A column the reference README calls unreliable is greyed and
labelled. Errors are written above the predicted bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim.plots.normalised_bars import platform_colours

PANELS = (("requests_per_s", ("requests_per_s",), "requests per second"),
          ("latency", ("latency_p50_ms", "latency_p90_ms"), "latency (ms): p50, p90"))


def _pairs(ax: Axes, cells: dict[tuple[str, str], dict[str, Any]], platforms: list[str],
           metrics: tuple[str, ...]) -> None:
    group = len(metrics)
    width = 0.8 / (2 * group)
    x = np.arange(len(platforms))
    colours = platform_colours(platforms)
    for k, m in enumerate(metrics):
        for j, p in enumerate(platforms):
            c = cells.get((m, p))
            if c is None:
                continue
            colour = "#BBBBBB" if c.get("unreliable") else colours[p]
            shade = 1.0 if k == 0 else 0.6
            left = x[j] - 0.4 + 2 * k * width
            ax.bar(left + width / 2, c["measured"], width, color=colour, alpha=shade,
                   edgecolor="black", linewidth=0.4)
            v = c["predicted"] or 0.0
            lo, hi = (c.get("ci95") or [v, v])
            ax.bar(left + 1.5 * width, v, width, color=colour, alpha=0.45 * shade, hatch="///",
                   edgecolor="black", linewidth=0.4,
                   yerr=[[v - (lo if lo is not None else v)], [(hi if hi is not None else v) - v]],
                   capsize=2, error_kw={"elinewidth": 0.6})
            oos = c.get("predicted_leave_one_platform_out")
            if oos is not None:
                ax.plot(left + 1.5 * width, oos, marker="D", color="black", markersize=3.5)
            e = c.get("error_pct")
            if e is not None:
                top = max(v, oos or 0.0, c["measured"])
                ax.text(left + width, top * 1.02, f"{e:+.0f}%", ha="center", va="bottom",
                        fontsize=7)
    labels = [p + ("\n(unreliable)" if any(cells.get((m, p), {}).get("unreliable")
                                          for m in metrics) else "") for p in platforms]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)


def plot_http(report: dict[str, Any], out: Path, title: str | None = None) -> Path:
    cells = {(c["test"], c["platform"]): c for c in report["cells"]}
    platforms = list(dict.fromkeys(c["platform"] for c in report["cells"]))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, (_name, metrics, label) in zip(axes, PANELS, strict=True):
        _pairs(ax, cells, platforms, metrics)
        ax.set_ylabel(label)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    handles = [Patch(facecolor="white", edgecolor="black", label="measured (solid)"),
               Patch(facecolor="white", edgecolor="black", hatch="///",
                     label="predicted, 95% CI (hatched)"),
               Line2D([], [], marker="D", color="black", linestyle="",
                      label="predicted without the platform's data")]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=3, frameon=False)
    axes[1].text(0.99, 0.98, "left bar pair of a platform: p50; right: p90", ha="right",
                 va="top", transform=axes[1].transAxes, fontsize=8)
    mape = report.get("mape_in_sample")
    lopo = report.get("mape_leave_one_platform_out")
    parts = [f"in sample {mape:.1f}%" if mape is not None else "",
             f"leave one platform out {lopo:.1f}%" if lopo is not None else ""]
    fig.suptitle(title or f"{report['experiment']}: {report['description']}\nmean absolute "
                 "error (req/s and median latency): " + ", ".join(p for p in parts if p),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
