"""Periodic work on a context (``[timers.NAME]``): it holds the context like any task.

An exact timeline first: a timer's firing queues behind a request and a request behind a
firing, on one run-to-completion context, and its time is booked under ``timer.NAME``.
Then, on an otherwise idle context, a timer of cost c every T keeps it busy c/T of the
time (within the interval over replications), and requests sharing a context with it wait
what the work-conservation law of a FIFO server says they must:

    W = (lambda E[S^2] / 2 + c^2 / (2 T) + (c / T) W_timer) / (1 - lambda E[S])

(the time-average unfinished work, which Poisson arrivals see, counted job by job: each
request adds S W + S^2 / 2 to its integral, each firing c W_timer + c^2 / 2; with no
requests it is the mean residual of a vacation of length c every T, c^2 / (2 T), as in
the M/G/1 queue with vacations). W_timer, the firings' own mean wait, is measured.
"""

from __future__ import annotations

import pytest
from simkit import Trace, assemble, scenario

from sim.errors import ConfigError
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve


def with_timer(timer: dict, **kw) -> dict:
    raw = scenario({"s": {"kind": "cpu", "context": "ctx", "cost": 5}}, ["s"], **kw)
    raw["timers"] = {"tick": {"context": "ctx", **timer}}
    return raw


def test_a_firing_and_requests_queue_for_the_context_in_turn():
    a = assemble(with_timer({"every": 100, "cost": 30, "offset": 10}))
    t = Trace(a)
    for at in (0, 20, 50, 105, 112):
        t.send(at)
    for timer in a.timers:  # Trace runs the kernel, not the assembly: start them here
        timer.start()
    a.kernel.run(until=300)  # a timer never runs out of events: stop the clock
    # 0..5; the firing at 10 runs 10..40, so the request at 20 runs 40..45; 50..55;
    # 105..110, then the firing at 110 runs 110..140 and the request at 112 140..145
    assert [t.left[i] for i in range(5)] == [5, 45, 55, 110, 145]
    acct = a.acct
    i = acct.index["timer.tick"]
    assert acct.cpu[i] == 3 * 30 and acct.visits[i] == 3  # firings at 10, 110, 210
    assert acct.wait[i] == 0.0  # none found the context busy
    assert acct.wait[acct.index["s"]] == 20 + 28  # the requests at 20 and 112 waited
    assert a.contexts["ctx"].busy_ns == 5 * 5 + 3 * 30
    assert a.recorder.measured == 5  # firings are not requests


def test_the_first_firing_is_a_random_phase_from_its_own_stream():
    raw = with_timer({"every": 1000, "cost": 1})
    firsts = [assemble(raw, seed=1, rep=r).timers[0].first_ns for r in range(4)]
    assert all(0 <= f < 1000 for f in firsts)
    assert len(set(firsts)) == 4
    assert firsts[0] == assemble(raw, seed=1, rep=0).timers[0].first_ns


def test_a_timer_on_an_idle_context_uses_cost_over_period_of_it():
    # a service holding its loop 0.4 ms every 20 ms (Node's result polling its database
    # does so every second); requests cross another context
    raw = scenario({"wire": {"kind": "delay", "cost": 0.1}}, ["wire"], time_unit="ms",
                   contexts={"ctx": {"cores": [0]}, "server": {"cores": [1]}},
                   host={"cores": 2},
                   workload={"kind": "open", "rate": 1.0, "requests": 8000, "warmup": 0.05})
    raw["timers"] = {"poll": {"context": "server", "every": 20.0,
                              "cost": {"dist": "exponential", "mean": 0.4}}}
    raw["run"] = {"workers": 1}
    row = run_point(expand_and_resolve(raw, "<t>")[0], RunOptions(seed=2, reps=6))
    util = row["utilisation"]["context.server"]
    lo, hi = util["ci95"]
    assert lo <= 0.02 <= hi and hi - lo < 0.004
    assert row["utilisation"]["context.ctx"]["value"] == 0.0
    # requests do not wait for it (another context); its time is booked beside theirs
    assert row["latency_ms"]["max"]["value"] == pytest.approx(0.1)
    booked = row["timers_ms_per_request"]["poll"]
    assert booked["cpu_ms"] == pytest.approx(0.02, rel=0.1)  # 0.4 ms per 20 requests
    assert booked["visits"] == pytest.approx(1 / 20, rel=0.05)


def test_requests_sharing_a_context_with_a_timer_wait_as_work_conservation_says():
    lam, c, period = 0.3, 20.0, 100.0  # per ns, ns of work every ns; service 1 ns
    raw = with_timer({"every": period, "cost": c},
                     workload={"kind": "open", "rate": lam, "requests": 100_000,
                               "warmup": 0.02})
    raw["stages"]["s"]["cost"] = 1.0
    a = assemble(raw, seed=5)
    a.run()
    rec = a.recorder
    assert rec.measured == 100_000
    acct = a.acct
    i = acct.index["timer.tick"]
    w_timer = acct.wait[i] / acct.visits[i]
    expected = (lam * 1.0 / 2 + c * c / (2 * period) + c / period * w_timer) / (1 - lam)
    mean = rec.batches.mean_latency(rec.histogram.mean)
    wait, low, high = (x - 1.0 for x in (mean.value, mean.low, mean.high))
    assert low <= expected <= high, (wait, expected, w_timer)
    assert expected > 2 * (lam / 2) / (1 - lam)  # the timer, not the requests, dominates
    util = a.contexts["ctx"].busy_ns / rec.window_ns
    assert util == pytest.approx(lam + c / period, rel=0.01)


@pytest.mark.parametrize("timer, key, words", [
    ({"context": "ctx", "every": -1.0, "cost": 1}, "timers.t.every", "must be > 0"),
    ({"context": "ctx", "every": 0, "cost": 1}, "timers.t.every", "must be > 0"),
    ({"context": "nope", "every": 1.0, "cost": 1}, "timers.t.context", "unknown context"),
    ({"context": "ctx", "every": 1.0}, "timers.t.cost", "missing"),
    ({"context": "ctx", "every": 1.0, "cost": 1, "offset": -2}, "timers.t.offset",
     "must be >= 0"),
    ({"context": "ctx", "every": 1.0, "cost": {"dist": "nope"}}, "timers.t.cost.dist",
     "unknown distribution"),
    ({"context": "ctx", "every": 1.0, "cost": 1, "period": 3}, "timers.t.period",
     "unknown key"),
])
def test_bad_timers_name_the_file_and_key(timer, key, words):
    raw = scenario({"s": {"kind": "cpu", "context": "ctx", "cost": 5}}, ["s"])
    raw["timers"] = {"t": timer}
    with pytest.raises(ConfigError) as e:
        expand_and_resolve(raw, "f.toml")
    assert str(e.value).startswith(f"f.toml: {key}: ") and words in str(e.value)
