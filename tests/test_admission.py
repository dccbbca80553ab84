"""Load past saturation: the listen backlog, SYN retransmission, connect failure, timeouts.

Exact timelines first (time unit ns, deterministic costs): a SYN that finds the accept
queue full is retransmitted rto, 3 rto, 7 rto... after its send and the connect fails
after the last retry; the connection leaves the queue when its ``until`` stage completes,
not before and not at the end of the route; a closed-loop client that times out sends
its next request while the old one still runs on the server. Then an M/M/1-like open load
at twice its capacity behind a backlog of 4: every latency falls within a few service
times of 0, 1, 3 or 7 s, connect failures come after the last retry, half the outcomes
are failures, and the pre-run saturation check lets it run. Bad input is one clean line.
"""

from __future__ import annotations

import numpy as np
import pytest
from simkit import ROOT, Trace, assemble, scenario, to_toml

from sim.cli import main
from sim.errors import ConfigError
from sim.runner import RunOptions, _saturated, run_points
from sim.scenario import expand_and_resolve, load_scenario, to_model

BACKLOG = ROOT / "scenarios" / "examples" / "backlog.toml"


def listen(**params) -> dict:
    return {"kind": "listen", "until": "serve", **params}


def server(backlog: int = 1, rto: float = 100, syn_retries: int = 2, **extra) -> dict:
    """SYN handling (cost 1), a listen stage, accept-and-serve (10, plus 10 per request
    byte), a reply (2); on two cores."""
    return scenario({"syn": {"kind": "cpu", "context": "kernel", "cost": 1},
                     "listen": listen(backlog=backlog, rto=rto, syn_retries=syn_retries),
                     "serve": {"kind": "cpu", "context": "ctx", "cost": 10, "per_byte": 10},
                     "reply": {"kind": "cpu", "context": "ctx", "cost": 2}},
                    ["syn", "listen", "serve", "reply"], host={"cores": 2},
                    contexts={"kernel": {"cores": [0]}, "ctx": {"cores": [1]}}, **extra)


# ------------------------------------------------------------------------ exact timelines


def test_a_dropped_syn_is_retransmitted_after_rto_then_3_rto_and_then_connect_fails():
    a = assemble(server(backlog=1, rto=100, syn_retries=2))
    t = Trace(a)
    # a long request holds the accept queue: SYN 0..1, serve 1..1001, reply 1001..1003
    t.send(0, request_bytes=99)
    # dropped at 3, at 103 (retransmitted at 102) and at 303 (at 302): gives up at 702
    t.send(2)
    # dropped at 801 and 901 (at 900); retransmitted at 800 + 3 * 100, admitted at 1101
    t.send(800)
    # dropped at 951; retransmitted at 1050, admitted at 1051, serve ..1061, reply ..1063
    t.send(950)
    assert t.run() == [1003, None, 1113, 1063]
    rec = a.recorder
    assert rec.syn_retransmits == 2 + 2 + 1
    assert rec.connect_failures == 1 and rec.measured == 3
    assert sorted(rec._lat) == [113, 313, 1003]  # from the first send, not the last SYN
    listen_seg = a.source.routes[0][1]
    assert listen_seg.queued == 0 and listen_seg.drops == 3 + 2 + 1
    assert rec.in_system == 0


def test_latency_counts_from_the_first_send_and_waiting_is_booked_under_listen():
    a = assemble(server(backlog=1, rto=100, syn_retries=2))
    t = Trace(a)
    t.send(0)
    t.send(2)
    t.run()
    assert a.recorder._lat == [13, 113]  # from t0 = 2, not from the retransmission at 102
    acct = a.acct
    i = acct.index["listen"]
    assert acct.wait[i] == 102 - 3  # dropped at 3, retransmitted at 102
    assert acct.visits[i] == 3  # three SYNs reached the socket
    # every ns of both requests is booked to one stage: 13 + 113
    assert sum(acct.cpu) + sum(acct.wait) + sum(acct.device) == pytest.approx(13 + 113)


def test_the_connection_leaves_the_queue_when_until_completes_not_at_the_end_of_the_route():
    # serve then a long reply on the same context; until = serve: the reply must not hold
    # the accept queue, so the second SYN (arriving while the first is in its reply) is in
    raw = server(backlog=1)
    raw["stages"]["reply"]["cost"] = 50
    a = assemble(raw)
    t = Trace(a)
    t.send(0)   # serve 1..11, reply 11..61
    t.send(20)  # SYN 20..21: admitted (the queue emptied at 11); serve waits for the reply
    assert t.run() == [61, 121]
    assert a.recorder.syn_retransmits == 0
    # the listen stage splits the coalesced run after serve: syn | serve | reply (+ sink)
    kinds = [type(s).__name__ for s in a.source.routes[0]]
    assert kinds == ["CpuSegment", "ListenSegment", "CpuSegment", "Release", "CpuSegment",
                     "Sink"]


