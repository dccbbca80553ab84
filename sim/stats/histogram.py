"""A log-bucketed latency histogram: memory flat in run length, bounded relative error.

Bucket ``i`` holds values in ``(g**(i-1), g**i]`` nanoseconds with ``g = 1 + 2*rel_error``;
reporting a bucket by ``2*g**i/(g+1)`` keeps every quantile within ``rel_error`` of a
value in its bucket. With the default 0.5% and values from 1 ns to about 3 hours
(1e13 ns), that is about 3,000 counters whatever the number of samples. The exact count,
sum, minimum and maximum are kept beside the buckets. Values are added in blocks (numpy).
"""

from __future__ import annotations

import math

import numpy as np

MAX_NS = 1e13


class LogHistogram:
    def __init__(self, rel_error: float = 0.005) -> None:
        self.rel_error = rel_error
        self.gamma = 1.0 + 2.0 * rel_error
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.counts = np.zeros(math.ceil(math.log(MAX_NS) * self._inv_log_gamma) + 2, np.int64)
        self.n = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add_many(self, values_ns: np.ndarray) -> None:
        if values_ns.size == 0:
            return
        v = np.maximum(values_ns, 1.0)
        idx = np.ceil(np.log(v) * self._inv_log_gamma).astype(np.int64)
        np.clip(idx, 0, self.counts.size - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.counts.size)
        self.n += int(values_ns.size)
        self.total += float(values_ns.sum())
        self.min = min(self.min, float(values_ns.min()))
        self.max = max(self.max, float(values_ns.max()))

    def merge(self, other: LogHistogram) -> None:
        assert other.gamma == self.gamma
        self.counts += other.counts
        self.n += other.n
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 < q <= 1), within ``rel_error``; q = 1 gives the exact max."""
        if self.n == 0:
            return math.nan
        if q >= 1.0:
            return self.max
        rank = max(1, math.ceil(q * self.n))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        value = 2.0 * self.gamma**i / (self.gamma + 1.0)
        return min(max(value, self.min), self.max)
