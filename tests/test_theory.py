"""The engine against queueing theory: every theory scenario through the real runner.

Each of ``scenarios/theory/{mm1,md1,mmc,tandem5,closed}.toml`` is loaded by the real
loader (shortened with ``--set``-style overrides so the suite stays fast) and run by the
real runner with a fixed seed, a fixed number of replications and no retries. The value
theory gives, computed by :mod:`sim.analytic` from the scenario's own parameters, must
lie inside the 95% confidence interval of the mean latency and the throughput (and, for
M/M/1, whose FIFO sojourn time is exponential, of p50 and p90); utilisations must match
the offered load; Little's law must hold on every run and every replication.

The solvers themselves are checked first, against independent computations: the Lindley
recursion on numpy draws, Buzen's convolution algorithm, the M/M/c birth-death chain.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pytest
from scipy import stats as sst
from simkit import THEORY

from sim import analytic
from sim.replication import run_replication
from sim.runner import RunOptions, run_points
from sim.scenario import load_scenario, to_model

SEED = 1
# (measured requests per replication, replications): enough for honest intervals of a
# few percent at most, small enough for the suite; M/M/1 at rho = 0.9 is the noisiest.
RUNS = {"mm1": (100_000, 20), "md1": (50_000, 10), "mmc": (50_000, 20),
        "tandem5": (50_000, 10), "closed": (50_000, 10)}


@cache
def theory_run(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resolved scenario, result row) of one theory scenario, run once per session."""
    requests, reps = RUNS[name]
    points = load_scenario(THEORY / f"{name}.toml", [f"workload.requests={requests}"])
    assert len(points) == 1
    rows = run_points(points, RunOptions(seed=SEED, reps=reps, workers=2))
    row = rows[0]
    assert row["status"] != "saturated"
    assert row["replications"] == reps
    assert row["completed_requests"] == requests * reps
    return points[0], row


def exp_mean(cost: Any) -> float:
    """The mean of an exponential cost as written in a theory file."""
    assert cost["dist"] == "exponential"
    return cost["mean"] if "mean" in cost else 1.0 / cost["rate"]


def assert_inside(estimate: dict, theory: float, what: str) -> None:
    lo, hi = estimate["ci95"]
    assert lo <= theory <= hi, f"{what}: theory {theory:.6g} outside 95% CI [{lo}, {hi}]"


def assert_littles_law(row: dict) -> None:
    ll = row["littles_law"]
    assert ll["mean_in_system"] == pytest.approx(ll["throughput_x_latency"], rel=0.01)


PER_SECOND = 1000.0  # theory scenarios are in ms; rows give requests per second


# ------------------------------------------------------------------ the solvers themselves