def test_an_until_stage_paid_inside_a_batch_releases_when_the_batch_does():
    # an event loop: a poll batch (10 per batch, 1 per item), then accept on the same
    # context, paid inside the batch; the connection leaves the queue as the batch ends
    a = assemble(scenario({"listen": listen(backlog=1, rto=100, until="accept"),
                           "poll": {"kind": "batch", "context": "ctx", "cost": 1,
                                    "per_batch": 10},
                           "accept": {"kind": "cpu", "context": "ctx", "cost": 2}},
                          ["listen", "poll", "accept"]))
    t = Trace(a)
    t.send(0)  # batch 0..13
    t.send(5)  # the queue holds 0 until 13: dropped, retransmitted at 105, batch 105..118
    t.send(14)  # admitted: the batch released the first at 13; batch 14..27
    assert t.run() == [13, 118, 27]
    kinds = [type(s).__name__ for s in a.source.routes[0]]
    assert kinds == ["ListenSegment", "BatchSegment", "Release", "Sink"]


def test_a_timeout_in_a_closed_loop_fails_the_request_and_the_client_sends_the_next():
    # one client, a server taking 10 per request, timeout 5: every request times out; the
    # client sends the next at each timeout while the server still does the old ones
    raw = scenario({"serve": {"kind": "cpu", "context": "ctx", "cost": 10}}, ["serve"],
                   workload={"kind": "closed", "clients": 1, "requests": 6, "warmup": 0,
                             "timeout": 5})
    a = assemble(raw)
    a.run()
    rec = a.recorder
    assert (rec.timeouts, rec.measured) == (6, 0)
    assert a.kernel.now == 30  # timeouts at 5, 10, ... 30, the 6th ends the run
    assert a.source.sent == 6  # at 0, then after each timeout but the last
    # the server works on: those sent at 0, 5 and 10 ran 0..10, 10..20, 20..30 and left
    # the system (their completions ignored); the other three are still in it
    assert rec.in_system == 6 - 3
    assert a.contexts["ctx"].tasks == 6


def test_no_timeout_means_no_timer_events():
    def events(timeout: float) -> int:
        a = assemble(scenario({"s": {"kind": "cpu", "context": "ctx", "cost": 1}}, ["s"],
                              workload={"kind": "closed", "clients": 2, "requests": 100,
                                        "warmup": 0, "timeout": timeout}))
        a.run()
        assert a.recorder.measured == 100 and a.recorder.timeouts == 0
        return a.kernel.scheduled

    assert events(0) == 100 + 1  # one task per request (the last one running at the stop)
    assert events(1000) == 2 * events(0)  # and a timer per request with a timeout


# --------------------------------------------------------------------- statistical runs


def test_a_closed_loop_with_timeouts_counts_them_and_keeps_its_clients():
    exp = {"dist": "exponential", "mean": 1.0}
    raw = scenario({"serve": {"kind": "cpu", "context": "ctx", "cost": exp}}, ["serve"],
                   time_unit="ms",
                   workload={"kind": "closed", "clients": 4, "requests": 4000, "warmup": 0,
                             "timeout": 8.0})
    a = assemble(raw, seed=4)
    a.run()
    rec, src = a.recorder, a.source
    assert rec.timeouts > 100 and rec.measured > 3000
    assert rec.measured + rec.timeouts == 4000
    # every request sent is settled (completed or timed out) except one per client; the
    # client whose outcome ended the run sent no other
    assert src.sent == rec.measured + rec.timeouts + 4 - 1
    # requests that timed out still ran on the server: it took every one sent
    assert a.contexts["ctx"].tasks == src.sent
    assert rec.in_system >= 4 - 1
    assert rec.histogram.max <= 8e6  # a completion after its timeout is not recorded


def test_an_open_load_with_a_timeout_never_records_a_latency_above_it():
    # M/M/1 at 0.95: a long tail; timeout 20 ms cuts it
    raw = scenario({"serve": {"kind": "cpu", "context": "ctx",
                              "cost": {"dist": "exponential", "mean": 1.0}}}, ["serve"],
                   time_unit="ms",
                   workload={"kind": "open", "rate": 0.95, "requests": 20000, "warmup": 0.1,
                             "timeout": 20.0})
    a = assemble(raw, seed=2)
    a.run()
    rec = a.recorder
    assert rec.timeouts > 0 and rec.histogram.max <= 20e6
    assert rec.measured + rec.timeouts == 20000


