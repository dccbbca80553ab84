"""``uksim run SCENARIO...``: run scenarios and print (and optionally save) the results.

Prints one table row per scenario point: throughput and latency with their 95%
intervals, the replications it took and the status (``ok``; ``imprecise`` when the cap on
replications came before the precision target; ``saturated``). A scenario whose workload
says ``report = "ab"`` (``wrk``, ``wrk2``, ``redis-benchmark``) also gets that tool's
summary: for ab, requests per second, transfer rate, failed requests and the "served
within" table. ``--json OUT`` writes
``{"results": [row, ...], ...}``, each row holding the fully resolved scenario; the file
is rewritten after every finished point, so an interrupted sweep keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from sim.commands.argtypes import at_least_two, nonneg_int
from sim.resources import scenarios_dir
from sim.runner import RunOptions, document, run_points
from sim.scenario import load_scenario
from sim.textable import fmt_estimate, render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run scenario files and print throughput and latency",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario TOML file(s)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--reps", type=at_least_two, default=None,
                   help="exactly this many replications (turns run-length control off)")
    p.add_argument("--workers", type=nonneg_int, default=None,
                   help="parallel processes (default: run.workers; 0 = one per core)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. workload.rate=0.5 (repeatable)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT",
                   help="write results and resolved scenarios as JSON")
    p.set_defaults(handler=main)


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as an ordinary file would be, not mkstemp's 0600
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False, default=_jsonable)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(type(x).__name__)


HEADERS = ["scenario", "point", "throughput req/s", "mean ms", "p50 ms", "p99 ms", "max ms",
           "reps", "status"]


def table_row(row: dict[str, Any]) -> list[str]:
    lat = row["latency_ms"]
    point = ",".join(f"{k.split('.')[-1]}={v}" for k, v in row["sweep"].items()) or "-"
    return [row["scenario"], point, fmt_estimate(row["throughput_rps"]),
            fmt_estimate(lat["mean"]), fmt_estimate(lat["p50"]), fmt_estimate(lat["p99"]),
            fmt_estimate(lat["max"]).split(" ")[0], str(row["replications"]), row["status"]]


AB_LABEL = 24


def ab_report(row: dict[str, Any]) -> str:
    """``row`` in the layout of ab's summary (each figure with its 95% interval)."""
    point = ",".join(f"{k.split('.')[-1]}={v}" for k, v in row["sweep"].items())
    errors = row["errors"]
    failed = errors["timeouts"] + errors["connect_failures"]
    lines = [f"{row['scenario']}{' ' + point if point else ''}: as ab reports it "
             f"(over {row['replications']} replications)",
             f"{'Complete requests:':<{AB_LABEL}}{row['completed_requests'] + failed}",
             f"{'Failed requests:':<{AB_LABEL}}{failed}",
             f"   (Connect: {errors['connect_failures']}, Timeout: {errors['timeouts']}; "
             f"SYN retransmissions: {errors['syn_retransmits']})",
             f"{'Requests per second:':<{AB_LABEL}}{fmt_estimate(row['throughput_rps'])} "
             "[#/sec] (mean)",
             f"{'Transfer rate:':<{AB_LABEL}}{fmt_estimate(row['transfer_kbytes_per_s'])} "
             "[Kbytes/sec] received",
             "",
             "Percentage of the requests served within a certain time (ms)"]
    for pct, est in row["served_within_ms"].items():
        tail = " (longest request)" if pct == "100" else ""
        lines.append(f" {pct:>3}%  {fmt_estimate(est)}{tail}")
    return "\n".join(lines)


WRK2_PERCENTILES = (("50.000%", "latency_ms", "p50"), ("75.000%", "served_within_ms", "75"),
                    ("90.000%", "latency_ms", "p90"), ("99.000%", "latency_ms", "p99"),
                    ("99.900%", "latency_ms", "p999"), ("100.000%", "latency_ms", "max"))


def wrk2_report(row: dict[str, Any]) -> str:
    """``row`` of an open load as wrk2 reports it: the offered and the achieved rate, the
    latency percentiles from each request's intended send time, and, when the path could
    not keep up, why, and that latency then depends on the run's length."""
    point = ",".join(f"{k.split('.')[-1]}={v}" for k, v in row["sweep"].items())
    w = row["resolved_scenario"]["workload"]
    spacing = "evenly spaced" if not isinstance(w.get("interarrival"), dict) else "Poisson"
    conns = row.get("connections")
    errors = row.get("errors", {})
    failed = errors.get("timeouts", 0) + errors.get("connect_failures", 0)
    lines = [f"{row['scenario']}{' ' + point if point else ''}: as wrk2 reports it "
             f"(over {row['replications']} replications; "
             f"{f'{conns} connections' if conns else 'unbounded connections'}, {spacing})",
             f"{'Offered rate (-R):':<{AB_LABEL}}{row['offered_rps']:,.0f} requests/s",
             f"{'Requests/sec:':<{AB_LABEL}}{_rate(row['throughput_rps'])} (achieved)",
             f"{'Requests:':<{AB_LABEL}}{row['completed_requests']} completed, {failed} failed "
             f"(timeout {errors.get('timeouts', 0)}, connect "
             f"{errors.get('connect_failures', 0)})",
             "",
             "Latency from each request's intended send time (ms)"]
    for label, key, q in WRK2_PERCENTILES:
        tail = " (longest request)" if q == "max" else ""
        lines.append(f" {label:>8}  {fmt_estimate(row[key][q])}{tail}")
    lines += ["", *overload_lines(row)]
    return "\n".join(lines).rstrip()


