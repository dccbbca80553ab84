"""Running a measurement: runs x paths x connection counts, tool by tool, row by row.

:func:`measure_redis` and :func:`measure_http` check everything that can be checked
before anything starts (root for namespace paths, every program present), then for each
run, one path at a time: build the path, start a fresh server, and for each connection
count run the load tool once, keep its raw output, parse it, append the rows and print
a progress line on standard error. Runs go round the paths (run 1 on every path, then
run 2, ...), so slow drift of the machine's state touches every path alike. The path
and server are torn down before the next one (so one path's iptables rules never touch
another's runs) and on any exit: success, error, SIGINT or SIGTERM.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.errors import UksimError
from sim.harness import hostload, netpaths, parsers, safety, servers, tools
from sim.harness.cleanup import CleanupStack, signals_as_interrupt
from sim.harness.collector import UdpSink
from sim.harness.records import ResultWriter, host_facts, utc_now

#: Ports the server listens on inside a namespace, and the published port (bridge-nat).
REDIS_PORT, REDIS_PUBLISHED_PORT = 6379, 16379
HTTP_PORT, HTTP_PUBLISHED_PORT = 80, 18080

DEFAULT_REDIS_TESTS = (
    "PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "LPOP", "SADD", "SPOP",
    "LRANGE_100", "LRANGE_600", "MSET",
)

HTTP_TEST = "STATIC_PAGE"
ACCESS_LOGS = ("off", "syslog")  # nginx's access log: none, or datagrams to a sink
PAGE_PATH = "/index.html"

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class RedisPlan:
    """A redis-benchmark measurement, as given on the command line."""

    paths: list[str]
    runs: int
    tests: list[str]
    connections: list[int]
    pipeline: int
    requests: int
    value_bytes: int
    aof: bool
    out: Path
    timeout_s: float
    server_dir: str | None = None
    quiet_below_pct: float | None = None
    quiet_wait_s: float = 120.0


@dataclass
class HttpPlan:
    """An HTTP measurement (nginx with ab or wrk), as given on the command line."""

    server: str
    paths: list[str]
    runs: int
    connections: list[int]
    requests: int
    keepalive: bool
    tool: str
    duration_s: float
    threads: int
    workers: int
    page_bytes: int
    out: Path
    timeout_s: float
    server_dir: str | None = None
    quiet_below_pct: float | None = None
    quiet_wait_s: float = 120.0
    access_log: str = "off"  # or "syslog": nginx ships it to a sink on the host (UDP)


def _preflight(paths: list[str], programs: list[str]) -> dict[str, str]:
    """Refuse early: root for namespace paths, and every program present."""
    for path in paths:
        if path not in netpaths.PATHS:
            raise UksimError(f"unknown path {path!r}; choose from {', '.join(netpaths.PATHS)}")
        if path != "loopback":
            safety.require_root(path)
    needed = list(programs)
    if any(p != "loopback" for p in paths):
        needed.append("ip")
    if "bridge-nat" in paths:
        needed.append("iptables")
    return {name: tools.require(name) for name in needed}


def _rounds(paths: list[str], runs: int) -> Iterator[tuple[int, str]]:
    """(run, path) in measuring order: every path once per run, so a drift in the
    machine's state over time touches all paths alike."""
    for run in range(1, runs + 1):
        for path in paths:
            yield run, path


def _record_setup(writer: ResultWriter, path: str, run: int, ep: netpaths.Endpoint,
                  srv: servers.Server) -> None:
    """Note a path's set-up and its server (per run: each run builds them anew)."""
    writer.provenance["paths"].setdefault(path, []).append(
        {"run": run, **ep.details, "target": f"{ep.target_address}:{ep.target_port}"})
    writer.provenance["servers"].setdefault(path, []).append(
        {"run": run, "argv": tools.redact_argv(srv.argv), "config": srv.config_text})
    writer.write_provenance()


