"""``uksim explain``: where one request's time goes on a platform's I/O path, stage by stage.

Runs one load generator's test against the app on a platform (by default
redis-benchmark at the study's load: ``-c 10 -P 10``, AOF on) and prints, for every stage
on the route in order, the context (core) it runs on, what it is, and its CPU, waiting and
device time per message (one round trip of the pipeline) with its share of the round
trip; then the totals, throughput and latency with their 95% intervals, how busy each core
and device was and which one is the bottleneck. Periodic work (an app's timers, such as
the result service's PostgreSQL poll) is shown below the stages: its CPU per message and
its share of its core. Requests that failed (``--timeout``) are reported apart: the
stages book their time too, so the stages add up to the completed messages' latency plus
it. ``--workload wrk2 --rate R`` explains an open load at a fixed rate (its first row:
requests waiting in the client for a connection). ``--png OUT`` draws the same as a
waterfall; ``--vs P2`` explains a second platform under the same test and load, side by
side on one time scale.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sim import __version__
from sim.commands.argtypes import add_log_argument, at_least_two, pin, positive_float, positive_int
from sim.composition import ARRIVALS
from sim.explain import (
    ACCOUNTING_TOLERANCE,
    Comparison,
    ExplainRequest,
    Explanation,
    Interval,
    check_request,
    compare,
    explain,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="break a request's round trip down stage by stage",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--platform", required=True, metavar="P",
                   help="platform (models/platforms), e.g. osv_kvm, ubuntu_kvm")
    p.add_argument("--app", default="redis", help="application (default redis)")
    p.add_argument("--test", default="GET", help="workload test, e.g. GET, SET, LRANGE_600")
    p.add_argument("--vs", metavar="P2", default=None,
                   help="a second platform to explain under the same test and load")
    p.add_argument("-c", dest="clients", type=positive_int, default=10,
                   help="connections (default 10)")
    p.add_argument("-P", dest="pipeline", type=positive_int, default=None,
                   help="commands per message (pipeline; default 10 for a tool that "
                   "pipelines, else 1)")
    p.add_argument("--rate", type=positive_float, default=None, metavar="R",
                   help="requests per second of an open-loop generator (wrk2 -R)")
    p.add_argument("--arrivals", choices=ARRIVALS, default=None,
                   help="an open load's spacing: fixed (default) or poisson")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="S",
                   help="a request not answered within S seconds fails (ab -s; default: "
                   "none)")
    p.add_argument("--calibration", default=None, metavar="NAME",
                   help="calibration in models/calibration (default: the one that fitted "
                   "the app, as predict)")
    p.add_argument("-n", dest="requests", type=positive_int, default=20_000,
                   help="measured requests per replication (default 20000)")
    p.add_argument("--reps", type=at_least_two, default=3,
                   help="replications (default 3; the intervals are over them)")
    p.add_argument("--no-aof", dest="aof", action="store_false",
                   help="append-only file off (default on, with appendfsync always)")
    p.add_argument("--host", default="i5-3470", help="host model (default i5-3470)")
    add_log_argument(p)
    p.add_argument("--pin", type=pin, action="append", default=[], metavar="ROLE=CORES",
                   help="run a role of the host's placement on these cores (server=3, "
                   "client=0, all=0,1; repeatable; default: the host file's placement)")
    p.add_argument("--workload", default=None,
                   help="load generator: redis-benchmark, ab, wrk, wrk2 (default: the "
                   "app's own: redis-benchmark for redis, ab for the HTTP services)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--png", type=Path, default=None, metavar="OUT",
                   help="draw the waterfall to this PNG file")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT",
                   help="write the breakdown as JSON")
    p.set_defaults(handler=main)


def _us(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if abs(x) < 0.005:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.2f}"


def _ci(e: Interval, fmt: str = "{:,.1f}") -> str:
    if not math.isfinite(e.value):
        return "-"
    if e.low is None or e.high is None:
        return fmt.format(e.value)
    return f"{fmt.format(e.value)} ±{fmt.format((e.high - e.low) / 2)}"


def _pct(e: Interval) -> str:
    if not math.isfinite(e.value):
        return "-"
    if e.low is None or e.high is None:
        return f"{e.value:.1%}"
    return f"{e.value:.1%} ±{(e.high - e.low) / 2:.1%}"


def _table(headers: list[str], rows: list[list[str]], left: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths),
                      *(line(r) for r in rows)])


def render(e: Explanation) -> str:
    """The breakdown of one explanation as terminal text."""
    r = e.request
    aof = (f"AOF {'on' if r.aof else 'off'}; " if e.has_aof else "")
    pipe = r.pipeline or 1
    pinned = "".join(f", {role} on {','.join(map(str, cores))}"
                     for role, cores in r.placement)
    out = [f"{r.app} {r.test} on {r.platform} (host {r.host}{pinned}; {r.load}; {aof}"
           f"{e.replications} replications of {r.requests} requests, seed {r.seed})",
           f"parameters: {e.parameters}",
           f"time per message (one round trip of {pipe} "
           f"{'pipelined commands' if pipe > 1 else 'request'}), µs:", ""]
    rows = []
    for i, s in enumerate(e.stages, 1):
        if s.context:
            where = f"{s.context} ({','.join(str(c) for c in s.cores)})"
        else:
            where = s.device or s.kind
        rows.append([str(i), ("  └ " if s.inside else "") + s.name, where, _us(s.cpu_us),
                     _us(s.wait_us), _us(s.device_us), _us(s.total_us), f"{s.share:.1%}",
                     s.description])
    rows.append(["", "total", "", _us(e.cpu_us), _us(e.wait_us), _us(e.device_us),
                 _us(e.total_us), "100.0%", ""])
    if e.failed_us > 0:
        done = e.total_us - e.failed_us
        rows.append(["", "  completed requests", "", "", "", "", _us(done),
                     f"{done / e.total_us:.1%}", "the mean latency of completed messages"])
        rows.append(["", "  failed requests", "", "", "", "", _us(e.failed_us),
                     f"{e.failed_us / e.total_us:.1%}", "time the failed requests spent in "
                     "the stages above, until they left (per completed message)"])
    for p in e.periodic:
        rows.append(["", f"periodic: {p.name}", f"{p.context} "
                     f"({','.join(str(c) for c in p.cores)})", _us(p.cpu_us), _us(p.wait_us),
                     "", _us(p.cpu_us + p.wait_us), "-",
                     f"not on the route ({p.busy:.2%} of its core): {p.description}"])
    out.append(_table(["#", "stage", "context (core)", "cpu", "wait", "device", "total",
                       "share", "what it is"], rows, left={1, 2, 8}))
    out.append("")
    gap = e.accounting_gap
    failed = (f" + {_us(e.failed_us)} µs of failed requests" if e.failed_us > 0 else "")
    out.append(f"simulated mean latency per message: {_ci(e.latency_us)} µs (p99 "
               f"{_ci(e.p99_us)} µs){failed}; the stages add up to {_us(e.total_us)} µs "
               f"({gap:+.2%}; tolerance ±{ACCOUNTING_TOLERANCE:.0%})")
    offered = (f" of {e.offered_rps:,.0f} offered" if e.offered_rps is not None else "")
    out.append(f"throughput: {_ci(e.throughput_rps, '{:,.0f}')} requests/s{offered} "
               f"({e.status})")
    if any(e.failures.values()):
        out.append(f"failed requests: {e.failures.get('timeouts', 0)} timeouts, "
                   f"{e.failures.get('connect_failures', 0)} connect failures (not in the "
                   "latency or the throughput; their time is in the stages, reported apart "
                   "above)")
    loads = []
    for x in e.loads:
        where = (f"core {','.join(str(c) for c in x.cores)}" if x.kind == "context"
                 else "device")
        cpu = (f", {_us(x.cpu_us_per_message)} µs CPU/message"
               if x.cpu_us_per_message is not None else "")
        loads.append(f"{x.name} ({where}) {_pct(x.utilisation)}{cpu}")
    out.append("utilisation: " + "; ".join(loads))
    for p in e.periodic:
        out.append(f"periodic work ({p.name}): every {p.every_ms:g} ms, {_us(p.cpu_us)} µs "
                   f"per message, {p.busy:.2%} of {p.context}'s time; it holds the "
                   f"{p.context} context while requests wait behind it (their waiting is in "
                   "the stages')")
    out.append(f"bottleneck: {e.bottleneck}")
    out.append("  └ = runs inside the batch stage above it: its CPU is paid in that task, "
               "its waiting is booked to the batch stage. Waiting of consecutive cpu stages "
               "on one context (one task) is booked to the first of them.")
    out.extend(f"note: {n}" for n in e.notes)
    return "\n".join(out)


def render_comparison(a: Explanation, b: Explanation, c: Comparison) -> str:
    """CPU per message on each context, side by side, and the one-paragraph summary."""
    rows = []
    for name, (x, y) in c.cpu_us_per_message.items():
        la, lb = a.load(name), b.load(name)
        rows.append([name, _us(x) if x is not None else "-", _us(y) if y is not None else "-",
                     f"{la.utilisation.value:.0%}" if la else "-",
                     f"{lb.utilisation.value:.0%}" if lb else "-"])
    rows.append(["round trip (latency)", _us(a.latency_us.value), _us(b.latency_us.value),
                 "", ""])
    table = _table(["CPU µs per message", c.a, c.b, f"busy {c.a}", f"busy {c.b}"], rows,
                   left={0})
    return f"{table}\n\n{c.summary}"


def main(args: argparse.Namespace) -> int:
    first = ExplainRequest(platform=args.platform, app=args.app, test=args.test, host=args.host,
                           workload=args.workload, clients=args.clients,
                           pipeline=args.pipeline, aof=args.aof, requests=args.requests,
                           reps=args.reps, seed=args.seed, rate=args.rate,
                           arrivals=args.arrivals, timeout=args.timeout,
                           calibration=args.calibration, log=args.log,
                           placement=tuple((role, tuple(c)) for role, c in args.pin))
    reqs = [first] if not args.vs else [first, replace(first, platform=args.vs)]
    reqs = [check_request(r) for r in reqs]  # every mistake reported before anything runs
    results = [explain(r) for r in reqs]
    print("\n\n".join(render(e) for e in results))
    caption = None
    comparison = compare(*results) if len(results) == 2 else None
    if comparison is not None:
        print("\n" + render_comparison(*results, comparison))
        caption = comparison.summary
    if args.png:
        from sim.plots.waterfall import plot_waterfall

        plot_waterfall(results, args.png, caption)
        print(f"wrote {args.png}", file=sys.stderr)
    if args.json_out:
        from sim.commands.run import write_json_atomic

        doc: dict[str, Any] = {"uksim_version": __version__,
                               "explain": [e.to_dict() for e in results]}
        if comparison is not None:
            doc["comparison"] = comparison.to_dict()
        write_json_atomic(args.json_out, doc)
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0
