"""The study's Fig. 1 redrawn: per test, each platform's throughput normalised to the row.

Each test is a group of bars, one pair per platform: the measured value (solid) and the
prediction (hatched, with its 95% interval), both divided by the largest measured value
in that test's row, as the paper normalises its figure. Errors are written above the
predicted bars, so the picture shows where the model is right and where it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

# colour-blind safe (Okabe & Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
# Each of the study's platforms keeps its colour in every figure (Table 1's bars, Tables
# 2 and 3's), whatever order a table lists them in; others take the remaining colours.
PLATFORM_COLOURS = {"ubuntu_bare": "#0072B2", "rumprun_kvm": "#E69F00", "osv_kvm": "#009E73",
                    "ubuntu_kvm": "#CC79A7", "netbsd_kvm": "#56B4E9"}


def platform_colours(platforms: list[str]) -> dict[str, str]:
    """Each platform's colour: its own from :data:`PLATFORM_COLOURS`, or else the next
    palette colour that no platform in ``platforms`` has taken."""
    taken = {PLATFORM_COLOURS[p] for p in platforms if p in PLATFORM_COLOURS}
    spare = [c for c in PALETTE if c not in taken]
    out: dict[str, str] = {}
    for p in platforms:
        if p in PLATFORM_COLOURS:
            out[p] = PLATFORM_COLOURS[p]
        else:
            out[p] = spare.pop(0) if spare else PALETTE[len(out) % len(PALETTE)]
    return out


def plot_normalised(report: dict[str, Any], out: Path, title: str | None = None) -> Path:
    cells = report["cells"]
    tests = list(dict.fromkeys(c["test"] for c in cells))
    platforms = list(dict.fromkeys(c["platform"] for c in cells))
    by = {(c["test"], c["platform"]): c for c in cells}
    n_p = len(platforms)
    width = 0.8 / (2 * n_p)
    fig, ax = plt.subplots(figsize=(max(12.0, 1.25 * len(tests)), 6.2))
    x = np.arange(len(tests))
    colours = platform_colours(platforms)
    for j, p in enumerate(platforms):
        colour = colours[p]
        meas, pred, lo, hi, errs = [], [], [], [], []
        for t in tests:
            row_max = max(by[(t, q)]["measured"] for q in platforms)
            c = by[(t, p)]
            meas.append(c["measured"] / row_max)
            v = c["predicted"] or 0.0
            pred.append(v / row_max)
            ci = c.get("ci95") or [None, None]
            lo.append((v - (ci[0] if ci[0] is not None else v)) / row_max)
            hi.append(((ci[1] if ci[1] is not None else v) - v) / row_max)
            errs.append(c.get("error_pct"))
        base = x - 0.4 + (2 * j) * width
        ax.bar(base + width / 2, meas, width, color=colour, edgecolor="black", linewidth=0.4)
        ax.bar(base + 1.5 * width, pred, width, color=colour, alpha=0.45, hatch="///",
               edgecolor="black", linewidth=0.4, yerr=[lo, hi], capsize=1.5,
               error_kw={"elinewidth": 0.6})
        for k, e in enumerate(errs):
            if e is not None:
                ax.text(base[k] + 1.5 * width, pred[k] + hi[k] + 0.02, f"{e:+.0f}",
                        ha="center", va="bottom", fontsize=5.5, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(tests, rotation=30, ha="right")
    ax.set_ylabel("throughput / best measured in the row")
    ax.set_ylim(0, 1.45)
    ax.axhline(1.0, color="grey", linewidth=0.5, linestyle=":")
    handles = [Patch(facecolor=colours[p], edgecolor="black", label=p) for p in platforms]
    handles += [Patch(facecolor="white", edgecolor="black", label="measured (solid)"),
                Patch(facecolor="white", edgecolor="black", hatch="///",
                      label="predicted (hatched, 95% CI; error % above)")]
    ax.legend(handles=handles, ncol=4, fontsize=8, loc="upper left", frameon=False)
    mape = report.get("mape_in_sample")
    lopo = report.get("mape_leave_one_platform_out")
    loto = report.get("mape_leave_one_test_out")
    parts = [f"in sample {mape:.1f}%" if mape is not None else ""]
    if lopo is not None:
        parts.append(f"leave one platform out {lopo:.1f}%")
    if loto is not None:
        parts.append(f"leave one test out {loto:.1f}%")
    ax.set_title(title or f"{report['experiment']}: measured vs predicted; mean absolute error "
                 + ", ".join(p for p in parts if p), fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
