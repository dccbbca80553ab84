"""``uksim predict``: a load generator against a service on a platform, reported as the tool does.

``uksim predict --platform osv_kvm --app result --workload ab -c 100 -n 20000`` composes
the models (host, platform, application, load generator) and predicts the run with the
calibrated parameters: requests per second, the transfer rate, the latency percentiles,
with 95% intervals over replications, and, for ab, its "Percentage of the requests served
within a certain time" table. ``-k`` turns keep-alive on (ab's -k); without it every
request pays a TCP connection's set-up and tear-down through the platform's path.
``--calibration`` chooses the parameter set (default: the newest calibration that fitted
the application: result -> Table 2's, vote -> Table 3's, else Table 1's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.commands.explain import _positive_int
from sim.commands.run import write_json_atomic
from sim.composition import Settings, compose
from sim.errors import UksimError
from sim.parameters import calibration_path, current_parameters
from sim.predict import run_metrics
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve

# which calibration fitted which application's own costs
APP_CALIBRATION = {"result": "jaworski2019-table2", "vote": "jaworski2019-table3"}
SERVED_WITHIN = ("50", "66", "75", "80", "90", "95", "98", "99", "100")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict one load generator against one service",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--platform", required=True, metavar="P", help="platform model")
    p.add_argument("--app", default="redis", help="application (default redis)")
    p.add_argument("--workload", default="redis-benchmark",
                   help="load generator (default redis-benchmark; ab, wrk)")
    p.add_argument("--test", default=None,
                   help="the workload's test (default: GET)")
    p.add_argument("--host", default="i5-3470", help="host model (default i5-3470)")
    p.add_argument("-c", dest="clients", type=_positive_int, default=None,
                   help="concurrency: connections (default: the workload's)")
    p.add_argument("-n", dest="requests", type=_positive_int, default=20_000,
                   help="measured requests per replication (default 20000)")
    p.add_argument("-P", dest="pipeline", type=_positive_int, default=None,
                   help="commands per message (redis-benchmark's -P)")
    p.add_argument("-k", dest="keepalive", action="store_true", default=None,
                   help="keep-alive (ab's -k): no connection per request")
    p.add_argument("--no-aof", dest="aof", action="store_false", help="Redis without AOF")
    p.add_argument("--reps", type=_positive_int, default=3, help="replications (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--calibration", default=None, metavar="NAME",
                   help="calibration in models/calibration (default: see above)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    name = args.calibration or APP_CALIBRATION.get(args.app, "jaworski2019")
    if args.calibration and not calibration_path(name).is_file():
        raise UksimError(f"no calibration {calibration_path(name)}")
    if args.reps < 2:
        raise UksimError("--reps must be at least 2 (an interval needs two)")
    params = current_parameters(name)
    settings = Settings(clients=args.clients, pipeline=args.pipeline, requests=args.requests,
                        keepalive=args.keepalive, aof=args.aof, reps=args.reps,
                        max_reps=args.reps, workers=1)
    test = args.test or "GET"
    raw = compose(args.host, args.platform, args.app, args.workload, test, params, settings)
    resolved = expand_and_resolve(raw, f"{args.platform}/{args.app}/{test}")[0]
    row = run_point(resolved, RunOptions(seed=args.seed))
    print_tool_report(row, args.workload)
    if args.json_out:
        write_json_atomic(args.json_out, {"calibration": name, **row})
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0


def _ci(v: tuple[float | None, list[float | None]], fmt: str) -> str:
    value, (lo, hi) = v
    if value is None:
        return "-"
    if lo is None or hi is None:
        return fmt.format(value)
    return f"{fmt.format(value)} (95% CI {fmt.format(lo)} to {fmt.format(hi)})"


def print_tool_report(row: dict[str, Any], workload: str) -> None:
    """The prediction laid out as the load tool prints its own results."""
    m = run_metrics(row)
    wl = row["resolved_scenario"]["workload"]
    print(f"Scenario:               {row['scenario']} ({row['status']}, "
          f"{row['replications']} replications)")
    print(f"Concurrency Level:      {wl['clients']}")
    print(f"Complete requests:      {row['completed_requests']}")
    errors = row.get("errors") or {}
    if errors:
        failed = int(errors.get("timeouts", 0)) + int(errors.get("connect_failures", 0))
        print(f"Failed requests:        {failed} "
              f"({', '.join(f'{k} {v}' for k, v in errors.items())})")
    print(f"Requests per second:    {_ci(m['requests_per_s'], '{:,.2f}')} [#/sec]")
    print(f"Time per request:       {_ci(_mean_ms(row), '{:.3f}')} [ms] (mean)")
    print(f"Transfer rate:          {_ci(m['kbytes_per_s'], '{:,.2f}')} [Kbytes/sec] received")
    print()
    print("Percentage of the requests served within a certain time (ms)")
    within = row.get("served_within_ms") or {
        "50": row["latency_ms"]["p50"], "90": row["latency_ms"]["p90"],
        "99": row["latency_ms"]["p99"], "100": row["latency_ms"]["max"]}
    for q in SERVED_WITHIN:
        if q in within and within[q]["value"] is not None:
            label = f"{q}%" if q != "100" else "100%"
            tail = " (longest request)" if q == "100" else ""
            print(f"  {label:>5s}  {within[q]['value']:8.1f}{tail}")


def _mean_ms(row: dict[str, Any]) -> tuple[float | None, list[float | None]]:
    d = row["latency_ms"]["mean"]
    return d["value"], d["ci95"]
