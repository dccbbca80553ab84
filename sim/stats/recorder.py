"""What one replication records: completions after warm-up, and when to stop.

The first ``warmup`` completions (or a few more: a pipelined message is not split) are
discarded (their latencies, and the CPU, device and stage time booked while they ran):
at the moment the last of them completes, every counter is reset and the measurement
window opens. The run stops when ``measure`` more requests have completed, or, for an
open system, as soon as more than ``max_in_system`` requests are inside it at once
(saturated: it would only grow).

Latencies are buffered and added to the histogram and the batch means in blocks. The
time-average number of requests in the system is kept too, for Little's law.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.kernel import Kernel
from sim.requests import Request
from sim.stats.estimators import BatchMeans
from sim.stats.histogram import LogHistogram

FLUSH = 8192


class Recorder:
    def __init__(self, kernel: Kernel, warmup: int, measure: int,
                 on_window_open: Callable[[], None], max_in_system: int = 1_000_000) -> None:
        self.kernel = kernel
        self.warmup = warmup
        self.measure = measure
        self.on_window_open = on_window_open
        self.max_in_system = max_in_system
        self.histogram = LogHistogram()
        self.batches = BatchMeans()
        self.completed = 0
        self.measured = 0
        self.in_system = 0
        self.area = 0.0  # integral of in_system over the window (request * ns)
        self.t_last = 0.0
        self.t_begin = 0.0
        self.t_end = 0.0
        self.saturated = False
        self.finished = False
        self.window_open = False
        self._lat: list[float] = []
        self._times: list[float] = []
        if warmup == 0:
            self._open_window()

    def arrive(self, count: int = 1) -> None:
        """``count`` requests enter the system (a pipelined message carries several)."""
        now = self.kernel.env._now
        self.area += self.in_system * (now - self.t_last)
        self.t_last = now
        self.in_system += count
        if self.in_system > self.max_in_system:
            self.saturated = True
            self._finish()

    def complete(self, req: Request) -> None:
        now = self.kernel.env._now
        self.area += self.in_system * (now - self.t_last)
        self.t_last = now
        n = req.count
        self.in_system -= n
        self.completed += n
        if not self.window_open:
            if self.completed >= self.warmup:
                self._open_window()  # this message's requests still belong to the warm-up
            return
        if n == 1:
            self._lat.append(now - req.t0)
            self._times.append(now)
        else:
            self._lat.extend([now - req.t0] * n)
            self._times.extend([now] * n)
        self.measured += n
        if len(self._lat) >= FLUSH:
            self._flush()
        if self.measured >= self.measure:
            self._finish()

    def _open_window(self) -> None:
        self.window_open = True
        self.t_begin = self.t_last = self.kernel.env._now
        self.area = 0.0
        self.on_window_open()

    def _flush(self) -> None:
        lat = np.asarray(self._lat)
        self.histogram.add_many(lat)
        self.batches.add_block(np.asarray(self._times), lat, self.t_begin)
        self._lat.clear()
        self._times.clear()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._flush()
        self.t_end = self.kernel.env._now
        self.area += self.in_system * (self.t_end - self.t_last)
        self.t_last = self.t_end
        self.kernel.stop()

    @property
    def window_ns(self) -> float:
        return self.t_end - self.t_begin
