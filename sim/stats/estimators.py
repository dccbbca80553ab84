"""Confidence intervals: across replications, and by batch means within one run.

Every estimate the simulator reports is an :class:`Estimate`: a value and a 95%
confidence interval (Student's t). From replications, the interval is over the
replications' values; within one run, over the means of consecutive batches of
completions, whose size doubles as the run grows so that at most ``MAX_BATCHES`` are
kept (memory flat in run length).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_BATCHES = 64


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    @property
    def relative_half_width(self) -> float:
        if self.value == 0 or not math.isfinite(self.half_width):
            return math.inf
        return abs(self.half_width / self.value)

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.value * factor, self.low * factor, self.high * factor)

    def as_dict(self, digits: int = 6) -> dict:
        def r(x: float) -> float | None:
            return None if not math.isfinite(x) else float(f"{x:.{digits}g}")

        return {"value": r(self.value), "ci95": [r(self.low), r(self.high)]}


def load_t_quantiles() -> None:
    """Import what :func:`_t975` needs (slow: done on first use, or before forking)."""
    import scipy.special  # noqa: F401


@lru_cache(maxsize=256)
def _t975(dof: int) -> float:
    """Student's t 97.5% quantile: ``scipy.special.stdtrit``, the function that
    ``scipy.stats.t.ppf`` evaluates (scipy.stats takes seconds to import, scipy.special
    a fraction of that; imported on first use)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, 0.975))


def t_interval(samples: Sequence[float], center: float | None = None) -> Estimate:
    """Mean (or ``center``) of ``samples`` with the 95% Student-t half-width."""
    x = np.asarray(samples, dtype=float)
    value = float(x.mean()) if center is None else center
    if x.size < 2:
        return Estimate(value, -math.inf, math.inf)
    hw = float(_t975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Estimate(value, value - hw, value + hw)


class BatchMeans:
    """Sums over consecutive batches of completions: count, latency sum, time span."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.counts: list[int] = []
        self.sums: list[float] = []
        self.starts: list[float] = []
        self.ends: list[float] = []

    def add_block(self, times_ns: np.ndarray, latencies_ns: np.ndarray, t_begin: float) -> None:
        """Add completions (times and latencies, in completion order)."""
        i = 0
        n = times_ns.size
        while i < n:
            if self.counts and self.counts[-1] < self.batch_size:
                j = min(n, i + self.batch_size - self.counts[-1])
                self.counts[-1] += j - i
                self.sums[-1] += float(latencies_ns[i:j].sum())
                self.ends[-1] = float(times_ns[j - 1])
            else:
                j = min(n, i + self.batch_size)
                start = self.ends[-1] if self.ends else t_begin
                self.counts.append(j - i)
                self.sums.append(float(latencies_ns[i:j].sum()))
                self.starts.append(start)
                self.ends.append(float(times_ns[j - 1]))
            i = j
            if len(self.counts) >= MAX_BATCHES and self.counts[-1] == self.batch_size:
                self._halve()

    def _halve(self) -> None:
        k = len(self.counts) // 2 * 2
        c, s, a, b = self.counts, self.sums, self.starts, self.ends
        self.counts = [c[i] + c[i + 1] for i in range(0, k, 2)] + c[k:]
        self.sums = [s[i] + s[i + 1] for i in range(0, k, 2)] + s[k:]
        self.starts = [a[i] for i in range(0, k, 2)] + a[k:]
        self.ends = [b[i + 1] for i in range(0, k, 2)] + b[k:]
        self.batch_size *= 2

    def _full(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = np.asarray(self.counts, float)
        keep = c == c.max() if c.size else c.astype(bool)
        span = np.asarray(self.ends) - np.asarray(self.starts)
        return c[keep], np.asarray(self.sums)[keep], span[keep]

    def mean_latency(self, center: float) -> Estimate:
        c, s, _ = self._full()
        return t_interval(s / c, center) if c.size else Estimate(center, -math.inf, math.inf)

    def slope(self) -> float:
        """How fast the batches' mean latency grew over the run: the least-squares slope
        of batch mean latency against the batch's middle time (ns per ns; about 0 for a
        steady system, ``1 - achieved / offered`` for an open load past what the system
        can serve, whose backlog grows). NaN with fewer than three full batches."""
        c, s, _ = self._full()
        if c.size < 3:
            return math.nan
        keep = np.asarray(self.counts, float) == c.max()
        mid = (np.asarray(self.starts) + np.asarray(self.ends))[keep] / 2.0
        mid = mid - mid.mean()
        y = s / c
        denom = float((mid * mid).sum())
        return float((mid * (y - y.mean())).sum() / denom) if denom > 0 else math.nan

    def throughput(self, center: float) -> Estimate:
        """Completions per ns, centred on ``center``."""
        c, _, span = self._full()
        ok = span > 0
        if ok.sum() < 2:
            return Estimate(center, -math.inf, math.inf)
        return t_interval(c[ok] / span[ok], center)
