"""nginx + ab measured on this machine beside the model, path by path, as load grows.

A grid of panels: one row per metric (requests per second, median and 99th-percentile
latency), one column per path (loopback, where the HTTP parameters were fitted; veth and
bridge-nat, predicted out of sample). In each panel, ab without keep-alive and with it
(and, where the data set has them, the same with nginx's access log shipped as syslog,
dashed: never fitted, on any path):
the measured medians over runs (markers, with the runs' interquartile range) and the
prediction (line, with its 95% interval as a band), against the connection count
(``-c``), latencies on a log scale; a row shares its scale across paths. Each predicted
point carries its error in percent. The 99th percentile is never fitted anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROWS = (("requests_per_s", "requests per second"), ("latency_p50_ms", "p50 latency (ms)"),
        ("latency_p99_ms", "p99 latency (ms)"))
COLOURS = {"close": "#D55E00", "keep-alive": "#0072B2",  # without an access log (fitted)
           "close, syslog": "#E69F00", "keep-alive, syslog": "#56B4E9"}  # never fitted


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def plot_measured_http(report: dict[str, Any], out: Path) -> Path:
    cells = report["cells"]
    paths = list(dict.fromkeys(c["path"] for c in cells))
    runs = list(dict.fromkeys(c["run"] for c in cells))
    rows = [(m, label) for m, label in ROWS if any(c["test"] == m for c in cells)]
    fig, axes = plt.subplots(len(rows), len(paths), figsize=(3.9 * len(paths), 2.9 * len(rows)),
                             squeeze=False, sharex=True, sharey="row")
    for i, (metric, label) in enumerate(rows):
        for j, path in enumerate(paths):
            ax = axes[i][j]
            for run in runs:
                pts = sorted((c for c in cells if c["test"] == metric and c["path"] == path
                              and c["run"] == run), key=lambda c: c["clients"])
                if not pts:
                    continue
                colour = COLOURS.get(run, "grey")
                xs = [c["clients"] for c in pts]
                meas = [c["measured"] for c in pts]
                lo = [max(0.0, c["measured"] - c.get("measured_q1", c["measured"])) for c in pts]
                hi = [max(0.0, c.get("measured_q3", c["measured"]) - c["measured"]) for c in pts]
                ax.errorbar(xs, meas, yerr=[lo, hi], fmt="o", color=colour, markersize=4,
                            capsize=2, linewidth=0.8, label=f"{run}: measured (median, IQR)")
                pred = [_num(c["predicted"]) for c in pts]
                ax.plot(xs, pred, "--" if "syslog" in run else "-", color=colour, linewidth=1.4,
                        label=f"{run}: predicted (95% CI)")
                ax.fill_between(xs, [_num(c["ci95"][0]) for c in pts],
                                [_num(c["ci95"][1]) for c in pts], color=colour, alpha=0.2,
                                linewidth=0)
                for x, y, c in zip(xs, pred, pts, strict=True):
                    err = c.get("error_pct")
                    if err is not None and math.isfinite(y):
                        ax.annotate(f"{err:+.0f}%", (x, y), textcoords="offset points",
                                    xytext=(3, 4), fontsize=6, color=colour)
            ax.set_xscale("log")
            if metric.startswith("latency"):
                ax.set_yscale("log")  # from tens of microseconds to tens of milliseconds
            else:
                ax.set_ylim(bottom=0)
            ax.tick_params(labelsize=7)
            if i == 0:
                fitted = path in report.get("fitted_on", [])
                ax.set_title(f"{path} ({'fitted' if fitted else 'predicted, out of sample'})",
                             fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(rows) - 1:
                ax.set_xlabel("connections (ab -c)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    ins, oos = report.get("mape_in_sample"), report.get("mape_out_of_sample")
    title = report.get("description", report["experiment"])
    if ins is not None and oos is not None:
        title += (f"\nreq/s and p50, mean absolute error: fitted on loopback {ins:.1f}%, "
                  f"predicted on the other paths {oos:.1f}%")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
