"""The address guard, the root check and the missing-tool errors (no load is sent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.errors import ToolError, UksimError
from sim.harness import safety, tools

from ._support import run_uksim, skip_unless_programs

pytestmark = pytest.mark.harness


@pytest.mark.parametrize("address", [
    "10.0.0.1", "192.168.1.1", "8.8.8.8", "172.16.0.1", "0.0.0.0", "255.255.255.255",
    "198.17.255.255", "198.20.0.1", "::1", "localhost", "",
])
def test_guard_rejects_foreign_addresses(address: str) -> None:
    with pytest.raises(safety.SafetyError):
        safety.check_load_target(address, owned=set())


def test_guard_rejects_bench_addresses_the_harness_does_not_own() -> None:
    with pytest.raises(safety.SafetyError):
        safety.check_load_target("198.18.7.2", owned={"198.18.7.1"})


def test_guard_rejects_owned_addresses_outside_the_bench_range() -> None:
    with pytest.raises(safety.SafetyError):
        safety.check_load_target("10.0.0.1", owned={"10.0.0.1"})


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3"])
def test_guard_allows_loopback(address: str) -> None:
    safety.check_load_target(address, owned=set())


def test_guard_allows_owned_bench_addresses() -> None:
    safety.check_load_target("198.18.7.2", owned={"198.18.7.2"})
    safety.check_load_target("198.19.7.2", owned={"198.19.7.2"})


def test_harness_assigns_only_bench_addresses() -> None:
    safety.check_bench_address("198.19.255.254")
    for bad in ("10.0.0.1", "192.168.1.1", "127.0.0.1"):
        with pytest.raises(safety.SafetyError):
            safety.check_bench_address(bad)


def test_safety_error_is_a_user_error() -> None:
    assert issubclass(safety.SafetyError, UksimError)


def test_namespace_paths_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UksimError, match="needs root"):
        safety.require_root("veth")


@pytest.mark.parametrize(("program", "package"), [
    ("redis-benchmark", "redis-tools"), ("redis-server", "redis-server"),
    ("ab", "apache2-utils"), ("wrk", "wrk"), ("nginx", "nginx"), ("ip", "iproute2"),
    ("iptables", "iptables"),
])
def test_missing_tool_names_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, program: str, package: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=f"{program} not found: install the Debian package "
                                        f"{package}"):
        tools.require(program)


def test_cli_reports_a_missing_load_tool_in_one_line(tmp_path: Path) -> None:
    """nginx present, ab absent: exit 2 and one line naming apache2-utils."""
    skip_unless_programs("nginx")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nginx").symlink_to(tools.which("nginx") or "")
    env = {**os.environ, "PATH": str(bin_dir)}
    done = run_uksim("measure", "http", "--path", "loopback", "--out", str(tmp_path / "o"),
                     env=env, timeout_s=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ab not found" in lines[0] and "apache2-utils" in lines[0]
    assert not (tmp_path / "o" / "results.csv").exists()


def test_cli_refuses_namespace_paths_when_not_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a non-root user: exit 2 and one line saying root is needed; nothing written."""
    from sim.harness.__main__ import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for path in ("veth", "bridge-nat"):
        code = main(["measure", "redis", "--path", f"loopback,{path}",
                     "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert len(err) == 1 and f"--path {path} needs root" in err[0], err
    assert not (tmp_path / "o").exists()
