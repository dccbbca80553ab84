"""What the reference data themselves say: Table 1's values are 100,000 requests over whole
milliseconds (redis-benchmark 3.0's req/s: ``(float)requests / ((float)ms / 1000)``), so
each is one run of the default ``-n`` (or of a multiple of it).

This is the arithmetic behind the note in ``validation/reference/jaworski2019/README.md``.
"""

from __future__ import annotations

import csv

from sim.resources import validation_dir

REQUESTS = 100_000


def _table1() -> dict[tuple[str, str], float]:
    path = validation_dir() / "reference" / "jaworski2019" / "table1_redis.csv"
    with path.open(newline="") as f:
        return {(row["test"], p): float(v) for row in csv.DictReader(f)
                for p, v in row.items() if p != "test"}


def _whole_ms(requests: int, rate: float) -> bool:
    ms = requests / rate * 1000.0
    # redis-benchmark computes the rate in single precision (a C float: 24 bits, about
    # 6e-8 relative) and prints it to 0.01 req/s; either moves ms by at most this much
    slack = max(requests * 1000.0 * 0.005 / rate**2, ms * 2**-23)
    return abs(ms - round(ms)) <= slack


def test_every_table1_value_is_the_default_request_count_over_whole_milliseconds():
    values = _table1()
    assert len(values) == 70
    assert all(_whole_ms(REQUESTS, rate) for rate in values.values())
    # not so for counts that are not multiples of it (a multiple fits as well: the data
    # say -n was 100,000, the default, or a multiple of it)
    for other in (10_000, 50_000, 99_999, 100_001, 150_000):
        assert sum(_whole_ms(other, rate) for rate in values.values()) < 60, other
    assert all(_whole_ms(2 * REQUESTS, rate) for rate in values.values())


def test_get_runs_tens_of_milliseconds_longer_than_spop_except_on_osv():
    v = _table1()
    gap_ms = {p: round(REQUESTS / v[("GET", p)] * 1000 - REQUESTS / v[("SPOP", p)] * 1000)
              for p in ("ubuntu_bare", "rumprun_kvm", "ubuntu_kvm", "osv_kvm")}
    assert gap_ms == {"ubuntu_bare": 32, "rumprun_kvm": 39, "ubuntu_kvm": 39, "osv_kvm": 6}
