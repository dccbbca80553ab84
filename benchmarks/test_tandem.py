"""The tandem5 model in uksim against an idiomatic simpy version of the same model.

Five FIFO stations in series, Poisson arrivals at 0.8 per ms, exponential service of
mean 1 ms at each (``scenarios/theory/tandem5.toml``), 50,000 customers. uksim runs one
replication through :func:`sim.replication.run_replication`; the simpy version is written
as simpy's own examples write models: one ``simpy.Resource`` per station, one process per
customer, ``random.Random(seed).expovariate`` for the draws. Both run in this one session,
timed by CPU time (``time.process_time``: other load on the machine counts less), and
the summary prints customers per second of each and the ratio, of the medians and of the
best rounds; the issue's target, asserted on the best rounds, is uksim >= 4x simpy.
Both compute the same mean sojourn (25 ms by Jackson's theorem), checked loosely so
neither side is timed doing something else.

The memory benchmark runs the same model 10x longer and asserts that the peak of traced
allocations (tracemalloc) does not grow with run length (the histogram and batch means
are fixed-size; requests are not kept).

Run with ``make bench``; these are outside the default ``pytest`` run.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from pathlib import Path

import pytest
import simpy

from sim import analytic
from sim.replication import run_replication
from sim.scenario import load_scenario, to_model

TANDEM = Path(__file__).resolve().parent.parent / "scenarios" / "theory" / "tandem5.toml"
CUSTOMERS = 50_000
TARGET = 4.0
ROUNDS = 7


def tandem_model(customers: int):
    (point,) = load_scenario(TANDEM, [f"workload.requests={customers}", "workload.warmup=0"])
    return point, to_model(point)


def collect_garbage() -> None:
    """Before every round: each starts from the same clean heap."""
    gc.collect()


def simpy_tandem(customers: int, seed: int, lam: float, mus: list[float]) -> float:
    """Idiomatic simpy: a Resource per station, a process per customer. Mean sojourn."""
    rng = random.Random(seed)
    env = simpy.Environment()
    stations = [simpy.Resource(env, capacity=1) for _ in mus]
    done = env.event()
    finished = []

    def customer(env):
        arrive = env.now
        for station, mu in zip(stations, mus, strict=True):
            with station.request() as req:
                yield req
                yield env.timeout(rng.expovariate(mu))
        finished.append(env.now - arrive)
        if len(finished) == customers:
            done.succeed()

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(lam))
            env.process(customer(env))

    env.process(source(env))
    env.run(until=done)
    return sum(finished) / len(finished)


@pytest.mark.benchmark(group="tandem5", timer=time.process_time)
@pytest.mark.parametrize("engine", ["simpy", "uksim"])
def test_tandem5_customers_per_second(benchmark, results, engine):
    point, model = tandem_model(CUSTOMERS)
    lam = point["workload"]["rate"]
    mus = [1.0 / point["stages"][s]["cost"]["mean"] for s in point["path"]["route"]]
    theory = analytic.tandem_sojourn(lam, mus)
    if engine == "simpy":
        mean_ms = benchmark.pedantic(simpy_tandem, args=(CUSTOMERS, 1, lam, mus),
                                     setup=collect_garbage, rounds=ROUNDS, warmup_rounds=1)
    else:
        res = benchmark.pedantic(run_replication, args=(model, 1, 0), setup=collect_garbage,
                                 rounds=ROUNDS, warmup_rounds=1)
        assert res.completed == CUSTOMERS
        mean_ms = res.mean_ns / 1e6
    assert mean_ms == pytest.approx(theory, rel=0.15)  # the same model, loosely
    stats = benchmark.stats.stats
    rate = CUSTOMERS / stats.median
    benchmark.extra_info["customers_per_second"] = round(rate)
    results[engine] = (stats.median, stats.min)
    lines = results.setdefault("lines", [])
    lines.append(f"tandem5 {engine:5s}: median {stats.median:.3f} s CPU for {CUSTOMERS} "
                 f"customers = {rate:,.0f} customers/s (best round {stats.min:.3f} s)")
    if engine == "uksim" and "simpy" in results:
        by_median = results["simpy"][0] / stats.median
        by_best = results["simpy"][1] / stats.min
        lines.append(f"tandem5 ratio uksim/simpy: {by_median:.2f}x by medians, {by_best:.2f}x "
                     f"by best rounds (target >= {TARGET:g}x)")
        # the best round is the least disturbed by other load on the machine (as timeit
        # advises); the medians are reported beside it
        assert by_best >= TARGET, f"uksim is {by_best:.2f}x simpy, below the {TARGET:g}x target"


def traced_peak(customers: int) -> int:
    _, model = tandem_model(customers)
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        res = run_replication(model, 1, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.completed == customers
    return peak


def test_memory_is_flat_in_run_length(benchmark, results):
    short, long = 10_000, 100_000

    def both() -> tuple[int, int]:
        return traced_peak(short), traced_peak(long)

    peak_short, peak_long = benchmark.pedantic(both, rounds=1, iterations=1)
    ratio = peak_long / peak_short
    benchmark.extra_info.update(peak_short_bytes=peak_short, peak_long_bytes=peak_long)
    results.setdefault("lines", []).append(
        f"tandem5 memory: peak {peak_short / 1e6:.2f} MB for {short} customers, "
        f"{peak_long / 1e6:.2f} MB for {long} (10x longer): ratio {ratio:.2f}")
    assert ratio < 1.5, f"10x longer run took {ratio:.2f}x the memory"