def _run_tool(writer: ResultWriter, argv: list[str], timeout_s: float, label: str,
              step: dict[str, Any], server_pgid: int, quiet: tuple[float | None, float],
              progress: Progress) -> tuple[tools.Completed, float]:
    """Run a load tool (target already checked); record its command line in provenance.

    Waits first for a quiet machine when ``quiet[0]`` (percent) is set, and returns the
    share of all cores that other work took during the run (``other_cpu_pct``).
    """
    below_pct, max_wait_s = quiet
    waited: dict[str, Any] = {}
    if below_pct is not None:
        t0 = time.monotonic()
        before_pct = hostload.wait_for_quiet(server_pgid, below_pct, max_wait_s)
        waited = {"other_cpu_pct_before": before_pct,
                  "waited_for_quiet_s": round(time.monotonic() - t0, 1)}
        if before_pct >= below_pct:
            progress(f"uksim: machine still busy ({before_pct:.0f}% of cores taken by other "
                     f"work) after {max_wait_s:g} s; measuring {label} anyway")
    started = utc_now()
    meter = hostload.LoadMeter(server_pgid)
    meter.start()
    done = tools.run(argv, timeout_s=timeout_s, check=False)
    other_pct = meter.stop()
    writer.add_command({
        **step, "label": label, "argv": tools.redact_argv(argv), "exit_code": done.returncode,
        "elapsed_s": round(done.elapsed_s, 3), "started_utc": started,
        "other_cpu_pct": other_pct, **waited,
    })
    if done.returncode != 0:
        raise tools.ToolError(
            f"{Path(argv[0]).name} failed (exit {done.returncode}) on {label}: "
            f"{tools.redact(tools.first_line(done.stderr) or tools.first_line(done.stdout))}"
        )
    return done, other_pct


def _keep_raw(writer: ResultWriter, name: str, done: tools.Completed) -> str:
    writer.raw_file(name).write_text(tools.redact(done.stdout))
    if done.stderr.strip():
        writer.raw_file(name + ".stderr").write_text(tools.redact(done.stderr))
    return f"raw/{name}"


def _fmt_rate(rps: float) -> str:
    return f"{rps:,.0f} req/s"


def _measure(plan_out: Path, settings: dict[str, Any], programs: dict[str, str],
             body: Callable[[ResultWriter], None], server_dir: str | None) -> int:
    versions = {name: tools.version_of(name) for name in programs}
    writer = ResultWriter(plan_out, {
        "command": ["uksim", *sys.argv[1:]] if sys.argv else [],
        "settings": settings,
        "host": host_facts(server_dir),
        "tools": {name: {"path": path, "version": versions[name]}
                  for name, path in programs.items()},
        "paths": {},
        "servers": {},
    })
    status = "failed"
    try:
        with signals_as_interrupt():
            body(writer)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        writer.finish(status)
    _stderr(f"uksim: wrote {len(writer.rows)} rows to {writer.results_path}")
    return 0


