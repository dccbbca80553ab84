"""Real short measurements: redis-benchmark and ab/wrk on every path, and interrupts.

These start Debian's redis-server and nginx and the real load tools. They skip (saying
which Debian package is missing) without the tools, and the namespace paths skip when
not root; CI runs them as root after ``make system-deps``.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ._support import (
    REPO,
    assert_no_leftovers,
    run_uksim,
    server_pids,
    skip_unless_programs,
    skip_unless_root,
    uksim_argv,
)

pytestmark = pytest.mark.harness

ALL_PATHS = "loopback,veth,bridge-nat"


def read_rows(out: Path, name: str = "results.csv") -> list[dict[str, str]]:
    with (out / name).open() as f:
        return list(csv.DictReader(f))


def check_provenance(out: Path, status: str = "complete") -> dict:
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["status"] == status
    assert prov["host"]["kernel"] and prov["host"]["cores"] >= 1
    assert "cpu_model" in prov["host"] and prov["uksim_version"]
    assert prov["started_utc"].endswith("Z") and prov["finished_utc"]
    assert prov["commands"], "no command line recorded"
    return prov


@pytest.mark.usefixtures("clean_host")
def test_redis_on_every_path(tmp_path: Path) -> None:
    skip_unless_programs("redis-server", "redis-benchmark", "ip", "iptables")
    skip_unless_root()
    out = tmp_path / "redis"
    done = run_uksim("measure", "redis", "--path", ALL_PATHS, "--runs", "1",
                     "-t", "get,set,lrange_100", "-c", "1,10", "-P", "10", "-n", "2000",
                     "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    # 3 paths x 2 connection counts x (GET, SET, the LRANGE list fill, LRANGE_100)
    assert len(rows) == 3 * 2 * 4
    assert {r["path"] for r in rows} == {"loopback", "veth", "bridge-nat"}
    assert {r["test"] for r in rows} == {"GET", "SET", "LPUSH_LRANGE_FILL", "LRANGE_100"}
    for r in rows:
        assert float(r["requests_per_s"]) > 0
        assert float(r["latency_p50_ms"]) <= float(r["latency_p99_ms"])
        assert (r["pipeline"], r["requests"], r["aof"], r["run"]) == ("10", "2000", "false", "1")
        assert (out / r["raw_file"]).is_file()
    assert "[6/6] bridge-nat" in done.stderr and "req/s" in done.stderr
    order = [r["path"] for r in rows]
    assert order.index("veth") < order.index("bridge-nat")
    summary = read_rows(out, "summary.csv")
    assert {s["metric"] for s in summary} >= {"requests_per_s", "latency_p99_ms"}
    prov = check_provenance(out)
    assert set(prov["paths"]) == {"loopback", "veth", "bridge-nat"}
    assert prov["tools"]["redis-benchmark"]["version"].startswith("redis-benchmark")
    # The generated password never reaches the output directory.
    argv = prov["commands"][0]["argv"]
    assert argv[argv.index("-a") + 1] == "<password>"
    password_lines = [ln for ln in prov["servers"]["veth"][0]["config"].splitlines()
                      if ln.startswith("requirepass")]
    assert password_lines == ["requirepass <password>"]
    (nat,) = prov["paths"]["bridge-nat"]
    assert nat["published_address"].startswith("198.18.")
    assert all("uksim-" in rule for rule in nat["iptables_rules"])


@pytest.mark.usefixtures("clean_host")
def test_redis_with_aof_on_loopback(tmp_path: Path) -> None:
    skip_unless_programs("redis-server", "redis-benchmark")
    out = tmp_path / "aof"
    done = run_uksim("measure", "redis", "--aof", "--runs", "2", "-t", "set,get",
                     "-c", "10", "-P", "10", "-n", "2000", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 4 and all(r["aof"] == "true" for r in rows)
    prov = check_provenance(out)
    assert [s["run"] for s in prov["servers"]["loopback"]] == [1, 2]
    config = prov["servers"]["loopback"][0]["config"]
    assert "appendonly yes" in config and "appendfsync always" in config
    assert 'save ""' in config


@pytest.mark.usefixtures("clean_host")
@pytest.mark.parametrize("keepalive", [False, True], ids=["close", "keepalive"])
def test_nginx_ab_on_every_path(tmp_path: Path, keepalive: bool) -> None:
    skip_unless_programs("nginx", "ab", "ip", "iptables")
    skip_unless_root()
    out = tmp_path / "http"
    extra = ["--keepalive"] if keepalive else []
    done = run_uksim("measure", "http", "--server", "nginx", "--path", ALL_PATHS,
                     "--runs", "1", "-c", "1,10", "-n", "500", *extra, "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 6
    for r in rows:
        assert r["tool"] == "ab" and r["keepalive"] == str(keepalive).lower()
        assert r["completed_requests"] == "500" and r["failed_requests"] == "0"
        assert float(r["requests_per_s"]) > 0 and float(r["kbytes_per_s"]) > 0
        pcts = [float(r[f"latency_p{p}_ms"]) for p in (50, 66, 75, 80, 90, 95, 98, 99)]
        assert pcts == sorted(pcts) and pcts[-1] <= float(r["latency_max_ms"])
        raw = (out / r["raw_file"]).read_text()
        assert "Document Length:        1450 bytes" in raw
        if keepalive:
            assert "Keep-Alive requests:    500" in raw
    check_provenance(out)


@pytest.mark.usefixtures("clean_host")
def test_nginx_ships_its_access_log_as_syslog_to_the_harness_sink(tmp_path: Path) -> None:
    skip_unless_programs("nginx", "ab", "ip", "iptables")
    skip_unless_root()
    out = tmp_path / "syslog"
    done = run_uksim("measure", "http", "--path", ALL_PATHS, "--access-log", "syslog",
                     "--keepalive", "--runs", "1", "-c", "5", "-n", "800", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert len(rows) == 3
    for r in rows:
        assert r["access_log"] == "syslog" and r["completed_requests"] == "800"
        # one datagram per request reached the sink on the host, on every path
        assert int(r["log_datagrams"]) == 800, r
    prov = check_provenance(out)
    sinks = {path: servers[0]["config"] for path, servers in prov["servers"].items()}
    assert "access_log syslog:server=127.0.0.1:" in sinks["loopback"]
    # from a namespace the log goes to the host's own address on that test network
    for path in ("veth", "bridge-nat"):
        assert "access_log syslog:server=198.1" in sinks[path]
    summary = read_rows(out, "summary.csv")
    assert {s["access_log"] for s in summary} == {"syslog"}


@pytest.mark.usefixtures("clean_host")
def test_nginx_wrk_on_loopback(tmp_path: Path) -> None:
    skip_unless_programs("nginx", "wrk")
    out = tmp_path / "wrk"
    done = run_uksim("measure", "http", "--tool", "wrk", "--duration-s", "1", "--runs", "1",
                     "-c", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(out)
    assert row["tool"] == "wrk" and row["keepalive"] == "true"
    assert int(row["completed_requests"]) > 0
    assert float(row["latency_p50_ms"]) <= float(row["latency_p99_ms"])


def _interrupt_mid_run(args: list[str], sig: int, out: Path) -> tuple[int, str]:
    """Start ``uksim ARGS``, wait for its first progress line, send ``sig``, wait."""
    proc = subprocess.Popen([*uksim_argv(), *args, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("[1/"):
                break
        assert any(ln.startswith("[1/") for ln in lines), "".join(lines)
        time.sleep(0.3)  # now inside a later load-tool run
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines) + rest


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_removes_everything_and_keeps_finished_runs(
    tmp_path: Path, sig: int
) -> None:
    skip_unless_programs("redis-server", "redis-benchmark", "ip", "iptables")
    skip_unless_root()
    before = server_pids()
    out = tmp_path / "interrupted"
    # Long enough that the signal lands mid-measurement: 200 runs of ~0.1 s each.
    code, stderr = _interrupt_mid_run(
        ["measure", "redis", "--path", "bridge-nat,veth", "--runs", "20", "-t", "get",
         "-c", "1,2,3,4,5,6,7,8,9,10", "-n", "20000"], sig, out)
    assert code == 130, stderr
    assert "interrupted" in stderr
    assert_no_leftovers()
    left = server_pids() - before
    assert not left, f"processes left running: {sorted(left)}"
    rows = read_rows(out)
    assert 1 <= len(rows) < 400
    prov = check_provenance(out, status="interrupted")
    assert len(prov["commands"]) >= len(rows)
    for per_run in prov["servers"].values():  # the private temp dirs are gone too
        for server in per_run:
            assert not Path(server["argv"][-1]).parent.exists()


def test_interrupt_of_http_on_loopback_stops_nginx(tmp_path: Path) -> None:
    skip_unless_programs("nginx", "ab")
    before = server_pids()
    code, stderr = _interrupt_mid_run(
        ["measure", "http", "--runs", "200", "-c", "10", "-n", "3000"], signal.SIGINT,
        tmp_path / "http")
    assert code == 130, stderr
    left = server_pids() - before
    assert not left, f"processes left running: {sorted(left)}"


def test_cleanup_command_after_sigkill(tmp_path: Path) -> None:
    """SIGKILL skips the harness's cleanup; ``uksim measure cleanup`` removes the rest."""
    skip_unless_programs("redis-server", "redis-benchmark", "ip", "iptables")
    skip_unless_root()
    before = server_pids()
    # Ten connection counts a run: the kill lands inside a run, not between two.
    code, _ = _interrupt_mid_run(
        ["measure", "redis", "--path", "bridge-nat", "--runs", "20", "-t", "get",
         "-c", "1,2,3,4,5,6,7,8,9,10", "-n", "20000"], signal.SIGKILL, tmp_path / "killed")
    assert code == -signal.SIGKILL
    from sim.harness import netpaths

    try:
        stale = netpaths.leftovers(stale_only=True)
        # SIGKILL skipped the cleanup: the namespace of the run under way is still there.
        assert stale["netns"] and stale["iptables"], stale
        done = run_uksim("measure", "cleanup", timeout_s=60)
        assert done.returncode == 0, done.stderr
        assert stale["netns"][0] in done.stderr
    finally:
        netpaths.remove_leftovers()
    assert_no_leftovers()
    assert not netpaths.stale_server_dirs()  # the killed server's private dir too
    deadline = time.monotonic() + 10
    while server_pids() - before and time.monotonic() < deadline:
        time.sleep(0.1)  # a killed load tool may take a moment to be reaped
    left = server_pids() - before
    assert not left, f"processes left running: {sorted(left)}"
