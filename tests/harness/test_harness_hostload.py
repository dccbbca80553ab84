"""The other-work meter: CPU time of a process group, and the bounds of its reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sim.harness import hostload

pytestmark = pytest.mark.harness

BURN = "import time\nt = time.time()\nwhile time.time() - t < 1.5:\n    pass\n"


def test_group_cpu_counts_a_busy_process_group() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
    try:
        time.sleep(0.8)
        used_s = hostload.group_cpu_s(proc.pid)
    finally:
        proc.wait(timeout=10)
    assert 0.1 < used_s < 1.6
    assert hostload.group_cpu_s(None) == 0.0


def test_live_members_lists_a_group_until_its_processes_exit() -> None:
    # a leader and a child of its own, as an nginx master and its worker
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while len(hostload.live_members(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.pid in hostload.live_members(proc.pid)
        assert len(hostload.live_members(proc.pid)) == 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while hostload.live_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hostload.live_members(proc.pid) == []


def test_reports_are_percentages_of_all_cores() -> None:
    pct = hostload.other_busy_pct(None, window_s=0.2)
    assert 0.0 <= pct <= 100.0
    meter = hostload.LoadMeter(None)
    meter.start()
    subprocess.run([sys.executable, "-c", BURN.replace("1.5", "0.3")], check=True)
    # The child's CPU is the harness's own: at most the other cores can be "other".
    assert 0.0 <= meter.stop() <= 100.0


def test_wait_for_quiet_gives_up_after_its_limit() -> None:
    t0 = time.monotonic()
    pct = hostload.wait_for_quiet(None, below_pct=-1.0, max_wait_s=0.2)
    assert 0.0 <= pct <= 100.0
    assert time.monotonic() - t0 < 3.0
