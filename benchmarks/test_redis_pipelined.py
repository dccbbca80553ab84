"""Simulated requests per wall second: redis-benchmark GET, -c 10 -P 10 (the study's load).

One replication of the composed model (host i5-3470, Redis, redis-benchmark) on each
platform, 200,000 requests, timed by CPU time. The issue's target is at least one million
simulated requests per wall second for the pipelined GET scenario; the summary prints the
median rate per platform beside it. Run with ``make bench``.
"""

from __future__ import annotations

import time

import pytest

from sim.composition import Settings, compose
from sim.parameters import current_parameters
from sim.replication import run_replication
from sim.scenario import expand_and_resolve, to_model

REQUESTS = 200_000
TARGET = 1_000_000


def get_model(platform: str):
    raw = compose("i5-3470", platform, "redis", "redis-benchmark", "GET", current_parameters(),
                  Settings(clients=10, pipeline=10, requests=REQUESTS))
    return to_model(expand_and_resolve(raw, f"<bench {platform}>")[0])


@pytest.mark.benchmark(group="redis GET -c 10 -P 10", timer=time.process_time)
@pytest.mark.parametrize("platform", ["ubuntu_bare", "ubuntu_kvm", "osv_kvm"])
def test_pipelined_get_requests_per_second(benchmark, results, platform):
    model = get_model(platform)
    res = benchmark.pedantic(run_replication, args=(model, 1, 0), rounds=3, iterations=1)
    assert res.completed >= REQUESTS
    rate = res.completed / benchmark.stats.stats.median
    benchmark.extra_info["simulated_requests_per_second"] = round(rate)
    lines = results.setdefault("lines", [])
    lines.append(f"redis GET -c 10 -P 10 on {platform}: {rate:,.0f} simulated requests per "
                 f"CPU second (median of 3; target {TARGET:,}), "
                 f"{res.events / res.completed:.2f} events per request")
