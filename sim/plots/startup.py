"""Table 4 redrawn: where each start-up's time goes, phase by phase, beside the measurement.

One row per (platform, app): a horizontal bar stacked from the predicted mean of each
phase (the VMM, firmware, boot loader, image load, kernel, devices, init system, network,
then the application's own phases), the 95% interval of the predicted mean as a whisker
at its end, and the measured time as a black diamond with the error written beside it.
A second panel repeats the fast platforms (the unikernels) on their own scale, where the
30 s of NetBSD would otherwise hide them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

# colour-blind safe (Okabe & Ito), then greys for the application's phases
PHASE_COLOURS = {
    "vmm": "#0072B2", "firmware": "#56B4E9", "boot_loader": "#CC79A7",
    "image_load": "#F0E442", "kernel": "#009E73", "devices": "#8FD1B9",
    "init": "#D55E00", "network": "#E69F00",
    "interpreter": "#444444", "imports": "#777777", "server": "#A0A0A0",
    "db_connect": "#C4C4C4", "first_answer": "#DDDDDD",
}
FALLBACK = ["#882255", "#44AA99", "#999933", "#AA4499"]


def _colour(name: str, extra: dict[str, str]) -> str:
    if name in PHASE_COLOURS:
        return PHASE_COLOURS[name]
    return extra.setdefault(name, FALLBACK[len(extra) % len(FALLBACK)])


def _draw(ax: Axes, cells: list[dict[str, Any]], extra: dict[str, str],
          xmax: float) -> None:
    for y, c in enumerate(cells):
        left = 0.0
        for name, secs in c["phases"].items():
            ax.barh(y, secs, left=left, height=0.6, color=_colour(name, extra),
                    edgecolor="black", linewidth=0.3)
            left += secs
        lo, hi = c["ci95"]
        ax.plot([lo, hi], [y, y], color="black", linewidth=1.0)
        meas = c.get("measured")
        if meas is not None:
            ax.plot(meas, y, marker="D", color="black", markersize=6, linestyle="none")
            err = c.get("error_pct")
            ax.text(max(meas, c["predicted"]) + 0.012 * xmax, y,
                    f"{c['predicted']:.2f} s vs {meas:.2f} s ({err:+.0f}%)",
                    va="center", fontsize=7.5)
        else:
            ax.text(c["predicted"] + 0.012 * xmax, y,
                    f"{c['predicted']:.2f} s (not measured)", va="center", fontsize=7.5,
                    style="italic")
    ax.set_yticks(range(len(cells)))
    ax.set_yticklabels([f"{c['platform']}  {c['test']}" for c in cells], fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax)
    ax.set_xlabel("seconds from image start to the first answer")
    ax.grid(axis="x", color="grey", linewidth=0.3, linestyle=":")


def plot_startup(report: dict[str, Any], out: Path, title: str | None = None) -> Path:
    """Draw the start-up report of :func:`sim.startup.startup_report` to a PNG."""
    order = {p: i for i, p in enumerate(dict.fromkeys(c["platform"] for c in report["cells"]))}
    cells = sorted(report["cells"], key=lambda c: (order[c["platform"]], c["test"]))
    longest = max(max(c["predicted"], c.get("measured") or 0.0) for c in cells)
    fast = [c for c in cells if max(c["predicted"], c.get("measured") or 0.0) < 0.2 * longest]
    extra: dict[str, str] = {}
    ratios = [len(cells), max(len(fast), 1)] if fast else [len(cells)]
    fig, axes = plt.subplots(len(ratios), 1, figsize=(11, 1.2 + 0.42 * sum(ratios)),
                             gridspec_kw={"height_ratios": ratios}, squeeze=False)
    _draw(axes[0][0], cells, extra, longest * 1.32)
    if fast:
        top = max(max(c["predicted"], c.get("measured") or 0.0) for c in fast)
        _draw(axes[1][0], fast, extra, top * 1.55)
        axes[1][0].set_title("the unikernels on their own scale", fontsize=9)
    names = list(dict.fromkeys(n for c in cells for n in c["phases"]))
    handles: list[Any] = [Patch(facecolor=_colour(n, extra), edgecolor="black",
                                linewidth=0.3, label=n.replace("_", " ")) for n in names]
    handles += [Line2D([], [], marker="D", color="black", linestyle="none", label="measured"),
                Line2D([], [], color="black", label="95% CI of the predicted mean")]
    fig.legend(handles=handles, loc="lower center", ncol=8, fontsize=7.5, frameon=False)
    parts = []
    for key, label in (("mape_in_sample", "in sample"),
                       ("mape_leave_one_platform_out", "leave one platform out"),
                       ("mape_leave_one_test_out", "leave one test out")):
        if report.get(key) is not None:
            parts.append(f"{label} {report[key]:.1f}%")
    axes[0][0].set_title(title or f"{report['experiment']}: predicted phases (bars) and "
                         "measured start-up (diamonds)\nmean absolute error "
                         + ", ".join(parts), fontsize=9.5)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