def twice_capacity() -> dict:
    """M/M/1-like: 200 per s offered, 100 per s served (exponential, mean 10 ms), backlog
    4, rto 1 s, 3 retries: connect() fails 15 s after the send."""
    exp = {"dist": "exponential", "mean": 10.0}
    return scenario({"listen": listen(backlog=4, rto=1000.0, syn_retries=3),
                     "serve": {"kind": "cpu", "context": "ctx", "cost": exp}},
                    ["listen", "serve"], time_unit="ms",
                    # the window opens after 12000 outcomes (about a minute: the first
                    # connect failures come at 15 s and settle some seconds later)
                    workload={"kind": "open", "rate": 0.2, "requests": 6000,
                              "warmup": 2.0})


def test_twice_capacity_behind_a_backlog_retransmits_at_1_3_7_s_and_fails_after():
    a = assemble(twice_capacity())
    a.run()
    rec = a.recorder
    h = rec.histogram
    ms = 1e6
    # bucket i holds (g^(i-1), g^i]: every occupied bucket lies within 300 ms after
    # 0, 1, 3 or 7 s (the queue holds at most 4 connections, one in service, of 10 ms
    # each on average: P(the sum of 4 > 300 ms) ~ 1e-9)
    bands = [(0.0, 300 * ms), (1000 * ms, 1300 * ms), (3000 * ms, 3300 * ms),
             (7000 * ms, 7300 * ms)]
    in_band = [0] * len(bands)
    for i in np.nonzero(h.counts)[0]:
        lo, hi = h.gamma ** (i - 1), h.gamma ** i
        hits = [j for j, (a_, b_) in enumerate(bands) if hi >= a_ and lo <= b_]
        assert hits, f"latencies in ({lo / ms:.1f}, {hi / ms:.1f}] ms fall in no band"
        in_band[hits[0]] += int(h.counts[i])
    assert all(n > 100 for n in in_band), in_band
    assert h.max < 7300 * ms
    assert rec.connect_failures > 1000 and rec.syn_retransmits > rec.connect_failures * 3
    # the server is never idle for long, so half the outcomes are completions
    util = a.contexts["ctx"].busy_ns / rec.window_ns
    assert util > 0.97
    assert rec.measured / 6000 == pytest.approx(util / 2, abs=0.03)
    # a connect failure comes 15 s after its send: the window opened after it could
    assert rec.t_begin > 15000 * ms


def test_the_offered_load_check_lets_a_guarded_overload_run_but_not_an_unguarded_one():
    guarded = to_model(expand_and_resolve(twice_capacity(), "<t>")[0])
    assert _saturated(guarded) == []
    raw = twice_capacity()
    raw["stages"].pop("listen")
    raw["path"]["route"] = ["serve"]
    full = dict(_saturated(to_model(expand_and_resolve(raw, "<t>")[0])))
    assert full == {"context.ctx": pytest.approx(2.0), "cores.0": pytest.approx(2.0)}


def test_the_example_runs_bit_identically_with_the_same_seed_and_reports_its_errors():
    def rows(seed: int) -> list[dict]:
        # a 5 s timeout instead of 30 s, so that a short run sees timeouts
        points = load_scenario(BACKLOG, ["workload.requests=1000", "workload.warmup=1.0",
                                         "workload.timeout=5000"])
        out = run_points(points, RunOptions(seed=seed, reps=2, workers=1))
        for r in out:
            r.pop("wall_seconds")
        return out

    one = rows(3)
    assert one == rows(3)
    assert one != rows(4)
    (row,) = one
    err = row["errors"]
    assert row["status"] != "saturated"
    assert err["timeouts"] > 0 and err["syn_retransmits"] > err["timeouts"]
    assert err["connect_failures"] == 0  # the timeout comes before the 127 s failure
    assert row["completed_requests"] + err["timeouts"] == 2 * 1000
    assert row["throughput_rps"]["value"] == pytest.approx(100, rel=0.1)  # capacity


# ------------------------------------------------------------------- a pool of workers


def workers(size: int = 1) -> dict:
    """A pool of ``size`` workers around work (10), a call elsewhere (100, a delay that
    holds the worker) and the rest of the work (5), all on one core."""
    return scenario({"pool": {"kind": "pool", "size": size, "until": "finish"},
                     "work": {"kind": "cpu", "context": "ctx", "cost": 10},
                     "call": {"kind": "delay", "cost": 100},
                     "finish": {"kind": "cpu", "context": "ctx", "cost": 5}},
                    ["pool", "work", "call", "finish"],
                    contexts={"ctx": {"cores": [0]}})