def measure_redis(plan: RedisPlan, progress: Progress = _stderr) -> int:
    """Run redis-benchmark against redis-server on each path; write plan.out."""
    programs = _preflight(plan.paths, ["redis-server", "redis-benchmark"])
    total = len(plan.paths) * plan.runs * len(plan.connections)
    wanted = {t.upper() for t in plan.tests}

    def body(writer: ResultWriter) -> None:
        step = 0
        for run, path in _rounds(plan.paths, plan.runs):
            with CleanupStack() as stack:
                ep = netpaths.setup(stack, path, REDIS_PORT, REDIS_PUBLISHED_PORT)
                srv = servers.start_redis(stack, ep, aof=plan.aof, base_dir=plan.server_dir)
                _record_setup(writer, path, run, ep, srv)
                for c in plan.connections:
                    step += 1
                    servers.redis_command(ep, srv.password or "", "FLUSHALL")
                    safety.check_load_target(ep.target_address)
                    argv = [
                        programs["redis-benchmark"], "-h", ep.target_address,
                        "-p", str(ep.target_port), "-a", srv.password or "", "--csv",
                        "-t", ",".join(t.lower() for t in plan.tests),
                        "-c", str(c), "-P", str(plan.pipeline), "-n", str(plan.requests),
                        "-d", str(plan.value_bytes),
                    ]
                    started = utc_now()
                    label = f"{path} c={c} run {run}"
                    done, other_pct = _run_tool(
                        writer, argv, plan.timeout_s, label,
                        {"path": path, "connections": c, "run": run}, srv.process.pid,
                        (plan.quiet_below_pct, plan.quiet_wait_s), progress)
                    name = f"redis-{path}-c{c}-P{plan.pipeline}-run{run}.csv"
                    raw = _keep_raw(writer, name, done)
                    parsed = parsers.parse_redis_benchmark_csv(done.stdout)
                    missing = wanted - {r.test for r in parsed}
                    if missing:
                        raise tools.ToolError(
                            f"redis-benchmark ran no test named {', '.join(sorted(missing))} "
                            f"(see {writer.out_dir / raw})")
                    rows = []
                    for r in parsed:
                        rows.append({
                            "path": path, "server": "redis-server", "tool": "redis-benchmark",
                            "test": r.test, "tool_label": r.tool_label, "connections": c,
                            "pipeline": plan.pipeline, "requests": plan.requests,
                            "value_bytes": plan.value_bytes, "aof": plan.aof,
                            "keepalive": True, "run": run,
                            "requests_per_s": r.requests_per_s,
                            "latency_mean_ms": r.latency_mean_ms,
                            "latency_min_ms": r.latency_min_ms,
                            "latency_p50_ms": r.latency_p50_ms,
                            "latency_p95_ms": r.latency_p95_ms,
                            "latency_p99_ms": r.latency_p99_ms,
                            "latency_max_ms": r.latency_max_ms,
                            "completed_requests": plan.requests,
                            "other_cpu_pct": other_pct,
                            "raw_file": raw, "started_utc": started,
                        })
                        progress(f"[{step}/{total}] {path} {r.test} c={c} run {run}: "
                                 f"{_fmt_rate(r.requests_per_s)}")
                    writer.add_rows(rows)

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()}
    settings["kind"] = "redis"
    return _measure(plan.out, settings, programs, body, plan.server_dir)


def _http_rows(plan: HttpPlan, path: str, c: int, run: int, done: tools.Completed,
               raw: str, started: str, percentiles_text: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "path": path, "server": plan.server, "tool": plan.tool, "test": HTTP_TEST,
        "tool_label": f"GET {PAGE_PATH} ({plan.page_bytes} B)", "connections": c,
        "pipeline": 1, "value_bytes": plan.page_bytes, "aof": False, "run": run,
        "raw_file": raw, "started_utc": started, "access_log": plan.access_log,
    }
    if plan.tool == "ab":
        ab = parsers.parse_ab(done.stdout)
        pct = parsers.parse_ab_percentiles(percentiles_text or "")
        row.update(
            requests=plan.requests, keepalive=plan.keepalive,
            requests_per_s=ab.requests_per_s, kbytes_per_s=ab.kbytes_per_s,
            latency_mean_ms=ab.latency_mean_ms, latency_min_ms=pct.get(0),
            completed_requests=ab.completed_requests,
            failed_requests=ab.failed_requests + ab.non_2xx_responses,
            elapsed_s=ab.time_taken_s, latency_max_ms=pct.get(100),
        )
        for p in (50, 66, 75, 80, 90, 95, 98, 99):
            row[f"latency_p{p}_ms"] = pct.get(p)
    else:
        wrk = parsers.parse_wrk(done.stdout)
        row.update(
            requests=wrk.completed_requests, keepalive=True,
            requests_per_s=wrk.requests_per_s, kbytes_per_s=wrk.kbytes_per_s,
            latency_mean_ms=wrk.latency_mean_ms, latency_max_ms=wrk.latency_max_ms,
            completed_requests=wrk.completed_requests,
            failed_requests=wrk.socket_errors + wrk.non_2xx_3xx_responses,
            elapsed_s=wrk.duration_s,
        )
        for p, ms in wrk.latency_percentiles_ms.items():
            row[f"latency_p{p}_ms"] = ms
    return row