def _rate(e: dict[str, Any]) -> str:
    """Requests per second with its interval, in whole requests."""
    v, (lo, hi) = e.get("value"), e.get("ci95", [None, None])
    if v is None:
        return "-"
    return f"{v:,.0f}" + (f" ±{(hi - lo) / 2:,.0f}" if lo is not None and hi is not None
                          else "")


def overload_lines(row: dict[str, Any]) -> list[str]:
    """Whether an open load's path kept up with it, in words (empty for a closed load)."""
    offered = row.get("offered_rps")
    if not offered:
        return []
    growth = row.get("latency_growth", {}).get("value")
    grows = ("with the run" if growth is None else "under 0.01 ms per second of run"
             if abs(growth) < 1e-5 else f"{growth * 1e3:,.3g} ms per second of run")
    if row["status"] == "saturated":
        return [f"SATURATED: more than run.max_in_system requests were due and unanswered; "
                f"{offered:,.0f} requests/s is beyond what this path serves"]
    achieved = row["throughput_rps"]["value"]
    if row["status"] != "overloaded":
        return [f"The path keeps up: {achieved:,.0f} of {offered:,.0f} requests/s served; "
                f"latency is steady over the run ({grows})."]
    util = row.get("offered_utilisation", {})
    busiest = max(util.items(), key=lambda kv: kv[1], default=None)
    share = achieved / offered
    lines = [f"OVERLOADED: {offered:,.0f} requests/s offered, {achieved:,.0f} served "
             f"({share:.0%})."]
    if busiest is not None and busiest[1] >= 1.0:
        # a core group adds the contexts that share its cores: named when no context is full
        full = [(k, u) for k, u in util.items() if u >= 1.0 and not k.startswith("cores.")]
        full = full or [(k, u) for k, u in util.items() if u >= 1.0]
        full.sort(key=lambda kv: -kv[1])
        needs = ", ".join(f"{k} {u:.0%}" for k, u in full)
        lines.append(f"  The offered rate is beyond what the path can serve: it would keep "
                     f"busy {needs} of the time.")
    else:
        conns = row.get("connections")
        mean = row["latency_ms"]["mean"]["value"] or 0.0
        wait = (row.get("backlog_ms_per_request") or {}).get("wait_ms") or 0.0
        trip = mean - wait
        most = f" (at most {conns / trip * 1e3:,.0f} requests/s)" if trip > 0 and conns else ""
        where = (f"busiest: {busiest[0]} {busiest[1]:.0%}" if busiest is not None else "")
        many = f"{conns} connections, each" if conns != 1 else "1 connection,"
        lines.append(f"  No resource is at capacity ({where}): {many} "
                     f"holding one request for a {trip:.3g} ms round trip, cannot carry "
                     f"it{most}; raise -c.")
    wait = (row.get("backlog_ms_per_request") or {}).get("wait_ms")
    queued = f" (on average {wait:.3g} ms waiting for a connection)" if wait else ""
    lines.append(f"  Requests queue in the client{queued} and latency grows {grows}: every "
                 "percentile above depends on the run's length (-n).")
    return lines


def tool_report(row: dict[str, Any]) -> str | None:
    """The load tool's own summary of ``row`` its scenario asks for (``report``), if any."""
    report = row["resolved_scenario"]["workload"].get("report", "none")
    if report == "ab":
        return ab_report(row)
    if report == "wrk2" and row.get("offered_rps"):
        return wrk2_report(row)
    if report == "wrk":
        return wrk_report(row)
    if report == "redis-benchmark":
        return redis_benchmark_report(row)
    return None


def _heading(row: dict[str, Any], tool: str, extra: str = "") -> str:
    point = ",".join(f"{k.split('.')[-1]}={v}" for k, v in row["sweep"].items())
    return (f"{row['scenario']}{' ' + point if point else ''}: as {tool} reports it (over "
            f"{row['replications']} replications{extra})")


WRK_PERCENTILES = (("50%", "latency_ms", "p50"), ("75%", "served_within_ms", "75"),
                   ("90%", "latency_ms", "p90"), ("99%", "latency_ms", "p99"))


