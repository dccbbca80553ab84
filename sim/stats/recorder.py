"""What one replication records: outcomes after warm-up, and when to stop.

A request ends in one *outcome*: a completion (its latency is recorded), a timeout (the
client gave up waiting, :meth:`Recorder.timeout`) or a connect failure (its SYN was
dropped on every retransmission, :meth:`Recorder.connect_failure`). The first
``warmup`` outcomes (or a few more: a pipelined message is not split) are discarded
(their latencies, and the CPU, device and stage time booked while they ran): at the
moment the last of them happens, every counter is reset and the measurement window
opens. The run stops when ``measure`` more outcomes have happened (as ``ab -n`` counts
failed requests among its ``n``), or, for an open system, as soon as more than
``max_in_system`` requests are inside it at once (saturated: it would only grow).

Within the window it counts completions (``measured``), ``timeouts``,
``connect_failures`` and ``syn_retransmits``. Latencies (of completions only) are
buffered and added to the histogram and the batch means in blocks. The time-average
number of requests in the system is kept too, for Little's law: a request is in the
system from its send until it leaves it, which for a request that timed out is when the
system is done with it (:meth:`Recorder.leave`), not when its client gave up. The time
failed requests spent in the system (from their send until they leave, summed over those
that leave within the window: ``failed_ns``) is kept apart: the stages book it, but no
latency holds it.
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
        self._clock = kernel.env
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
        self.timeouts = 0
        self.connect_failures = 0
        self.syn_retransmits = 0
        self.failed_ns = 0.0  # time in the system of failed requests that left (ns)
        # outcomes that open the window / end the run: failures lower these, so that
        # :meth:`complete` (the hot path) compares with one number, as it always did
        self._open_at = warmup
        self._stop_at = measure
        # completions not yet flushed, one entry per message: its latency, its completion
        # time and how many requests it carried (each one's latency is the message's)
        self._lat: list[float] = []
        self._times: list[float] = []
        self._counts: list[int] = []
        self._flush_at = FLUSH  # flush once this many requests are measured
        if warmup == 0:
            self._open_window()

    def arrive(self, count: int = 1) -> None:
        """``count`` requests enter the system (a pipelined message carries several)."""
        now = self._clock._now
        self.area += self.in_system * (now - self.t_last)
        self.t_last = now
        self.in_system += count
        if self.in_system > self.max_in_system:
            self.saturated = True
            self._finish()

    def arrive_now(self, count: int) -> None:
        """:meth:`arrive` at the time of the last outcome or arrival recorded (a closed-loop
        client sending its next message as its last completes): the time-average is
        unchanged by it (it would add ``in_system`` times zero), so only the count moves."""
        self.in_system += count
        if self.in_system > self.max_in_system:
            self.saturated = True
            self._finish()

    def complete(self, req: Request) -> None:
        now = self._clock._now
        in_system = self.in_system
        self.area += in_system * (now - self.t_last)
        self.t_last = now
        n = req.count
        self.in_system = in_system - n
        self.completed += n
        if not self.window_open:
            if self.completed >= self._open_at:
                self._open_window()  # this message's requests still belong to the warm-up
            return
        self._lat.append(now - req.t0)
        self._times.append(now)
        self._counts.append(n)
        measured = self.measured = self.measured + n
        if measured >= self._flush_at:
            self._flush()
        if measured >= self._stop_at:
            self._finish()

    def leave(self, req: Request) -> None:
        """``req`` leaves the system after its outcome was recorded (a request that timed
        out completes, or its abandoned SYN is not retransmitted)."""
        now = self._clock._now
        self.area += self.in_system * (now - self.t_last)
        self.t_last = now
        self.in_system -= req.count
        if self.window_open:
            self.failed_ns += (now - req.t0) * req.count

    def timeout(self, req: Request) -> None:
        """The client gave up on ``req``; it stays in the system until it leaves."""
        if self.window_open:
            self.timeouts += req.count
        self._failed(req.count)

    def connect_failure(self, req: Request) -> None:
        """``req`` never connected (every SYN dropped): a failure, and it leaves."""
        self.leave(req)
        if self.window_open:
            self.connect_failures += req.count
        self._failed(req.count)

    def retransmit(self) -> None:
        """A client retransmits a SYN that the server dropped."""
        if self.window_open:
            self.syn_retransmits += 1

    def _failed(self, n: int) -> None:
        if not self.window_open:
            self._open_at -= n
            if self.completed >= self._open_at:
                self._open_window()
            return
        self._stop_at -= n
        if self.measured >= self._stop_at:
            self._finish()

    def _open_window(self) -> None:
        self.window_open = True
        self.t_begin = self.t_last = self.kernel.env._now
        self.area = 0.0
        self.failed_ns = 0.0
        self.on_window_open()

    def _flush(self) -> None:
        """Add the buffered completions, one value per request, to the statistics."""
        counts = self._counts
        lat = np.repeat(np.asarray(self._lat), counts)
        self.histogram.add_many(lat)
        self.batches.add_block(np.repeat(np.asarray(self._times), counts), lat, self.t_begin)
        self._lat.clear()
        self._times.clear()
        counts.clear()
        self._flush_at = self.measured + FLUSH

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
