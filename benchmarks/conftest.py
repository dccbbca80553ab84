"""Benchmarks share their measurements through the pytest config, for the summary."""

from __future__ import annotations

import pytest

RESULTS = pytest.StashKey[dict]()


@pytest.fixture
def results(request) -> dict:
    """Measurements (name -> value) printed after the benchmark table."""
    return request.config.stash.setdefault(RESULTS, {})


def pytest_terminal_summary(terminalreporter, config) -> None:
    found = config.stash.get(RESULTS, {})
    if not found:
        return
    terminalreporter.section("uksim speed")
    for line in found.get("lines", []):
        terminalreporter.write_line(line)
