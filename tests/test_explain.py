"""``uksim explain``: the breakdown adds up, the routes are what the platforms say, the
pictures are drawn, and bad input ends in one line and exit code 2. Periodic work (a
timer) is shown apart from the stages, and the time of failed requests is accounted
apart, so the stages still add up to the latency; an open load's backlog is a row.

Runs are short (5000 requests, two replications; 20000 where a timer must fire a few
times): a fraction of a second to two seconds each.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main as cli_main
from sim.composition import Settings, compose
from sim.explain import ACCOUNTING_TOLERANCE, ExplainRequest, Explanation, compare, explain
from sim.parameters import current_parameters

FAST = {"requests": 5000, "reps": 2}
FAST_ARGS = ["-n", "5000", "--reps", "2"]


@functools.cache
def _run(req: ExplainRequest) -> Explanation:
    return explain(req)


def _explain(platform: str, test: str = "GET", **kw: object) -> Explanation:
    return _run(ExplainRequest(platform, test=test, **{**FAST, **kw}))  # type: ignore[arg-type]


def _mean(cost: object) -> float:
    """A cost as the composer writes it: a number, or a distribution with a mean."""
    return float(cost["mean"]) if isinstance(cost, dict) else float(cost or 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("platform,test,kw", [
    ("osv_kvm", "GET", {}),
    ("ubuntu_bare", "GET", {}),
    ("ubuntu_kvm", "LRANGE_600", {}),
    ("rumprun_kvm", "SET", {}),            # the AOF fsync: device time inside a batch
    ("netbsd_kvm", "GET", {}),             # a delay stage
    ("container", "GET", {"clients": 1, "pipeline": 1}),
])
def test_stage_times_add_up_to_the_mean_latency_per_message(platform: str, test: str,
                                                            kw: dict) -> None:
    # Every ns between a message's send and its last reply is booked to one stage (CPU,
    # waiting or device); only the messages in flight at the edges of the measurement
    # window make the two differ, by far less than ACCOUNTING_TOLERANCE.
    e = _explain(platform, test, **kw)
    assert e.total_us == pytest.approx(sum(s.total_us for s in e.stages))
    assert e.total_us == pytest.approx(e.cpu_us + e.wait_us + e.device_us)
    assert sum(s.share for s in e.stages) == pytest.approx(1.0)
    assert abs(e.accounting_gap) <= ACCOUNTING_TOLERANCE, (e.total_us, e.latency_us)
    assert all(s.cpu_us >= 0 and s.wait_us >= -1e-6 and s.device_us >= 0 for s in e.stages)
    # per message = per request x pipeline: the latency of a request is its message's
    assert e.throughput_rps.value > 0


def test_rows_follow_the_route_with_contexts_and_descriptions() -> None:
    e = _explain("ubuntu_kvm")
    names = [s.name for s in e.stages]
    assert names == list(dict.fromkeys(e.route))
    assert names[0] == "bench.send" and names[-1] == "bench.recv"
    assert all(s.description for s in e.stages)
    by = {s.name: s for s in e.stages}
    assert by["vhost.to_guest"].context == "vhost" and by["vhost.to_guest"].cores == (2,)
    # the cpu stages after the event loop run inside its batch: waiting booked to the loop
    assert by["guest.write"].inside == "redis.loop" and by["guest.write"].wait_us == 0
    assert by["guest.napi"].inside is None


def test_bottleneck_is_named() -> None:
    get = _explain("ubuntu_bare")
    assert get.loads[0].name == "server" and get.loads[0].utilisation.value > 0.9
    assert "server" in get.bottleneck and "limits throughput" in get.bottleneck
    put = _explain("ubuntu_bare", "SET")
    assert put.loads[0].kind == "device" and "aof" in put.bottleneck
    # fsync-bound: its own batch's fsync, and waiting for the one before it to finish
    assert put.device_us > 0.3 * put.total_us
    assert put.device_us + put.wait_us > 0.95 * put.total_us
    slow = _explain("netbsd_kvm")
    assert "latency-bound" in slow.bottleneck


def test_a_context_with_more_threads_than_cores_is_as_busy_as_its_cores() -> None:
    # gunicorn's four workers on the guest's one vCPU keep that vCPU busy all the time
    # (throughput x CPU per request = 1), so the vCPU is the bottleneck, not 25% busy
    vote = explain(ExplainRequest(platform="ubuntu_kvm", app="vote", workload="ab",
                                  clients=20, requests=2000, reps=2))
    server = next(x for x in vote.loads if x.name == "server")
    assert server.utilisation.value > 0.97
    assert vote.loads[0].name == "server" and "limits throughput" in vote.bottleneck


@pytest.mark.parametrize("platform", ["osv_kvm", "rumprun_kvm"])
def test_unikernel_route_has_no_system_call(platform: str) -> None:
    # 1. what the table shows: no stage the server runs is a system call
    e = _explain(platform)
    server = [s for s in e.stages if s.context == "server"]
    assert server
    for s in server:
        assert "system call" not in s.description and "system-call" not in s.description, s
    # 2. what the costs are made of: a sentinel system-call cost reaches no server stage
    params = current_parameters().with_values({"linux.syscall": 1e9, "netbsd.syscall": 1e9})
    raw = compose("i5-3470", platform, "redis", "redis-benchmark", "GET", params, Settings())
    for name, st in raw["stages"].items():
        if st.get("context") == "server":
            assert max(_mean(st.get(k)) for k in ("cost", "per_batch")) < 1e9, name


@pytest.mark.parametrize("platform", ["ubuntu_kvm", "netbsd_kvm", "ubuntu_bare"])
def test_kernel_route_has_a_system_call(platform: str) -> None:
    params = current_parameters().with_values({"linux.syscall": 1e9, "netbsd.syscall": 1e9})
    raw = compose("i5-3470", platform, "redis", "redis-benchmark", "GET", params, Settings())
    assert any(st.get("context") == "server" and _mean(st.get("cost")) >= 1e9
               for st in raw["stages"].values())


def _png_pixels(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path)


def test_waterfall_png_is_written_and_drawn(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deep" / "osv.png"
    code = cli_main(["explain", "--platform", "osv_kvm", "--test", "GET", "--png", str(out),
                     *FAST_ARGS])
    assert code == 0
    text = capsys.readouterr().out
    assert "osv.read" in text and "bottleneck:" in text and "total" in text
    img = _png_pixels(out)
    assert out.stat().st_size > 20_000
    h, w = img.shape[:2]
    assert w > 1000 and h > 500
    # the CPU (blue #0072B2) and waiting (orange #E69F00) bars are there
    rgb = img[..., :3]
    blue = np.all(np.abs(rgb - np.array([0x00, 0x72, 0xB2]) / 255) < 0.02, axis=-1)
    orange = np.all(np.abs(rgb - np.array([0xE6, 0x9F, 0x00]) / 255) < 0.02, axis=-1)
    assert blue.sum() > 200 and orange.sum() > 2000


def test_vs_explains_two_platforms_on_one_scale(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    png, js = tmp_path / "vs.png", tmp_path / "vs.json"
    code = cli_main(["explain", "--platform", "osv_kvm", "--vs", "ubuntu_kvm", "--test",
                     "get", "--png", str(png), "--json", str(js), *FAST_ARGS])
    assert code == 0
    text = capsys.readouterr().out
    assert "redis GET on osv_kvm" in text and "redis GET on ubuntu_kvm" in text
    assert "CPU µs per message" in text
    doc = json.loads(js.read_text())
    a, b = doc["explain"]
    assert (a["request"]["platform"], b["request"]["platform"]) == ("osv_kvm", "ubuntu_kvm")
    assert doc["comparison"]["a"] == "osv_kvm"
    assert set(doc["comparison"]["cpu_us_per_message"]) >= {"server", "client", "vhost"}
    assert abs(a["accounting_gap"]) <= ACCOUNTING_TOLERANCE
    single = tmp_path / "one.png"
    cli_main(["explain", "--platform", "osv_kvm", "--png", str(single), *FAST_ARGS])
    assert _png_pixels(png).shape[0] > 1.6 * _png_pixels(single).shape[0]


def test_compare_says_where_the_server_time_goes() -> None:
    # LRANGE_600, where the two differ clearly (on GET they are within a few per cent,
    # and the order of two nearly equal figures says nothing)
    osv, ukvm = _explain("osv_kvm", "LRANGE_600"), _explain("ubuntu_kvm", "LRANGE_600")
    c = compare(osv, ukvm)
    assert abs(c.throughput_ratio - 1) > 0.1
    assert c.throughput_ratio == pytest.approx(osv.throughput_rps.value
                                               / ukvm.throughput_rps.value)
    assert "server" in c.summary and "µs of CPU" in c.summary
    server_a, server_b = c.cpu_us_per_message["server"]
    # both server-bound: throughput follows the server's CPU per message
    assert server_a is not None and server_b is not None
    assert (c.throughput_ratio > 1) == (server_a < server_b)


def test_no_aof_takes_the_fsync_off_the_write_path() -> None:
    e = _explain("ubuntu_bare", "SET", aof=False)
    assert e.device_us == 0
    assert e.loads[0].kind == "context"


@pytest.mark.parametrize("argv,needle", [
    (["--platform", "nosuch"], "unknown platform 'nosuch'; known: container"),
    (["--platform", "osv_kvm", "--vs", "nosuch"], "unknown platform 'nosuch'"),
    (["--platform", "osv_kvm", "--app", "memcached"],
     "unknown app 'memcached'; known: nginx, redis, result, vote"),
    (["--platform", "osv_kvm", "--test", "FLY"], "unknown test 'FLY' for redis-benchmark; "
                                                 "known: PING_INLINE"),
])
def test_unknown_names_exit_2_with_one_line(argv: list[str], needle: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["explain", *argv, *FAST_ARGS])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("uksim: error: "), err
    assert needle in err


@pytest.mark.parametrize("argv", [["-c", "0"], ["-P", "0"], ["-P", "-3"], ["-c", "x"],
                                  ["-n", "0"], ["--reps", "1"]])
def test_bad_load_is_an_argparse_error(argv: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["explain", "--platform", "osv_kvm", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("uksim explain: error: argument ")


def _result(**kw: object) -> Explanation:
    """The result service (Node, with its PostgreSQL poll every second) under ab."""
    return _run(ExplainRequest("osv_kvm", app="result", workload="ab",  # type: ignore[arg-type]
                               **{**FAST, **kw}))


def test_periodic_work_is_shown_apart_and_the_stages_still_add_up() -> None:
    e = _result(requests=20_000)
    assert e.parameters.endswith("jaworski2019-table2.toml")  # the app's calibration
    assert e.request.pipeline == 1  # ab does not pipeline: no study's -P 10
    (poll,) = e.periodic
    assert poll.name == "pg_poll" and poll.context == "server" and poll.every_ms == 1000
    # it takes its cost every period of the server's time: 2 ms a second
    cost_ms = current_parameters("jaworski2019-table2")["node.pg_poll"] / 1e6
    assert poll.busy == pytest.approx(cost_ms / poll.every_ms, rel=0.35)
    assert poll.cpu_us == pytest.approx(poll.busy * 1e6 / e.throughput_rps.value, rel=1e-6)
    # on no route: not among the stages, not in their sum, but in its core's CPU
    assert "pg_poll" not in [s.name for s in e.stages]
    assert abs(e.accounting_gap) <= ACCOUNTING_TOLERANCE
    server = e.load("server")
    assert server is not None and server.cpu_us_per_message == pytest.approx(
        sum(s.cpu_us for s in e.stages if s.context == "server") + poll.cpu_us)


def test_periodic_work_in_the_table_and_the_waterfall(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    out = tmp_path / "result.png"
    assert cli_main(["explain", "--platform", "osv_kvm", "--app", "result", "--workload",
                     "ab", "--png", str(out), *FAST_ARGS]) == 0
    text = capsys.readouterr().out
    assert "(host i5-3470; ab -c 10;" in text
    assert "periodic: pg_poll" in text and "periodic work (pg_poll): every 1000 ms" in text
    assert "holds the server context" in text
    rgb = _png_pixels(out)[..., :3]
    pink = np.all(np.abs(rgb - np.array([0xCC, 0x79, 0xA7]) / 255) < 0.02, axis=-1)
    assert pink.sum() > 20  # the legend's swatch at least


def test_failed_requests_are_accounted_apart() -> None:
    # 50 connections queue at the Node loop; a timeout just above their mean latency
    # without one fails a good share of the requests, which stay in the system (the
    # server still serves them) and are booked by the stages
    none = _result(clients=50)  # no timeout: nothing fails
    assert none.failed_us == 0 and not any(none.failures.values())
    e = _result(clients=50, timeout=round(1.03 * none.latency_us.value * 1e-6, 4))
    assert e.failures["timeouts"] > 0 and e.failures["connect_failures"] == 0
    assert e.failed_us > 0
    naive = e.total_us / e.latency_us.value - 1.0
    assert naive > ACCOUNTING_TOLERANCE  # against completions alone the stages overshoot
    assert abs(e.accounting_gap) <= ACCOUNTING_TOLERANCE  # with the failed time: they add up
    assert e.accounted_us == pytest.approx(e.latency_us.value + e.failed_us)
    doc = e.to_dict()
    assert doc["failed_us"] == pytest.approx(e.failed_us) and doc["failures"]["timeouts"] > 0


def test_failures_in_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["explain", "--platform", "osv_kvm", "--app", "result", "--workload",
                     "ab", "-c", "50", "--timeout", "0.019", *FAST_ARGS]) == 0
    text = capsys.readouterr().out
    assert "--timeout 0.019 s" in text
    assert "completed requests" in text and "failed requests" in text
    assert "µs of failed requests; the stages add up to" in text
    assert "timeouts, 0 connect failures" in text
    assert "note:" not in text  # no accounting gap to excuse


def test_an_open_load_s_backlog_is_the_first_row() -> None:
    below = _explain("osv_kvm", app="nginx", workload="wrk2", rate=5000.0)
    above = _explain("osv_kvm", app="nginx", workload="wrk2", rate=70000.0)
    for e in (below, above):
        assert e.stages[0].name == "client backlog" and e.stages[0].kind == "backlog"
        assert e.offered_rps is not None
        assert abs(e.accounting_gap) <= ACCOUNTING_TOLERANCE
    assert below.status in ("ok", "imprecise") and below.stages[0].share < 0.01
    # past capacity the latency from the intended send is mostly waiting in the client
    assert above.status == "overloaded" and above.stages[0].share > 0.5
    assert above.throughput_rps.value < 0.6 * above.offered_rps  # type: ignore[operator]


@pytest.mark.parametrize("argv,needle", [
    (["--workload", "ab", "-P", "3"], "-P 3: ab writes one request at a time"),
    (["--workload", "wrk2"], "wrk2 sends at a fixed rate"),
    (["--workload", "wrk", "--rate", "100"], "--rate 100: wrk is a closed loop"),
    (["--calibration", "nosuch"], "no calibration"),
])
def test_loads_that_do_not_apply_exit_2(argv: list[str], needle: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["explain", "--platform", "osv_kvm", "--app", "nginx", *argv,
                     *FAST_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_a_run_where_every_request_fails_says_so_instead_of_a_breakdown(
        capsys: pytest.CaptureFixture[str]) -> None:
    # a timeout far below any round trip: every request fails, none completes
    assert cli_main(["explain", "--platform", "osv_kvm", "--app", "nginx", "--workload",
                     "ab", "--timeout", "0.00001", *FAST_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no request completed" in err and "timeouts" in err
    assert "nan" not in err


def test_the_aof_is_named_only_for_an_app_that_has_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["explain", "--platform", "osv_kvm", "--app", "nginx", "--workload",
                     "ab", *FAST_ARGS]) == 0
    assert "AOF" not in capsys.readouterr().out.splitlines()[0]
    assert cli_main(["explain", "--platform", "osv_kvm", "--test", "SET", *FAST_ARGS]) == 0
    assert "AOF on;" in capsys.readouterr().out.splitlines()[0]


def test_the_waterfall_title_names_the_aof_only_for_an_app_that_has_one() -> None:
    from sim.plots.waterfall import _title

    fast = {"requests": 3000, "reps": 2}
    nginx = explain(ExplainRequest(platform="osv_kvm", app="nginx", workload="ab", **fast))
    assert "AOF" not in _title(nginx)
    redis = explain(ExplainRequest(platform="osv_kvm", test="SET", **fast))
    assert "AOF on" in _title(redis)


def test_a_pinned_role_runs_where_it_is_pinned(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["explain", "--platform", "ubuntu_kvm", "--pin", "vhost=0",
                     *FAST_ARGS]) == 0
    text = capsys.readouterr().out
    assert "(host i5-3470, vhost on 0;" in text.splitlines()[0]
    rows = [line for line in text.splitlines() if line.split()[1:2] == ["vhost.to_guest"]]
    assert rows and "vhost (0)" in rows[0]
