"""Parsers of the load tools' output: redis-benchmark ``--csv``, ab, ab ``-e`` and wrk.

Each parser takes the text a tool printed and returns plain numbers with units in their
names (``requests_per_s``, ``latency_p99_ms``, ``kbytes_per_s`` where 1 KB = 1024 bytes,
as ab and wrk count). A text that does not look like the tool's output raises
:class:`ParseError` naming what is missing, so a changed tool version fails loudly.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sim.errors import ToolError


class ParseError(ToolError):
    """A tool's output did not have the expected shape."""


@dataclass
class RedisBenchmarkRow:
    """One test of one redis-benchmark run (one CSV line)."""

    test: str
    tool_label: str
    requests_per_s: float
    latency_mean_ms: float
    latency_min_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float


#: Labels whose first word does not name what they run: the list fill that only prepares
#: the LRANGE tests, and LRANGE_500 of Redis 7.0 and later, which fetches 500 elements
#: where every earlier redis-benchmark fetched 450 under the same name
#: (models/workloads/redis-benchmark.toml).
_SPECIAL_LABELS = {
    "LPUSH (needed to benchmark LRANGE)": "LPUSH_LRANGE_FILL",
    "LRANGE_500 (first 500 elements)": "LRANGE_500_V7",
}

_REDIS_COLUMNS = {
    "rps": "requests_per_s",
    "avg_latency_ms": "latency_mean_ms",
    "min_latency_ms": "latency_min_ms",
    "p50_latency_ms": "latency_p50_ms",
    "p95_latency_ms": "latency_p95_ms",
    "p99_latency_ms": "latency_p99_ms",
    "max_latency_ms": "latency_max_ms",
}


def redis_test_name(label: str) -> str:
    """Tidy test name of a redis-benchmark label.

    ``"LRANGE_100 (first 100 elements)"`` -> ``LRANGE_100``, ``"MSET (10 keys)"`` ->
    ``MSET``; the list fill that precedes the LRANGE tests, ``"LPUSH (needed to benchmark
    LRANGE)"``, becomes ``LPUSH_LRANGE_FILL`` so it never mixes with the LPUSH test, and
    Redis 7's ``"LRANGE_500 (first 500 elements)"`` becomes ``LRANGE_500_V7`` so it never
    mixes with the 450 elements of the older ``"LRANGE_500 (first 450 elements)"``.
    """
    label = label.strip()
    if label in _SPECIAL_LABELS:
        return _SPECIAL_LABELS[label]
    return label.split(" ", 1)[0]