def measure_http(plan: HttpPlan, progress: Progress = _stderr) -> int:
    """Run ab or wrk against nginx on each path; write plan.out."""
    if plan.server != "nginx":
        raise UksimError(f"unknown HTTP server {plan.server!r}; only nginx is supported")
    if plan.tool == "ab" and any(c > plan.requests for c in plan.connections):
        raise UksimError("ab needs -n at least as large as every -c value")
    if plan.access_log not in ACCESS_LOGS:
        raise UksimError(f"unknown access log {plan.access_log!r}; choose from "
                         f"{', '.join(ACCESS_LOGS)}")
    programs = _preflight(plan.paths, ["nginx", plan.tool])
    total = len(plan.paths) * plan.runs * len(plan.connections)
    mode = "keepalive" if (plan.keepalive or plan.tool == "wrk") else "close"

    def body(writer: ResultWriter) -> None:
        step = 0
        for run, path in _rounds(plan.paths, plan.runs):
            with CleanupStack() as stack:
                ep = netpaths.setup(stack, path, HTTP_PORT, HTTP_PUBLISHED_PORT)
                sink = None
                if plan.access_log == "syslog":
                    sink = UdpSink(ep.host_address)
                    stack.push(f"log sink {ep.host_address}:{sink.port}", sink.close)
                srv = servers.start_nginx(
                    stack, ep, workers=plan.workers, page_bytes=plan.page_bytes,
                    base_dir=plan.server_dir,
                    syslog_to=None if sink is None else (sink.address, sink.port))
                _record_setup(writer, path, run, ep, srv)
                url = f"http://{ep.target_address}:{ep.target_port}{PAGE_PATH}"
                for c in plan.connections:
                    step += 1
                    safety.check_load_target(ep.target_address)
                    name = f"{plan.tool}-{path}-c{c}-{mode}-run{run}"
                    pct_file = writer.raw_file(f"{name}-percentiles.csv")
                    if plan.tool == "ab":
                        argv = [programs["ab"], "-q", "-r", "-n", str(plan.requests),
                                "-c", str(c), *(["-k"] if plan.keepalive else []),
                                "-e", str(pct_file), url]
                        timeout_s = plan.timeout_s
                    else:
                        argv = [programs["wrk"], "-t", str(min(plan.threads, c)), "-c", str(c),
                                "-d", f"{plan.duration_s:g}s", "--latency", "--timeout", "10s",
                                url]
                        timeout_s = plan.duration_s + 60.0
                    started = utc_now()
                    logged = sink.received() if sink else 0
                    done, other_pct = _run_tool(
                        writer, argv, timeout_s, f"{path} c={c} run {run}",
                        {"path": path, "connections": c, "run": run}, srv.process.pid,
                        (plan.quiet_below_pct, plan.quiet_wait_s), progress)
                    raw = _keep_raw(writer, f"{name}.txt", done)
                    pct_text = pct_file.read_text() if pct_file.exists() else None
                    row = _http_rows(plan, path, c, run, done, raw, started, pct_text)
                    row["other_cpu_pct"] = other_pct
                    if sink is not None:
                        row["log_datagrams"] = sink.received() - logged
                    writer.add_rows([row])
                    failed = row.get("failed_requests") or 0
                    progress(f"[{step}/{total}] {path} {HTTP_TEST} {mode} c={c} run {run}: "
                             f"{_fmt_rate(row['requests_per_s'])}"
                             + (f" ({failed} failed)" if failed else ""))

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()}
    settings["kind"] = "http"
    return _measure(plan.out, settings, programs, body, plan.server_dir)
