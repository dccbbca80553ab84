"""Queueing theory the engine is checked against: closed forms, MVA and Lindley.

These stand apart from the engine (they share no code with it) and serve the tests and
the teaching material: M/M/1, M/D/1 (Pollaczek-Khinchine), M/M/c (Erlang C), tandem
(Jackson) networks of M/M/1 stations, exact mean value analysis of closed networks of
single-server FIFO stations with exponential service, and the Lindley recursion for the
waiting times of a FIFO single-server queue. Times are in any one unit; rates are per
that unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mm1_sojourn(lam: float, mu: float) -> float:
    """Mean time in an M/M/1 system."""
    if lam >= mu:
        raise ValueError("unstable: lambda >= mu")
    return 1.0 / (mu - lam)


def mm1_sojourn_quantile(lam: float, mu: float, q: float) -> float:
    """M/M/1 FIFO sojourn time is exponential with rate mu - lambda."""
    return -math.log(1.0 - q) / (mu - lam)


def md1_sojourn(lam: float, service: float) -> float:
    """Mean time in an M/D/1 system (Pollaczek-Khinchine with zero service variance)."""
    rho = lam * service
    if rho >= 1:
        raise ValueError("unstable")
    return service + rho * service / (2.0 * (1.0 - rho))


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a = lambda/mu`` (Erlang)."""
    rho = a / c
    if rho >= 1:
        raise ValueError("unstable")
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1.0 - rho)
    return last / (total + last)


def mmc_sojourn(lam: float, mu: float, c: int) -> float:
    """Mean time in an M/M/c system."""
    a = lam / mu
    return erlang_c(c, a) / (c * mu - lam) + 1.0 / mu


def tandem_sojourn(lam: float, mus: Sequence[float]) -> float:
    """Mean end-to-end time through M/M/1 stations in series (Jackson)."""
    return sum(mm1_sojourn(lam, mu) for mu in mus)


def mva(demands: Sequence[float], n: int, think: float = 0.0) -> tuple[float, float]:
    """Exact MVA for ``n`` customers over queueing stations with mean service ``demands``.

    Returns (throughput, mean response time excluding think time).
    """
    q = np.zeros(len(demands))
    d = np.asarray(demands, float)
    x = 0.0
    r = 0.0
    for k in range(1, n + 1):
        rk = d * (1.0 + q)
        r = float(rk.sum())
        x = k / (think + r)
        q = x * rk
    return x, r


def lindley_waits(interarrivals: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Waiting times in a FIFO single-server queue: W[n+1] = max(0, W[n] + S[n] - A[n+1])."""
    w = np.empty(services.size)
    w[0] = 0.0
    acc = 0.0
    a = interarrivals
    s = services
    for i in range(1, s.size):
        acc = acc + s[i - 1] - a[i]
        if acc < 0.0:
            acc = 0.0
        w[i] = acc
    return w
