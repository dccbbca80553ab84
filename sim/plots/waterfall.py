"""Waterfall pictures of a round trip: one bar per stage, each starting where the last ended.

For each :class:`~sim.explain.Explanation` a row of two panels: on the left the stages in
route order, top to bottom, each bar split into waiting, CPU and device/delay time (µs per
message), with the stage's total written beside it and the simulated mean latency marked;
on the right how busy each context (core) and device was, the bottleneck in red. Several
explanations (``--vs``) share one time axis, so their lengths compare directly.

The bars add the times each stage booked; they are not a timeline of one message (the
cpu stages inside a batch run in the batch's task, interleaved with other messages).
Below the stages, hatched, each periodic work (an app's timer): its CPU and waiting per
message, drawn from zero since it is on no route. When requests failed, the part of the
stages' time that was theirs is marked after the mean latency line, hatched grey.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from sim.explain import SATURATED, Explanation, Periodic, StageTime

WAIT_COLOUR = "#E69F00"  # orange (colour-blind safe palette, Okabe & Ito)
CPU_COLOUR = "#0072B2"  # blue
DEVICE_COLOUR = "#009E73"  # green
BUSY_COLOUR = "#D55E00"  # vermillion: a saturated resource
IDLE_COLOUR = "#999999"
PERIODIC_COLOUR = "#CC79A7"  # reddish purple: periodic work, on no route
FAILED_COLOUR = "#777777"  # grey: time of requests that failed

ROW_IN = 0.30  # figure height per stage
PANEL_EXTRA_IN = 1.2  # per panel: title and axis


def _label(st: StageTime) -> str:
    where = st.context or st.device or st.kind
    prefix = "   └ " if st.inside else ""
    return f"{prefix}{st.name}  [{where}]"


def _periodic_label(p: Periodic) -> str:
    return f"periodic: {p.name}  [{p.context}]"


def _fmt_us(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f} µs"
    if x >= 10:
        return f"{x:.1f} µs"
    return f"{x:.2f} µs"


def _title(e: Explanation) -> str:
    r = e.request
    aof = (", AOF on" if r.aof else ", AOF off") if e.has_aof else ""  # only an app with one
    thr = e.throughput_rps.value
    pipe = r.pipeline or 1
    return (f"{r.app} {r.test} on {r.platform}: {r.load}"
            f"{aof}\n{thr:,.0f} req/s; {_fmt_us(e.latency_us.value)} mean latency per "
            f"message ({pipe} command{'s' if pipe > 1 else ''})")


def _waterfall(ax: Axes, e: Explanation, xmax: float) -> None:
    stages = e.stages
    y = list(range(len(stages)))
    start = 0.0
    for i, st in enumerate(stages):
        x = start
        for width, colour in ((st.wait_us, WAIT_COLOUR), (st.cpu_us, CPU_COLOUR),
                              (st.device_us, DEVICE_COLOUR)):
            if width > 0:
                ax.barh(i, width, left=x, height=0.7, color=colour, edgecolor="none")
                x += width
        ax.text(x + xmax * 0.006, i, f"{_fmt_us(st.total_us)}  {st.share:.0%}"
                if st.share >= 0.005 else _fmt_us(st.total_us),
                va="center", ha="left", fontsize=7.5, color="#333333", zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
        start = x
    for j, p in enumerate(e.periodic):  # on no route: from zero
        i = len(stages) + j
        ax.barh(i, p.wait_us, left=0.0, height=0.7, color=WAIT_COLOUR, hatch="///",
                edgecolor="white")
        ax.barh(i, p.cpu_us, left=p.wait_us, height=0.7, color=PERIODIC_COLOUR, hatch="///",
                edgecolor="white")
        ax.text(p.wait_us + p.cpu_us + xmax * 0.006, i,
                f"{_fmt_us(p.cpu_us)} CPU per message, {p.busy:.2%} of {p.context}'s time: "
                "not on the route, requests wait behind it", va="center", ha="left",
                fontsize=7.5, color="#333333")
        y.append(i)
    lat = e.latency_us.value
    if math.isfinite(lat):
        ax.axvline(lat, color="black", linestyle="--", linewidth=0.9, zorder=3)
        ax.text(lat - xmax * 0.005, -0.85, f"mean latency {_fmt_us(lat)}", ha="right",
                va="center", fontsize=8)
        if e.failed_us > 0:
            ax.barh(-0.85, e.failed_us, left=lat, height=0.5, color=FAILED_COLOUR,
                    hatch="xx", edgecolor="white")
            ax.text(lat + e.failed_us + xmax * 0.005, -0.85,
                    f"+ {_fmt_us(e.failed_us)} of failed requests", ha="left", va="center",
                    fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([_label(s) for s in stages]
                       + [_periodic_label(p) for p in e.periodic], fontsize=8)
    for tick, st in zip(ax.get_yticklabels(), stages, strict=False):
        if st.inside:
            tick.set_color("#555555")
    ax.set_ylim(len(y) - 0.4, -1.5)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("time per message (µs), stages in route order", fontsize=9)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(_title(e), fontsize=10, loc="left")
    ax.tick_params(axis="x", labelsize=8)


def _utilisation(ax: Axes, e: Explanation) -> None:
    loads = [x for x in e.loads if math.isfinite(x.utilisation.value)]
    labels = []
    for i, x in enumerate(loads):
        u = x.utilisation.value
        colour = BUSY_COLOUR if u >= SATURATED else IDLE_COLOUR
        ax.barh(i, min(u, 1.0) * 100, height=0.6, color=colour)
        ax.text(min(u, 1.0) * 100 + 2, i, f"{u:.0%}", va="center", fontsize=8)
        if x.kind == "device":
            labels.append(f"{x.name} (device)")
        else:
            cores = ",".join(str(c) for c in x.cores)
            cpu = x.cpu_us_per_message
            labels.append(f"{x.name} (core {cores})" +
                          (f"\n{_fmt_us(cpu)} CPU/message" if cpu is not None else ""))
    ax.set_yticks(range(len(loads)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(loads) - 0.4, -0.6)
    ax.set_xlim(0, 125)
    ax.set_xticks([0, 50, 100])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("busy (% of time)", fontsize=9)
    ax.set_title("utilisation", fontsize=10, loc="left")


def plot_waterfall(explanations: Sequence[Explanation], out: Path,
                   caption: str | None = None) -> Path:
    """Draw one waterfall row per explanation (one time scale for all); write ``out``."""
    if not explanations:
        raise ValueError("nothing to draw")
    xmax = max(max(e.total_us, e.latency_us.value if math.isfinite(e.latency_us.value)
                   else 0.0) for e in explanations) * 1.16
    heights = [(len(e.stages) + len(e.periodic)) * ROW_IN + PANEL_EXTRA_IN
               for e in explanations]
    caption_lines = textwrap.wrap(caption, 180) if caption else []
    bottom_in = 0.75 + 0.16 * len(caption_lines)  # legend, note and caption
    top_in = 0.55  # the first panel's two-line title
    height_in = sum(heights) + bottom_in + top_in
    fig = plt.figure(figsize=(13.5, height_in))
    grid = fig.add_gridspec(len(explanations), 2, width_ratios=[4.2, 1],
                            height_ratios=heights, wspace=0.32, hspace=0.3,
                            left=0.2, right=0.97, top=1 - top_in / height_in,
                            bottom=(bottom_in + 0.45) / height_in)
    first = None
    for row, e in enumerate(explanations):
        ax = fig.add_subplot(grid[row, 0], sharex=first)
        first = first or ax
        _waterfall(ax, e, xmax)
        _utilisation(fig.add_subplot(grid[row, 1]), e)
    handles = [Patch(color=WAIT_COLOUR, label="waiting (core, batch, queue)"),
               Patch(color=CPU_COLOUR, label="CPU"),
               Patch(color=DEVICE_COLOUR, label="device / delay (e.g. AOF fsync)"),
               Patch(color=BUSY_COLOUR, label=f"resource busy ≥ {SATURATED:.0%}")]
    if any(e.periodic for e in explanations):
        handles.append(Patch(facecolor=PERIODIC_COLOUR, hatch="///", edgecolor="white",
                             label="periodic work (a timer), on no route"))
    if any(e.failed_us > 0 for e in explanations):
        handles.append(Patch(facecolor=FAILED_COLOUR, hatch="xx", edgecolor="white",
                             label="time of failed requests (in the stages)"))
    note = "\n".join([*caption_lines, "└ = runs inside the batch stage above it (its CPU is "
                      "paid in that task; its waiting is booked to the batch stage)"])
    fig.text(0.01, 0.08 / height_in, note, fontsize=8, va="bottom", color="#333333")
    fig.legend(handles=handles, loc="lower left", ncol=len(handles), fontsize=8.5,
               frameon=False,
               bbox_to_anchor=(0.01, (0.16 * (len(caption_lines) + 1) + 0.1) / height_in))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
