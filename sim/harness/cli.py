"""``uksim measure``: the command line of the measurement harness.

``uksim measure redis`` runs redis-benchmark against Debian's redis-server,
``uksim measure http`` runs ab or wrk against nginx, each on the loopback, veth or
bridge-nat path, and ``uksim measure cleanup`` removes harness objects left by a run
that was killed with SIGKILL (the only way to skip the harness's own cleanup).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.errors import UksimError
from sim.harness import netpaths
from sim.harness.runner import ACCESS_LOGS, DEFAULT_REDIS_TESTS, HttpPlan, RedisPlan


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or N,N,...: {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"values must be positive integers: {text!r}")
    return values


def _positive_int(text: str) -> int:
    values = _positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer: {text!r}")
    return values[0]


def _paths(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in netpaths.PATHS]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"unknown path {', '.join(bad) or text!r}; choose from {', '.join(netpaths.PATHS)}")
    return values


def _tests(text: str) -> list[str]:
    values = [v.strip().upper() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("no test named")
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", type=_paths, default=["loopback"],
                   help="loopback, veth or bridge-nat; a comma list measures several "
                        "(default loopback)")
    p.add_argument("--runs", type=_positive_int, default=3,
                   help="repetitions of every cell (default 3)")
    p.add_argument("-c", dest="connections", type=_positive_ints, default=[10],
                   help="connections (concurrency); a comma list sweeps them (default 10)")
    p.add_argument("--out", type=Path, required=True,
                   help="output directory (results.csv, summary.csv, provenance.json, raw/)")
    p.add_argument("--timeout-s", type=float, default=900.0,
                   help="limit for one load-tool run, in seconds (default 900)")
    p.add_argument("--server-dir", default=None,
                   help="where the server's private temp dir is made (default: $TMPDIR or "
                        "/tmp); matters for --aof, whose fsyncs hit that file system")
    p.add_argument("--quiet-below", dest="quiet_below_pct", type=float, default=None,
                   metavar="PCT",
                   help="before each run, wait until other work takes less than PCT %% of "
                        "all cores (sampled for 0.5 s); default: do not wait")
    p.add_argument("--quiet-wait-s", type=float, default=120.0,
                   help="longest wait for a quiet machine before a run (default 120)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``measure`` (with ``redis``, ``http`` and ``cleanup``) to the CLI."""
    p = sub.add_parser(
        "measure", help="measure real servers and load tools on this machine",
        description="Run real servers (redis-server, nginx) and load tools "
                    "(redis-benchmark, ab, wrk) on loopback or in network namespaces the "
                    "harness creates, and write tidy CSV data with provenance.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    r = kinds.add_parser("redis", help="redis-benchmark against redis-server")
    _common(r)
    r.add_argument("-t", dest="tests", type=_tests, default=list(DEFAULT_REDIS_TESTS),
                   help="redis-benchmark tests, comma list (default: "
                        + ",".join(DEFAULT_REDIS_TESTS) + ")")
    r.add_argument("-P", dest="pipeline", type=_positive_int, default=1,
                   help="pipelined requests per connection (default 1)")
    r.add_argument("-n", dest="requests", type=_positive_int, default=100000,
                   help="requests per test (default 100000)")
    r.add_argument("-d", dest="value_bytes", type=_positive_int, default=3,
                   help="SET/GET value size in bytes (default 3)")
    r.add_argument("--aof", action="store_true",
                   help="append-only file with appendfsync always (default: no persistence)")
    r.set_defaults(handler=_redis)

    h = kinds.add_parser("http", help="ab or wrk against nginx serving a static page")
    _common(h)
    h.add_argument("--server", default="nginx", choices=["nginx"], help="HTTP server")
    h.add_argument("-n", dest="requests", type=_positive_int, default=10000,
                   help="requests per ab run (default 10000; wrk uses --duration-s)")
    h.add_argument("--keepalive", action="store_true",
                   help="ab -k: reuse connections (wrk always does)")
    h.add_argument("--tool", choices=["ab", "wrk"], default="ab", help="load tool (default ab)")
    h.add_argument("--duration-s", type=float, default=5.0, help="wrk run length (default 5)")
    h.add_argument("--threads", type=_positive_int, default=1, help="wrk threads (default 1)")
    h.add_argument("--workers", type=_positive_int, default=1,
                   help="nginx worker_processes (default 1)")
    h.add_argument("--page-bytes", type=_positive_int, default=1450,
                   help="size of the static page in bytes (default 1450)")
    h.add_argument("--access-log", choices=ACCESS_LOGS, default="off",
                   help="nginx's access log: off (default), or syslog: a datagram per "
                        "request to a sink of the harness on the host (the models' --log "
                        "syslog)")
    h.set_defaults(handler=_http)

    c = kinds.add_parser("cleanup", help="remove uksim- namespaces, links and NAT rules "
                                         "left by a killed run")
    c.set_defaults(handler=_cleanup)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UksimError(f"--out {out} exists and is not a directory")


def _redis(args: argparse.Namespace) -> int:
    from sim.harness.runner import measure_redis

    _check_out(args.out)
    return measure_redis(RedisPlan(
        paths=args.path, runs=args.runs, tests=args.tests, connections=args.connections,
        pipeline=args.pipeline, requests=args.requests, value_bytes=args.value_bytes,
        aof=args.aof, out=args.out, timeout_s=args.timeout_s, server_dir=args.server_dir,
        quiet_below_pct=args.quiet_below_pct, quiet_wait_s=args.quiet_wait_s,
    ))


def _http(args: argparse.Namespace) -> int:
    from sim.harness.runner import measure_http

    _check_out(args.out)
    return measure_http(HttpPlan(
        server=args.server, paths=args.path, runs=args.runs, connections=args.connections,
        requests=args.requests, keepalive=args.keepalive, tool=args.tool,
        duration_s=args.duration_s, threads=args.threads, workers=args.workers,
        page_bytes=args.page_bytes, out=args.out, timeout_s=args.timeout_s,
        server_dir=args.server_dir, quiet_below_pct=args.quiet_below_pct,
        quiet_wait_s=args.quiet_wait_s, access_log=args.access_log,
    ))


def _cleanup(args: argparse.Namespace) -> int:
    import os
    import sys

    if os.geteuid() != 0:
        raise UksimError("uksim measure cleanup needs root")
    removed = netpaths.remove_leftovers()
    count = sum(len(v) for v in removed.values())
    print(f"uksim: removed {count} leftover harness objects"
          + (f": {removed}" if count else ""), file=sys.stderr)
    return 0