def parse_redis_benchmark_csv(text: str) -> list[RedisBenchmarkRow]:
    """Rows of ``redis-benchmark --csv`` output (Redis 6/7 header with latency columns)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith('"test"'):
        raise ParseError("redis-benchmark output has no CSV header line starting with \"test\"")
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = [c for c in ("test", *_REDIS_COLUMNS) if c not in (reader.fieldnames or [])]
    if missing:
        raise ParseError(f"redis-benchmark CSV lacks columns {', '.join(missing)}")
    rows: list[RedisBenchmarkRow] = []
    for rec in reader:
        try:
            values = {dst: float(rec[src]) for src, dst in _REDIS_COLUMNS.items()}
        except (TypeError, ValueError) as exc:
            raise ParseError(f"redis-benchmark CSV line for {rec.get('test')!r}: {exc}") from exc
        label = rec["test"]
        rows.append(RedisBenchmarkRow(test=redis_test_name(label), tool_label=label, **values))
    if not rows:
        raise ParseError("redis-benchmark CSV has a header but no results")
    return rows


@dataclass
class AbResult:
    """What one ab run reports (times in ms; transfer in KB/s, 1 KB = 1024 bytes)."""

    requests_per_s: float
    kbytes_per_s: float
    completed_requests: int
    failed_requests: int
    non_2xx_responses: int
    keepalive_requests: int
    latency_mean_ms: float
    time_taken_s: float
    document_bytes: int
    #: The "served within" table, percent -> ms (whole ms, as ab prints it).
    served_within_ms: dict[int, float] = field(default_factory=dict)


def _search(pattern: str, text: str, what: str) -> re.Match[str]:
    m = re.search(pattern, text, re.M)
    if m is None:
        raise ParseError(f"ab output lacks {what}")
    return m


def parse_ab(text: str) -> AbResult:
    """Parse ab's standard report (ab 2.3)."""
    rps = _search(r"^Requests per second:\s+([\d.]+)", text, "'Requests per second'")
    rate = _search(r"^Transfer rate:\s+([\d.]+) \[Kbytes/sec\]", text, "'Transfer rate'")
    done = _search(r"^Complete requests:\s+(\d+)", text, "'Complete requests'")
    failed = _search(r"^Failed requests:\s+(\d+)", text, "'Failed requests'")
    mean = _search(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$", text, "'Time per request'")
    taken = _search(r"^Time taken for tests:\s+([\d.]+) seconds", text, "'Time taken'")
    doc = re.search(r"^Document Length:\s+(\d+) bytes", text, re.M)
    non2xx = re.search(r"^Non-2xx responses:\s+(\d+)", text, re.M)
    keep = re.search(r"^Keep-Alive requests:\s+(\d+)", text, re.M)
    table: dict[int, float] = {}
    head = text.find("Percentage of the requests served within a certain time (ms)")
    if head >= 0:
        for m in re.finditer(r"^\s*(\d+)%\s+(\d+)", text[head:], re.M):
            table[int(m.group(1))] = float(m.group(2))
    return AbResult(
        requests_per_s=float(rps.group(1)),
        kbytes_per_s=float(rate.group(1)),
        completed_requests=int(done.group(1)),
        failed_requests=int(failed.group(1)),
        non_2xx_responses=int(non2xx.group(1)) if non2xx else 0,
        keepalive_requests=int(keep.group(1)) if keep else 0,
        latency_mean_ms=float(mean.group(1)),
        time_taken_s=float(taken.group(1)),
        document_bytes=int(doc.group(1)) if doc else 0,
        served_within_ms=table,
    )


def parse_ab_percentiles(text: str) -> dict[int, float]:
    """ab ``-e`` CSV: percent (0..100) -> ms with microsecond resolution."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("Percentage served"):
        raise ParseError("ab -e file lacks its 'Percentage served,Time in ms' header")
    out: dict[int, float] = {}
    for ln in lines[1:]:
        pct, _, ms = ln.partition(",")
        try:
            out[int(pct)] = float(ms)
        except ValueError as exc:
            raise ParseError(f"ab -e file: bad line {ln!r}") from exc
    return out


@dataclass
class WrkResult:
    """What one wrk run with ``--latency`` reports."""

    requests_per_s: float
    kbytes_per_s: float
    completed_requests: int
    duration_s: float
    latency_mean_ms: float
    latency_max_ms: float
    #: Latency distribution, percent -> ms (50, 75, 90, 99).
    latency_percentiles_ms: dict[int, float]
    socket_errors: int
    non_2xx_3xx_responses: int


_TIME_TO_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BYTES_TO_KB = {"B": 1 / 1024, "KB": 1.0, "MB": 1024.0, "GB": 1024.0**2, "TB": 1024.0**3}


def _wrk_ms(value: str, unit: str) -> float:
    return round(float(value) * _TIME_TO_MS[unit], 6)


def parse_wrk(text: str) -> WrkResult:
    """Parse wrk 4.x output run with ``--latency``."""
    def need(pattern: str, what: str) -> re.Match[str]:
        m = re.search(pattern, text, re.M)
        if m is None:
            raise ParseError(f"wrk output lacks {what}")
        return m

    lat = need(r"^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)",
               "the Thread Stats latency line")
    rps = need(r"^Requests/sec:\s+([\d.]+)", "'Requests/sec'")
    tps = need(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", "'Transfer/sec'")
    total = need(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)", "the request count line")
    dist: dict[int, float] = {}
    head = text.find("Latency Distribution")
    if head < 0:
        raise ParseError("wrk output lacks 'Latency Distribution' (run wrk with --latency)")
    for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)", text[head:], re.M):
        dist[int(m.group(1))] = _wrk_ms(m.group(2), m.group(3))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        kbytes_per_s=round(float(tps.group(1)) * _BYTES_TO_KB[tps.group(2)], 3),
        completed_requests=int(total.group(1)),
        duration_s=_wrk_ms(total.group(2), total.group(3)) / 1e3,
        latency_mean_ms=_wrk_ms(lat.group(1), lat.group(2)),
        latency_max_ms=_wrk_ms(lat.group(3), lat.group(4)),
        latency_percentiles_ms=dist,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        non_2xx_3xx_responses=int(non.group(1)) if non else 0,
    )
