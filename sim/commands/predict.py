"""``uksim predict``: a load generator against a service on a platform, reported as the tool does.

``uksim predict --platform osv_kvm --app result --workload ab -c 100 -n 20000`` composes
the models (host, platform, application, load generator) and predicts the run with the
calibrated parameters: requests per second, the transfer rate, the latency percentiles,
with 95% intervals over replications, and, for ab, its "Percentage of the requests served
within a certain time" table. ``-k`` turns keep-alive on (ab's -k); without it every
request pays a TCP connection's set-up and tear-down through the platform's path.
``--calibration`` chooses the parameter set (default: the newest calibration that fitted
the application: result -> Table 2's, vote -> Table 3's, else Table 1's).

``--workload wrk2 --rate 20000`` is an open load at a fixed rate (wrk2's ``-R``; ``-c``
is its connections, ``--arrivals poisson`` spaces requests exponentially): it reports the
offered rate beside the achieved one and the latency percentiles from each request's
intended send time, and says when the rate is beyond what the path can serve (the
achieved rate falls short and latency grows with the run's length). ``--timeout S``
fails a request not answered within S seconds (ab's ``-s``, wrk's ``--timeout``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.commands.argtypes import add_log_argument, at_least_two, pin, positive_float, positive_int
from sim.commands.run import HEADERS, table_row, tool_report, write_json_atomic
from sim.composition import ARRIVALS, Settings, compose, default_workload
from sim.parameters import calibration_for, current_parameters
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve
from sim.textable import render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict one load generator against one service",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--platform", required=True, metavar="P", help="platform model")
    p.add_argument("--app", default="redis", help="application (default redis)")
    p.add_argument("--workload", default=None,
                   help="load generator: redis-benchmark, ab, wrk, wrk2 (default: the "
                   "app's own: redis-benchmark for redis, ab for the HTTP services)")
    p.add_argument("--test", default=None,
                   help="the workload's test (default: GET)")
    p.add_argument("--host", default="i5-3470", help="host model (default i5-3470)")
    p.add_argument("--pin", type=pin, action="append", default=[], metavar="ROLE=CORES",
                   help="run a role of the host's placement on these cores (server=3, "
                   "client=0, all=0,1; repeatable; default: the host file's placement)")
    p.add_argument("-c", dest="clients", type=positive_int, default=None,
                   help="concurrency: connections (default: the workload's; wrk2: at most "
                   "this many requests in flight)")
    p.add_argument("--rate", type=positive_float, default=None, metavar="R",
                   help="requests per second an open-loop generator sends (wrk2 -R; "
                   "required with wrk2, refused with a closed loop)")
    p.add_argument("--arrivals", choices=ARRIVALS, default=None,
                   help="an open load's spacing: fixed (wrk2's, the default) or poisson")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="S",
                   help="a request not answered within S seconds fails (ab -s; default: "
                   "none)")
    p.add_argument("-n", dest="requests", type=positive_int, default=20_000,
                   help="measured requests per replication (default 20000)")
    p.add_argument("-P", dest="pipeline", type=positive_int, default=None,
                   help="commands per message (redis-benchmark's -P)")
    p.add_argument("-k", dest="keepalive", action="store_true", default=None,
                   help="keep-alive (ab's -k): no connection per request")
    p.add_argument("--no-aof", dest="aof", action="store_false", help="Redis without AOF")
    add_log_argument(p)
    p.add_argument("--reps", type=at_least_two, default=3, help="replications (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--calibration", default=None, metavar="NAME",
                   help="calibration in models/calibration (default: see above)")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    name = calibration_for(args.app, args.calibration)
    params = current_parameters(name)
    settings = Settings(clients=args.clients, pipeline=args.pipeline, requests=args.requests,
                        keepalive=args.keepalive, aof=args.aof, rate=args.rate,
                        arrivals=args.arrivals, timeout=args.timeout, reps=args.reps,
                        max_reps=args.reps, workers=1, placement=dict(args.pin),
                        log=args.log)
    test = args.test or "GET"
    workload = args.workload or default_workload(args.app)
    raw = compose(args.host, args.platform, args.app, workload, test, params, settings)
    resolved = expand_and_resolve(raw, f"{args.platform}/{args.app}/{test}")[0]
    row = run_point(resolved, RunOptions(seed=args.seed))
    report = tool_report(row)
    print(report if report is not None else render(HEADERS, [table_row(row)]))
    if args.json_out:
        write_json_atomic(args.json_out, {"calibration": name, **row})
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0
