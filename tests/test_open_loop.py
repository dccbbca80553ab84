"""An open-loop generator at a fixed rate (wrk2): what it must show that a closed loop hides.

Below what the path can serve, the achieved rate is the offered one and a request's
latency is the path's own (a closed loop's at low load). Past it, the achieved rate stops
at capacity and latency, counted from each request's intended send time, grows with the
run's length, while a closed loop at the same concurrency reports a bounded latency
(coordinated omission). A bound on connections moves the queue into the client without
changing a FIFO server's latencies. Same seed, same numbers; bad input exits 2.

Runs are short (nginx on OSv, 4000 requests, two replications): well under a second each.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
from simkit import THEORY

from sim.cli import main as cli_main
from sim.composition import Settings, compose
from sim.errors import UksimError
from sim.parameters import calibration_for, current_parameters
from sim.replication import run_replication
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve, to_model

PLATFORM, APP = "osv_kvm", "nginx"
PARAMS = current_parameters(calibration_for(APP))
N = 4000


@functools.cache
def _row(workload: str, requests: int = N, seed: int = 1, **kw: object) -> dict:
    raw = compose("i5-3470", PLATFORM, APP, workload, "GET", PARAMS,
                  Settings(requests=requests, reps=2, max_reps=2, **kw))  # type: ignore[arg-type]
    return run_point(expand_and_resolve(raw, "test")[0], RunOptions(seed=seed, reps=2))


def _v(row: dict, *keys: str) -> float:
    d = row
    for k in keys:
        d = d[k]
    return float(d["value"])


@functools.cache
def _capacity() -> float:
    """What the path serves when a closed loop of 10 connections keeps it busy (req/s)."""
    return _v(_row("wrk", clients=10), "throughput_rps")


def test_below_capacity_the_offered_rate_is_served_at_the_path_s_own_latency() -> None:
    rate = 0.1 * _capacity()
    row = _row("wrk2", rate=rate)
    assert row["offered_rps"] == pytest.approx(rate)
    assert _v(row, "throughput_rps") == pytest.approx(rate, rel=0.01)
    assert row["status"] in ("ok", "imprecise")
    # at 10% load a request rarely meets another: its latency is a lone request's, that of
    # a closed loop of one connection, but for one wake-up of the client's thread (the
    # closed loop writes its next request while awake, right after reading a reply; the
    # open one sleeps until the next is due)
    lone = _row("wrk", clients=1)
    wake_ms = compose("i5-3470", PLATFORM, APP, "wrk", "GET", PARAMS,
                      Settings())["contexts"]["client"]["wake"] / 1e6
    assert wake_ms > 0
    assert _v(row, "latency_ms", "p50") == pytest.approx(
        _v(lone, "latency_ms", "p50") + wake_ms, rel=0.03)
    assert abs(_v(row, "latency_growth")) < 0.01
    assert row["backlog_ms_per_request"]["wait_ms"] < 0.01 * _v(row, "latency_ms", "mean")


def test_poisson_arrivals_queue_where_evenly_spaced_ones_do_not() -> None:
    rate = 0.6 * _capacity()
    fixed, poisson = _row("wrk2", rate=rate), _row("wrk2", rate=rate, arrivals="poisson")
    assert _v(poisson, "throughput_rps") == pytest.approx(rate, rel=0.03)
    assert _v(poisson, "latency_ms", "p99") > 1.5 * _v(fixed, "latency_ms", "p99")


def test_past_capacity_latency_grows_with_the_run_while_a_closed_loop_hides_it() -> None:
    rate = 2.0 * _capacity()
    short, long = _row("wrk2", rate=rate), _row("wrk2", rate=rate, requests=2 * N)
    for row in (short, long):
        assert row["status"] == "overloaded"
        assert _v(row, "throughput_rps") == pytest.approx(_capacity(), rel=0.05)
        # the backlog grows at offered - achieved: latency by 1 - achieved/offered per unit
        assert _v(row, "latency_growth") == pytest.approx(
            1 - _v(row, "throughput_rps") / rate, abs=0.05)
    assert _v(long, "latency_ms", "p99") > 1.7 * _v(short, "latency_ms", "p99")
    assert _v(long, "latency_ms", "p50") > 1.7 * _v(short, "latency_ms", "p50")
    # the same ten connections in a closed loop: bounded, whatever the run's length
    c_short, c_long = _row("wrk", clients=10), _row("wrk", clients=10, requests=2 * N)
    assert _v(c_long, "latency_ms", "p99") == pytest.approx(_v(c_short, "latency_ms", "p99"),
                                                            rel=0.1)
    assert _v(c_long, "latency_ms", "p99") < 0.05 * _v(short, "latency_ms", "p99")


def test_too_few_connections_limit_the_rate_with_no_resource_full() -> None:
    lone = _row("wrk", clients=1)
    rate = 2.0 * _v(lone, "throughput_rps")  # one connection carries at most 1/round trip
    row = _row("wrk2", rate=rate, clients=1)
    assert row["status"] == "overloaded"
    assert max(row["offered_utilisation"].values()) < 1.0
    assert _v(row, "throughput_rps") == pytest.approx(_v(lone, "throughput_rps"), rel=0.05)


def test_a_bound_on_connections_keeps_a_fifo_server_s_latencies() -> None:
    # M/M/1: one FIFO server. Waiting in the client for one of 3 connections, then in the
    # server's queue, is one FIFO queue: the same latencies from the same draws, exactly.
    raw = expand_and_resolve(_mm1(), "mm1")[0]
    bounded = copy.deepcopy(raw)
    bounded["workload"]["connections"] = 3
    a, b = run_replication(to_model(raw), 7, 0), run_replication(to_model(bounded), 7, 0)
    assert a.completed == b.completed
    assert a.quantiles_ns == b.quantiles_ns and a.max_ns == b.max_ns


def _mm1() -> dict:
    import tomllib

    raw = tomllib.loads((THEORY / "mm1.toml").read_text())
    raw["workload"]["requests"] = 20_000
    return raw


def test_the_report_says_when_the_rate_is_beyond_the_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = f"{2.0 * _capacity():.0f}"
    base = ["predict", "--platform", PLATFORM, "--app", APP, "--workload", "wrk2",
            "-n", str(N), "--reps", "2"]
    assert cli_main([*base, "--rate", rate]) == 0
    out = capsys.readouterr().out
    assert "as wrk2 reports it" in out and "Offered rate (-R):" in out
    assert "Latency from each request's intended send time" in out
    assert "OVERLOADED" in out and "beyond what the path can serve" in out
    assert "context.server" in out and "depends on the run's length" in out
    assert cli_main([*base, "--rate", "1000"]) == 0
    out = capsys.readouterr().out
    assert "The path keeps up" in out and "OVERLOADED" not in out


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    docs = []
    for i, seed in enumerate(("5", "5", "6")):
        out = tmp_path / f"{i}.json"
        assert cli_main(["predict", "--platform", PLATFORM, "--app", APP, "--workload",
                         "wrk2", "--rate", "20000", "--arrivals", "poisson", "-n", "2000",
                         "--reps", "2", "--seed", seed, "--json", str(out)]) == 0
        doc = json.loads(out.read_text())
        docs.append({k: doc[k] for k in ("throughput_rps", "latency_ms", "latency_growth")})
    assert docs[0] == docs[1]
    assert docs[0] != docs[2]


def test_wrk2_is_wrk_with_a_schedule() -> None:
    # the same client work, path and tests as wrk (included, not copied)
    settings = Settings(rate=1000.0)
    wrk = compose("i5-3470", PLATFORM, APP, "wrk", "GET", PARAMS, Settings())
    wrk2 = compose("i5-3470", PLATFORM, APP, "wrk2", "GET", PARAMS, settings)
    assert wrk2["path"] == wrk["path"] and wrk2["stages"] == wrk["stages"]
    w = wrk2["workload"]
    assert w["kind"] == "open" and w["connections"] == 10
    assert w["interarrival"] == pytest.approx(1e6)  # ns between requests at 1000/s
    poisson = compose("i5-3470", PLATFORM, APP, "wrk2", "GET", PARAMS,
                      Settings(rate=1000.0, arrivals="poisson", clients=3))["workload"]
    assert poisson["interarrival"] == {"dist": "exponential", "mean": pytest.approx(1e6)}
    assert poisson["connections"] == 3


@pytest.mark.parametrize("argv,needle", [
    (["--workload", "wrk2"], "wrk2 sends at a fixed rate: give it with --rate"),
    (["--workload", "ab", "--rate", "100"], "--rate 100: ab is a closed loop"),
    (["--workload", "wrk", "--arrivals", "poisson"], "--arrivals poisson: wrk is a closed"),
    (["--workload", "wrk2", "--rate", "100", "-P", "4"], "-P 4: wrk2 writes one request"),
    (["--workload", "ab", "-P", "4"], "-P 4: ab writes one request at a time"),
])
def test_contradictions_exit_2_with_one_line(argv: list[str], needle: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["predict", "--platform", PLATFORM, "--app", APP, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("uksim: error: ") and needle in err, err


@pytest.mark.parametrize("argv", [["--rate", "0"], ["--rate", "-5"], ["--rate", "nan"],
                                  ["--rate", "fast"], ["--rate", "100", "--arrivals", "bursty"],
                                  ["--rate", "100", "--timeout", "0"]])
def test_bad_rates_are_argparse_errors(argv: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["predict", "--platform", PLATFORM, "--app", APP, "--workload", "wrk2",
                  *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("uksim predict: error: argument ")


def test_connections_do_not_apply_to_a_closed_scenario() -> None:
    raw = _mm1()
    raw["workload"] = {"kind": "closed", "clients": 2, "connections": 2}
    with pytest.raises(UksimError, match=r"workload\.connections: does not apply to a closed"):
        expand_and_resolve(raw, "mm1")
