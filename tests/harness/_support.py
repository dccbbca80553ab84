"""Helpers of the harness tests: skips, the command to start uksim, leftover checks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.harness import netpaths, tools

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def uksim_argv() -> list[str]:
    """How to start ``uksim`` from a test: the installed CLI module.

    While the top-level CLI cannot import (an engine command not yet in the tree), the
    harness's own entry point, which registers the same ``measure`` command, is used.
    """
    try:
        ok = importlib.util.find_spec("sim.commands.run") is not None
    except ModuleNotFoundError:
        ok = False
    return [sys.executable, "-m", "sim.cli" if ok else "sim.harness"]


def skip_unless_programs(*names: str) -> None:
    """Skip the test when a program is missing, naming its Debian package."""
    missing = [n for n in names if tools.which(n) is None]
    if missing:
        pkgs = sorted({tools.DEBIAN_PACKAGES.get(n, n) for n in missing})
        pytest.skip(f"missing {', '.join(missing)} (Debian packages {', '.join(pkgs)}; "
                    "run `make system-deps` as root)")


def skip_unless_root() -> None:
    """Skip the test unless running as root (namespaces, links, iptables)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the veth and bridge-nat paths create network namespaces")


def server_pids() -> set[int]:
    """Pids of every running redis-server, nginx, redis-benchmark, ab and wrk (not of a
    zombie: it has exited, and only waits for its parent, or init, to collect it)."""
    names = {"redis-server", "nginx", "redis-benchmark", "ab", "wrk"}
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if comm in names and stat[stat.rindex(")") + 2:].split()[0] != "Z":
            pids.add(int(entry.name))
    return pids


def assert_no_leftovers() -> None:
    """No uksim- namespace, link or iptables rule of an ended measurement exists.

    (Objects of a measurement running meanwhile in another process are not counted.)
    """
    found = netpaths.leftovers(stale_only=True)
    assert not any(found.values()), f"harness objects left behind: {found}"


def run_uksim(*args: str, timeout_s: float = 120.0, env: dict[str, str] | None = None,
              user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``uksim ARGS`` to completion and return what it printed."""
    return subprocess.run(
        [*uksim_argv(), *args], capture_output=True, text=True, timeout=timeout_s,
        cwd=REPO, env=env, user=user, check=False,
    )