def test_a_worker_is_held_through_its_call_and_the_next_request_waits_for_it():
    a = assemble(workers(size=1))
    t = Trace(a)
    t.send(0)  # work 0..10, call 10..110, finish 110..115: the worker is free at 115
    t.send(1)  # waits for it from 1 to 115: work 115..125, call ..225, finish ..230
    assert t.run() == [115, 230]
    acct = a.acct
    i = acct.index["pool"]
    assert acct.wait[i] == 115 - 1 and acct.visits[i] == 2
    # without the pool the second request's work runs while the first one waits (10..20)
    free = workers()
    free["path"]["route"].remove("pool")
    del free["stages"]["pool"]
    t = Trace(assemble(free))
    t.send(0)
    t.send(1)
    assert t.run() == [115, 125]


def test_two_workers_serve_two_requests_at_once_and_hand_on_in_arrival_order():
    a = assemble(workers(size=2))
    t = Trace(a)
    for at in (0, 1, 2, 3):
        t.send(at)
    # 0 and 1 take the workers (work 0..10 and 10..20 on the one core); 0 finishes at 115
    # and hands its worker to 2 (work 115..125), so 1's finish waits for the core until 125
    # (..130) and then hands its worker to 3 (work 130..140, call ..240, finish ..245)
    assert t.run() == [115, 130, 230, 245]
    pool = a.source.routes[0][0]
    assert pool.held == 0 and not pool.waiting


# ----------------------------------------------------------------------------- bad input


def bad(mutate) -> str:
    raw = server()
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        expand_and_resolve(raw, "f.toml")
    return str(e.value)


@pytest.mark.parametrize("mutate, key, words", [
    (lambda r: r["stages"]["listen"].update(backlog=0), "stages.listen.backlog", ">= 1"),
    (lambda r: r["stages"]["listen"].update(rto=0), "stages.listen.rto", "> 0"),
    (lambda r: r["stages"]["listen"].update(syn_retries=-1), "stages.listen.syn_retries",
     ">= 0"),
    (lambda r: r["stages"]["listen"].pop("until"), "stages.listen.until", "needs until"),
    (lambda r: r["stages"]["listen"].update(until="nope"), "stages.listen.until",
     "unknown stage 'nope'"),
    (lambda r: r["stages"]["listen"].update(until="syn"), "stages.listen.until",
     "'syn' is not after 'listen' on path.route"),
    (lambda r: r["stages"]["listen"].update(until="listen"), "stages.listen.until",
     "is a listen stage"),
    (lambda r: r["stages"]["listen"].update(cost=1), "stages.listen.cost", "does not apply"),
    (lambda r: r["stages"]["listen"].update(context="ctx"), "stages.listen.context",
     "does not apply"),
    (lambda r: r["stages"]["serve"].update(backlog=3), "stages.serve.backlog",
     "does not apply to a cpu stage"),
    (lambda r: r["path"].update(route=["syn", "listen", "serve", "listen", "serve"]),
     "path.route", "more than once"),
    (lambda r: r["workload"].update(timeout=-1), "workload.timeout", ">= 0"),
    (lambda r: r["workload"].update(report="siege"), "workload.report", "allowed: none, ab"),
])
def test_bad_listen_settings_name_the_file_and_key(mutate, key, words):
    msg = bad(mutate)
    assert msg.startswith(f"f.toml: {key}: "), msg
    assert words in msg


@pytest.mark.parametrize("mutate, key, words", [
    (lambda r: r["stages"]["pool"].pop("size"), "stages.pool.size", "needs size"),
    (lambda r: r["stages"]["pool"].update(size=0), "stages.pool.size", ">= 1"),
    (lambda r: r["stages"]["pool"].update(until="pool"), "stages.pool.until",
     "is a pool stage"),
    (lambda r: r["stages"]["pool"].update(backlog=4), "stages.pool.backlog", "does not apply"),
    (lambda r: r["stages"]["work"].update(size=2), "stages.work.size",
     "does not apply to a cpu stage"),
    (lambda r: r["path"].update(route=["work", "call", "finish", "pool"]), "stages.pool.until",
     "would never give its worker back"),
])
def test_bad_pool_settings_name_the_file_and_key(mutate, key, words):
    raw = workers()
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        expand_and_resolve(raw, "f.toml")
    msg = str(e.value)
    assert msg.startswith(f"f.toml: {key}: "), msg
    assert words in msg


@pytest.mark.parametrize("key, value, message", [
    ("stages.listen.backlog", 0, "must be >= 1"),
    ("stages.listen.until", "elsewhere", "unknown stage 'elsewhere'"),
    ("timers.t.every", -1.0, "must be > 0"),
])
def test_through_the_cli_bad_input_is_one_line_and_exit_2(key, value, message, tmp_path,
                                                         capsys):
    raw = server()
    raw["timers"] = {"t": {"context": "ctx", "every": 1000.0, "cost": 1.0}}
    section, name, param = key.split(".")
    raw[section][name][param] = value
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(raw))
    code = main(["run", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}: {key}: {message}" in err
