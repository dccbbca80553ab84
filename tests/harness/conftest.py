"""Fixtures of the harness tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._support import assert_no_leftovers, server_pids


@pytest.fixture
def clean_host() -> Iterator[None]:
    """Fail the test when it leaves harness objects or server processes behind."""
    before = server_pids()
    yield
    assert_no_leftovers()
    left = server_pids() - before
    assert not left, f"processes left running: {sorted(left)}"
