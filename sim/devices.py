"""Devices with a queue of their own: a disk that flushes, a NIC and its link.

A device serves requests first come, first served on ``servers`` parallel units (a
disk's queue depth for flushes is usually 1; a full-duplex link has one transmitter per
direction). A visit costs ``service`` (ns, a distribution; a disk's fsync latency, a
NIC's per-packet latency) plus ``per_byte_ns`` times the bytes carried (8e9 / bandwidth
in bit/s for a link). Departures are computed on arrival, one event per visit. The
device's CPU cost (the driver) is not here: it is a ``cpu`` stage on a context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from heapq import heapreplace
from typing import Any

from sim.kernel import Kernel
from sim.randomness import Distribution
from sim.requests import Request, advance
from sim.stages import Accounts


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    service: Distribution
    per_byte_ns: float = 0.0
    servers: int = 1
    description: str = ""


class Device:
    """A FIFO multi-server queue whose service times are drawn per visit."""

    def __init__(self, kernel: Kernel, spec: DeviceSpec, draws: Any) -> None:
        self.kernel = kernel
        self._clock = kernel.env
        self.spec = spec
        self.name = spec.name
        self._draw = draws
        self._free = [0.0] * spec.servers
        self.busy_ns = 0.0
        self.visits = 0

    def service_time(self, nbytes: float) -> float:
        return next(self._draw) + self.spec.per_byte_ns * nbytes

    def submit(self, service_ns: float, callback: Callable[[Any], None], payload: Any) -> float:
        """Queue a visit of ``service_ns``; returns its waiting time (ns)."""
        now = self._clock._now
        free = self._free
        start = free[0] if free[0] > now else now
        end = start + service_ns
        heapreplace(free, end)
        self.busy_ns += service_ns
        self.visits += 1
        self.kernel.call_at(end, callback, payload)
        return start - now

    def reset_counters(self) -> None:
        self.busy_ns = 0.0
        self.visits = 0


class DeviceSegment:
    """A stage of kind ``device``: one visit to a device with the request's bytes."""

    def __init__(self, device: Device, size: str, index: int, acct: Accounts) -> None:
        self.device = device
        self.size = size
        self.index = index
        self.acct = acct

    def enter(self, req: Request) -> None:
        nbytes = (req.request_bytes if self.size == "request" else
                  req.reply_bytes if self.size == "reply" else 0.0)
        s = self.device.service_time(nbytes)
        acct = self.acct
        acct._visits[self.index] += 1
        acct._device[self.index] += s
        acct.wait[self.index] += self.device.submit(s, self._done, req)

    @staticmethod
    def _done(event: object) -> None:
        advance(event._value)  # type: ignore[attr-defined]