def wrk_report(row: dict[str, Any]) -> str:
    """``row`` of a closed keep-alive load as ``wrk --latency`` reports it: the latency's
    mean and maximum, its distribution, the requests done, Requests/sec and Transfer/sec
    (MB of 2^20 bytes, as wrk counts them)."""
    w = row["resolved_scenario"]["workload"]
    errors = row.get("errors", {})
    lat = row["latency_ms"]
    kb = row.get("transfer_kbytes_per_s") or {}
    lines = [_heading(row, "wrk --latency", f"; {w.get('clients')} connections"),
             f"    Latency   mean {fmt_estimate(lat['mean'])} ms, max "
             f"{fmt_estimate(lat['max']).split(' ')[0]} ms",
             "  Latency Distribution (ms)"]
    for label, key, q in WRK_PERCENTILES:
        lines.append(f"  {label:>5}  {fmt_estimate(row[key][q])}")
    lines.append(f"  {row['completed_requests']} requests completed"
                 + (f"; Socket errors: timeout {errors['timeouts']}"
                    if errors.get("timeouts") else ""))
    lines.append(f"{'Requests/sec:':<15}{_rate(row['throughput_rps'])}")
    if kb.get("value") is not None:
        mb = {"value": kb["value"] / 1024,
              "ci95": [None if x is None else x / 1024 for x in kb.get("ci95", [None, None])]}
        lines.append(f"{'Transfer/sec:':<15}{fmt_estimate(mb)} MB")
    return "\n".join(lines)


REDIS_BENCHMARK_PERCENTILES = (("avg", "latency_ms", "mean"), ("p50", "latency_ms", "p50"),
                               ("p95", "served_within_ms", "95"), ("p99", "latency_ms", "p99"),
                               ("max", "latency_ms", "max"))


def redis_benchmark_report(row: dict[str, Any]) -> str:
    """``row`` as redis-benchmark (Redis 7) summarises a test: the test's banner, the
    requests, clients and pipeline, the throughput and the latency summary (msec; a
    pipelined command's latency is its message's round trip, as redis-benchmark counts
    it)."""
    w = row["resolved_scenario"]["workload"]
    test = w["classes"][0]["name"] if len(w["classes"]) == 1 else "mix"
    pipeline = w.get("pipeline", 1)
    lines = [_heading(row, "redis-benchmark"),
             f"====== {test} ======",
             f"  {row['completed_requests']} requests completed, {w.get('clients')} parallel "
             f"clients{f', pipeline {pipeline}' if pipeline > 1 else ''}",
             "Summary:",
             f"  throughput summary: {_rate(row['throughput_rps'])} requests per second",
             "  latency summary (msec):"]
    for label, key, q in REDIS_BENCHMARK_PERCENTILES:
        text = fmt_estimate(row[key][q])
        lines.append(f"    {label:>4}  {text.split(' ')[0] if q == 'max' else text}")
    return "\n".join(lines)


def _command(args: argparse.Namespace) -> list[str]:
    """The command line that repeats this run (from the parsed arguments, not sys.argv,
    which is another program's when ``sim.cli.main`` is called in-process)."""
    cmd = ["uksim", "run", *map(str, args.scenarios), "--seed", str(args.seed)]
    if args.reps is not None:
        cmd += ["--reps", str(args.reps)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.json_out is not None:
        cmd += ["--json", str(args.json_out)]
    return cmd


def find_scenario(name: str) -> Path:
    """A scenario file by path, or by its name under the scenarios shipped with uksim
    (``theory/mm1`` for ``scenarios/theory/mm1.toml``)."""
    path = Path(name)
    if path.exists():
        return path
    for candidate in (scenarios_dir() / name, scenarios_dir() / f"{name}.toml"):
        if candidate.is_file():
            return candidate
    return path  # the loader reports it as missing, naming what was asked for


def main(args: argparse.Namespace) -> int:
    points = []
    for path in args.scenarios:
        # every point is checked before any runs
        points.extend(load_scenario(find_scenario(path), args.overrides))
    opts = RunOptions(seed=args.seed, reps=args.reps, workers=args.workers)
    rows: list[dict[str, Any]] = []
    command = _command(args)

    def on_row(row: dict[str, Any]) -> None:
        rows.append(row)
        print(f"  finished {row['scenario']} {row['sweep'] or ''} in {row['wall_seconds']:.1f} s",
              file=sys.stderr, flush=True)
        if args.json_out:
            write_json_atomic(args.json_out, document(rows, opts, command))

    try:
        run_points(points, opts, on_row)
    finally:
        if rows:
            print(render(HEADERS, [table_row(r) for r in rows]))
            for r in rows:
                if r["status"] == "saturated" and "saturated_by" in r:
                    worst = ", ".join(f"{k} at {u:.0%}" for k, u in r["saturated_by"].items())
                    print(f"{r['scenario']}: saturated before running: offered load {worst}; "
                          "lower the arrival rate or add capacity")
                elif (report := tool_report(r)) is not None:
                    print()
                    print(report)
            if args.json_out:
                print(f"wrote {args.json_out}", file=sys.stderr)
    return 0
