"""Container over host throughput as the connection count grows: measured and predicted.

One panel per test. For each container path (veth, bridge-nat), the ratio of its
throughput to the loopback path's at the same connection count: measured (markers, with
the runs' interquartile range) and predicted (line). A model that only matched one point
would show here as a line that leaves the markers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {"veth": "#0072B2", "bridge-nat": "#D55E00"}


def plot_path_ratio(report: dict[str, Any], out: Path) -> Path:
    cells = report["cells"]
    by = {(c["test"], c["path"], c["clients"]): c for c in cells}
    tests = sorted({c["test"] for c in cells})
    paths = [p for p in ("veth", "bridge-nat") if any(c["path"] == p for c in cells)]
    cols = min(4, len(tests))
    rows = math.ceil(len(tests) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False,
                             sharex=True)
    for k, test in enumerate(tests):
        ax = axes[k // cols][k % cols]
        for path in paths:
            xs, meas, lo, hi, pred = [], [], [], [], []
            for (t, p, c), cell in sorted(by.items(), key=lambda kv: kv[0][2]):
                base = by.get((t, "loopback", c))
                if t != test or p != path or base is None:
                    continue
                xs.append(c)
                m = cell["measured"] / base["measured"]
                meas.append(m)
                q1 = cell.get("measured_q1", cell["measured"]) / base["measured"]
                q3 = cell.get("measured_q3", cell["measured"]) / base["measured"]
                lo.append(max(0.0, m - q1))
                hi.append(max(0.0, q3 - m))
                pred.append((cell["predicted"] or math.nan) / (base["predicted"] or math.nan))
            if not xs:
                continue
            colour = COLOURS.get(path, "grey")
            ax.errorbar(xs, meas, yerr=[lo, hi], fmt="o", color=colour, markersize=4,
                        capsize=2, linewidth=0.8, label=f"{path} measured")
            ax.plot(xs, pred, "-", color=colour, linewidth=1.4, label=f"{path} predicted")
        ax.set_xscale("log")
        ax.set_title(test, fontsize=9)
        ax.axhline(1.0, color="grey", linewidth=0.5, linestyle=":")
        ax.set_ylim(0, 1.3)
        ax.tick_params(labelsize=7)
        if k % cols == 0:
            ax.set_ylabel("throughput / loopback", fontsize=8)
        if k // cols == rows - 1:
            ax.set_xlabel("connections (-c)", fontsize=8)
    for k in range(len(tests), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    oos = report.get("mape_out_of_sample")
    ins = report.get("mape_in_sample")
    fig.suptitle(f"{report['experiment']}: container paths over loopback (fitted on loopback: "
                 f"{ins:.1f}% error; containers predicted: {oos:.1f}% error)"
                 if oos is not None and ins is not None else report["experiment"], fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
