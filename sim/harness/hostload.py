"""How busy the machine was with work other than the measurement itself.

Two cores shared with other work make a noisy measurement. :class:`LoadMeter` takes
the CPU time the whole machine spent busy (/proc/stat: user, nice, system, irq, softirq
and steal) over one load-tool run, subtracts what the server's process group, the load
tool and the harness itself used, and reports the rest as ``other_cpu_pct``: percent of
all cores' time taken by anything else. :func:`other_busy_pct` samples the same while
the harness is idle, to wait for a quiet machine before a run (``--quiet-below``).
:func:`live_members` tells which processes of a group are still there, for the stop of a
server whose workers outlive its master.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS_PER_S = float(os.sysconf("SC_CLK_TCK"))


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (steal counts: the host took them)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS_PER_S


def _processes() -> list[tuple[int, str, int, int]]:
    """Every process now: pid, state (R, S, Z, ...), process group and CPU ticks used
    (user + system), from /proc/PID/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        # after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt
        # majflt cmajflt utime stime
        found.append((int(entry.name), rest[0], int(rest[2]), int(rest[11]) + int(rest[12])))
    return found


def group_cpu_s(pgid: int | None) -> float:
    """CPU seconds used so far by the live processes of process group ``pgid``."""
    if pgid is None:
        return 0.0
    return sum(ticks for _, _, group, ticks in _processes() if group == pgid) / _TICKS_PER_S


def live_members(pgid: int) -> list[int]:
    """Pids of the processes of group ``pgid`` that have not exited yet (a zombie, dead
    and waiting for its parent to collect it, does not count)."""
    return [pid for pid, state, group, _ in _processes() if group == pgid and state != "Z"]


def _own_and_children_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """Measures other work on the machine over one run: ``start()`` then ``stop()``."""

    def __init__(self, server_pgid: int | None) -> None:
        self.server_pgid = server_pgid
        self.cores = os.cpu_count() or 1
        self._t0_s = 0.0
        self._busy0_s = self._ours0_s = 0.0

    def start(self) -> None:
        self._t0_s = time.monotonic()
        self._busy0_s = _machine_busy_s()
        self._ours0_s = group_cpu_s(self.server_pgid) + _own_and_children_s()

    def stop(self) -> float:
        """Percent of all cores' time used by other work since :meth:`start`."""
        elapsed_s = max(time.monotonic() - self._t0_s, 1e-6)
        busy_s = _machine_busy_s() - self._busy0_s
        ours_s = group_cpu_s(self.server_pgid) + _own_and_children_s() - self._ours0_s
        other_s = max(0.0, busy_s - ours_s)
        return round(min(100.0, 100.0 * other_s / (elapsed_s * self.cores)), 1)


def other_busy_pct(server_pgid: int | None, window_s: float = 0.5) -> float:
    """Other work's share of all cores over ``window_s`` while the harness idles."""
    meter = LoadMeter(server_pgid)
    meter.start()
    time.sleep(window_s)
    return meter.stop()


def wait_for_quiet(server_pgid: int | None, below_pct: float, max_wait_s: float) -> float:
    """Sample until other work falls below ``below_pct`` or ``max_wait_s`` passes.

    Returns the last sample (percent of all cores), whether or not it was quiet.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        pct = other_busy_pct(server_pgid)
        if pct < below_pct or time.monotonic() >= deadline:
            return pct
