"""Parsers against real tool output captured on this project's machine (fixtures/)."""

from __future__ import annotations

import pytest

from sim.harness import parsers

from ._support import FIXTURES

pytestmark = pytest.mark.harness


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_redis_benchmark_csv_all_default_tests() -> None:
    rows = parsers.parse_redis_benchmark_csv(read("redis-benchmark-7.0.15-loopback-c10-P10.csv"))
    names = [r.test for r in rows]
    assert names == ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "LPOP",
                     "SADD", "SPOP", "LPUSH_LRANGE_FILL", "LRANGE_100", "LRANGE_600", "MSET"]
    get = rows[names.index("GET")]
    assert get.requests_per_s == pytest.approx(434782.59)
    assert (get.latency_mean_ms, get.latency_min_ms, get.latency_p50_ms) == (0.197, 0.080, 0.191)
    assert (get.latency_p95_ms, get.latency_p99_ms, get.latency_max_ms) == (0.287, 0.367, 0.519)
    lr = rows[names.index("LRANGE_600")]
    assert lr.tool_label == "LRANGE_600 (first 600 elements)"
    assert lr.requests_per_s == pytest.approx(11025.36)


def test_redis_benchmark_csv_from_bridge_nat_run() -> None:
    rows = parsers.parse_redis_benchmark_csv(read("redis-benchmark-7.0.15-bridge-nat-c1-P10.csv"))
    assert [r.test for r in rows] == ["SET", "GET", "LPUSH_LRANGE_FILL", "LRANGE_100"]
    assert all(r.latency_min_ms <= r.latency_p50_ms <= r.latency_p99_ms <= r.latency_max_ms
               for r in rows)


@pytest.mark.parametrize("label,name", [
    ("MSET (10 keys)", "MSET"), ("LRANGE_300 (first 300 elements)", "LRANGE_300"),
    ("LPUSH (needed to benchmark LRANGE)", "LPUSH_LRANGE_FILL"), ("PING_MBULK", "PING_MBULK"),
    ("LRANGE_500 (first 450 elements)", "LRANGE_500"),
    ("LRANGE_500 (first 500 elements)", "LRANGE_500_V7"),
])
def test_redis_test_names(label: str, name: str) -> None:
    assert parsers.redis_test_name(label) == name


@pytest.mark.parametrize("text", ["", "PING_INLINE: 1000 requests per second\n",
                                  '"test","rps"\n"GET","1"\n'])
def test_redis_benchmark_rejects_other_output(text: str) -> None:
    with pytest.raises(parsers.ParseError):
        parsers.parse_redis_benchmark_csv(text)


def test_ab_without_keepalive() -> None:
    ab = parsers.parse_ab(read("ab-2.3-veth-c100-close.txt"))
    assert ab.requests_per_s == pytest.approx(6892.49)
    assert ab.kbytes_per_s == pytest.approx(11334.91)
    assert (ab.completed_requests, ab.failed_requests, ab.keepalive_requests) == (2000, 0, 0)
    assert ab.latency_mean_ms == pytest.approx(14.509)
    assert ab.document_bytes == 1450
    assert ab.served_within_ms == {50: 15, 66: 17, 75: 18, 80: 19, 90: 19, 95: 20, 98: 21,
                                   99: 23, 100: 23}


def test_ab_with_keepalive() -> None:
    ab = parsers.parse_ab(read("ab-2.3-veth-c10-keepalive.txt"))
    assert ab.keepalive_requests == ab.completed_requests == 1000
    assert ab.requests_per_s == pytest.approx(13579.95)
    assert ab.latency_mean_ms == pytest.approx(0.736)
    assert ab.kbytes_per_s == pytest.approx(22398.95)


def test_ab_percentile_file_agrees_with_the_table() -> None:
    """ab -e holds the same percentiles as the printed table, in microseconds."""
    table = parsers.parse_ab(read("ab-2.3-veth-c100-close.txt")).served_within_ms
    fine = parsers.parse_ab_percentiles(read("ab-2.3-veth-c100-close-percentiles.csv"))
    assert sorted(fine) == list(range(101))
    assert fine[50] == pytest.approx(15.107)
    for pct, whole_ms in table.items():
        assert abs(fine[pct] - whole_ms) <= 1.0


def test_ab_rejects_other_output() -> None:
    with pytest.raises(parsers.ParseError, match="Requests per second"):
        parsers.parse_ab("apr_socket_recv: Connection refused (111)\n")
    with pytest.raises(parsers.ParseError):
        parsers.parse_ab_percentiles("50,1.0\n")


def test_wrk_with_millisecond_latencies() -> None:
    w = parsers.parse_wrk(read("wrk-4.1.0-bridge-nat-c10.txt"))
    assert w.requests_per_s == pytest.approx(8197.16)
    assert w.kbytes_per_s == pytest.approx(13.20 * 1024)
    assert w.completed_requests == 8237
    assert w.duration_s == pytest.approx(1.0)
    assert w.latency_mean_ms == pytest.approx(1.44)
    assert w.latency_max_ms == pytest.approx(8.98)
    assert w.latency_percentiles_ms == pytest.approx({50: 0.93, 75: 1.47, 90: 3.64, 99: 6.20})
    assert w.socket_errors == 0


def test_wrk_with_microsecond_latencies() -> None:
    w = parsers.parse_wrk(read("wrk-4.1.0-loopback-c10.txt"))
    assert w.latency_mean_ms == pytest.approx(0.20605)
    assert w.latency_percentiles_ms[50] == pytest.approx(0.174)
    assert w.latency_max_ms == pytest.approx(5.11)
    assert w.duration_s == pytest.approx(1.10)


def test_wrk_without_latency_flag_is_refused() -> None:
    text = read("wrk-4.1.0-loopback-c10.txt")
    cut = text[: text.index("  Latency Distribution")] + text[text.index("  56095"):]
    with pytest.raises(parsers.ParseError, match="--latency"):
        parsers.parse_wrk(cut)