def test_mm1_mean_sojourn_agrees_with_the_lindley_recursion():
    lam, mu, n = 0.5, 1.0, 400_000
    rng = np.random.default_rng(2024)
    a = rng.exponential(1 / lam, n)
    s = rng.exponential(1 / mu, n)
    sojourn = (analytic.lindley_waits(a, s) + s)[n // 20:]
    batches = sojourn[: sojourn.size // 40 * 40].reshape(40, -1).mean(axis=1)
    hw = sst.t.ppf(0.975, 39) * batches.std(ddof=1) / math.sqrt(40)
    assert abs(batches.mean() - analytic.mm1_sojourn(lam, mu)) < hw
    # the sojourn time is exponential with rate mu - lambda: its quantiles too
    for q in (0.5, 0.9):
        assert np.quantile(sojourn, q) == pytest.approx(
            analytic.mm1_sojourn_quantile(lam, mu, q), rel=0.03)


def test_md1_mean_sojourn_agrees_with_the_lindley_recursion():
    lam, d, n = 0.7, 1.0, 400_000
    rng = np.random.default_rng(7)
    a = rng.exponential(1 / lam, n)
    s = np.full(n, d)
    sojourn = (analytic.lindley_waits(a, s) + s)[n // 20:]
    batches = sojourn[: sojourn.size // 40 * 40].reshape(40, -1).mean(axis=1)
    hw = sst.t.ppf(0.975, 39) * batches.std(ddof=1) / math.sqrt(40)
    assert abs(batches.mean() - analytic.md1_sojourn(lam, d)) < hw


def test_lindley_recursion_on_a_hand_worked_example():
    # arrivals at 0, 1, 2, 7 with services 3, 3, 1, 1: waits 0, 2, 4, 0
    a = np.array([0.0, 1.0, 1.0, 5.0])
    s = np.array([3.0, 3.0, 1.0, 1.0])
    assert analytic.lindley_waits(a, s).tolist() == [0.0, 2.0, 4.0, 0.0]


def test_mva_with_one_customer_is_the_sum_of_the_demands():
    d = [1.0, 2.0, 0.5]
    x, r = analytic.mva(d, 1)
    assert r == pytest.approx(sum(d))
    assert x == pytest.approx(1 / sum(d))
    x, r = analytic.mva(d, 1, think=4.0)
    assert x == pytest.approx(1 / (sum(d) + 4.0))


def buzen(demands: list[float], n: int) -> tuple[float, float]:
    """Throughput and response time by Buzen's convolution (product form, no MVA)."""
    g = [1.0] + [0.0] * n
    for d in demands:
        for k in range(1, n + 1):
            g[k] += d * g[k - 1]
    x = g[n - 1] / g[n]
    return x, n / x


@pytest.mark.parametrize("n", [2, 5, 8, 30])
def test_mva_agrees_with_buzens_convolution_and_the_bottleneck_bound(n):
    d = [1.0, 2.0, 0.5]
    x, r = analytic.mva(d, n)
    bx, br = buzen(d, n)
    assert x == pytest.approx(bx, rel=1e-12)
    assert r == pytest.approx(br, rel=1e-12)
    assert x <= min(n / sum(d), 1 / max(d))


def test_erlang_c_with_one_server_is_rho():
    for rho in (0.1, 0.5, 0.9, 0.99):
        assert analytic.erlang_c(1, rho) == pytest.approx(rho)
        assert analytic.mmc_sojourn(rho, 1.0, 1) == pytest.approx(analytic.mm1_sojourn(rho, 1))


@pytest.mark.parametrize("c,a", [(2, 1.5), (4, 3.2), (8, 7.0)])
def test_erlang_c_agrees_with_the_birth_death_chain(c, a):
    # stationary distribution of M/M/c by the balance equations, truncated far out
    k = np.arange(2000)
    rates = np.minimum(k[1:], c)  # departures from state k+1
    logp = np.concatenate([[0.0], np.cumsum(np.log(a) - np.log(rates))])
    p = np.exp(logp - logp.max())
    p /= p.sum()
    assert analytic.erlang_c(c, a) == pytest.approx(p[c:].sum(), rel=1e-9)
    mean_in_system = float((k * p).sum())
    assert analytic.mmc_sojourn(a, 1.0, c) == pytest.approx(mean_in_system / a, rel=1e-9)


def test_tandem_sojourn_is_the_sum_of_its_stations():
    assert analytic.tandem_sojourn(0.8, [1.0] * 5) == pytest.approx(
        5 * analytic.mm1_sojourn(0.8, 1.0))
    with pytest.raises(ValueError):
        analytic.mm1_sojourn(1.0, 1.0)


# --------------------------------------------------------------- the engine against theory


def test_mm1_mean_throughput_and_exponential_quantiles():
    r, row = theory_run("mm1")
    lam = r["workload"]["rate"]
    mu = 1.0 / exp_mean(r["stages"]["service"]["cost"])
    lat = row["latency_ms"]
    assert_inside(lat["mean"], analytic.mm1_sojourn(lam, mu), "mean sojourn")
    assert_inside(lat["p50"], analytic.mm1_sojourn_quantile(lam, mu, 0.5), "p50")
    assert_inside(lat["p90"], analytic.mm1_sojourn_quantile(lam, mu, 0.9), "p90")
    assert_inside(row["throughput_rps"], lam * PER_SECOND, "throughput")
    assert_inside(row["utilisation"]["context.server"], lam / mu, "utilisation")
    assert_littles_law(row)


def test_md1_mean_and_throughput():
    r, row = theory_run("md1")
    lam = r["workload"]["rate"]
    d = r["stages"]["service"]["cost"]
    assert isinstance(d, int | float)  # deterministic service
    assert_inside(row["latency_ms"]["mean"], analytic.md1_sojourn(lam, d), "mean sojourn")
    assert_inside(row["throughput_rps"], lam * PER_SECOND, "throughput")
    assert_inside(row["utilisation"]["context.server"], lam * d, "utilisation")
    assert_littles_law(row)


def test_mmc_mean_and_throughput():
    r, row = theory_run("mmc")
    lam = r["workload"]["rate"]
    mu = 1.0 / exp_mean(r["stages"]["service"]["cost"])
    c = r["contexts"]["servers"]["threads"]
    assert c == len(r["contexts"]["servers"]["cores"]) == 4
    assert_inside(row["latency_ms"]["mean"], analytic.mmc_sojourn(lam, mu, c), "mean sojourn")
    assert_inside(row["throughput_rps"], lam * PER_SECOND, "throughput")
    assert_inside(row["utilisation"]["context.servers"], lam / (c * mu), "utilisation")
    assert_littles_law(row)


def test_tandem5_mean_and_throughput():
    r, row = theory_run("tandem5")
    lam = r["workload"]["rate"]
    route = r["path"]["route"]
    assert len(route) == 5
    mus = [1.0 / exp_mean(r["stages"][s]["cost"]) for s in route]
    assert_inside(row["latency_ms"]["mean"], analytic.tandem_sojourn(lam, mus), "mean sojourn")
    assert_inside(row["throughput_rps"], lam * PER_SECOND, "throughput")
    for i, s in enumerate(route):
        ctx = r["stages"][s]["context"]
        assert_inside(row["utilisation"][f"context.{ctx}"], lam / mus[i], f"utilisation {ctx}")
    assert_littles_law(row)


def test_closed_network_against_exact_mva():
    r, row = theory_run("closed")
    n = r["workload"]["clients"]
    assert r["workload"]["think"] == 0
    demands = [exp_mean(r["stages"][s]["cost"]) for s in r["path"]["route"]]
    x, resp = analytic.mva(demands, n)
    assert_inside(row["latency_ms"]["mean"], resp, "response time")
    assert_inside(row["throughput_rps"], x * PER_SECOND, "throughput")
    assert_littles_law(row)
    assert row["littles_law"]["mean_in_system"] == pytest.approx(n)  # always n inside


@pytest.mark.parametrize("name", sorted(RUNS))
def test_littles_law_holds_in_every_replication(name):
    points = load_scenario(THEORY / f"{name}.toml", ["workload.requests=20000"])
    model = to_model(points[0])
    for rep in (0, 1):
        res = run_replication(model, 3, rep)
        assert not res.saturated
        assert res.completed == 20_000
        assert res.mean_in_system == pytest.approx(res.throughput_per_ns * res.mean_ns, rel=0.01)
