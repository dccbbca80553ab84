"""ab's report: the "served within" table, requests per second and the transfer rate.

Each row carries ``served_within_ms`` for 50, 66, 75, 80, 90, 95, 98, 99 and 100 percent,
each an estimate with its 95% interval over replications, from the same histogram as the
other quantiles: the table is monotone, its 50 is p50 and its 100 the longest request.
The transfer rate is reply bytes per second / 1024 (the classes' mean reply bytes, by
weight). ``uksim run`` prints the table in ab's layout only when the workload asks for
it (``report = "ab"``).
"""

from __future__ import annotations

import pytest
from simkit import scenario, to_toml

from sim.cli import main
from sim.runner import RunOptions, run_points
from sim.scenario import expand_and_resolve

PERCENTS = ["50", "66", "75", "80", "90", "95", "98", "99", "100"]


def http_like(report: str = "none") -> dict:
    exp = {"dist": "exponential", "mean": 1.0}
    raw = scenario({"serve": {"kind": "cpu", "context": "ctx", "cost": exp}}, ["serve"],
                   time_unit="ms",
                   workload={"kind": "closed", "clients": 4, "requests": 3000, "warmup": 0.1,
                             "report": report},
                   classes=[{"name": "small", "weight": 3, "reply_bytes": 1000},
                            {"name": "large", "weight": 1, "reply_bytes": 9000}])
    raw["run"] = {"workers": 1}
    return raw


@pytest.fixture(scope="module")
def row() -> dict:
    points = expand_and_resolve(http_like(), "<t>")
    return run_points(points, RunOptions(seed=3, reps=3, workers=1))[0]


def test_the_table_is_monotone_and_its_ends_are_p50_and_the_longest_request(row):
    served = row["served_within_ms"]
    assert list(served) == PERCENTS
    values = [served[p]["value"] for p in PERCENTS]
    assert values == sorted(values) and values[0] < values[-1]
    for p in PERCENTS:
        lo, hi = served[p]["ci95"]
        assert lo <= served[p]["value"] <= hi
    lat = row["latency_ms"]
    assert served["50"] == lat["p50"]
    assert served["99"] == lat["p99"]
    assert served["100"] == lat["max"]
    # closed loop of 4 on one exponential server: the sojourn is Erlang-4-like around 4 ms
    assert 2.0 < served["50"]["value"] < 5.0


def test_transfer_rate_is_reply_bytes_per_second_over_1024(row):
    mean_reply = (3 * 1000 + 1 * 9000) / 4
    thr = row["throughput_rps"]
    kb = row["transfer_kbytes_per_s"]
    assert kb["value"] == pytest.approx(thr["value"] * mean_reply / 1024, rel=1e-5)
    assert kb["ci95"][0] == pytest.approx(thr["ci95"][0] * mean_reply / 1024, rel=1e-5)
    assert row["errors"] == {"timeouts": 0, "connect_failures": 0, "syn_retransmits": 0}


@pytest.mark.parametrize("report", ["ab", "none"])
def test_uksim_run_prints_abs_layout_only_when_asked(report, tmp_path, capsys):
    raw = http_like(report)
    raw["workload"]["requests"] = 1000
    path = tmp_path / "http.toml"
    path.write_text(to_toml(raw))
    assert main(["run", str(path), "--reps", "2"]) == 0
    out = capsys.readouterr().out
    if report == "none":
        assert "served within" not in out and "Transfer rate" not in out
        return
    lines = out.splitlines()
    head = lines.index("Percentage of the requests served within a certain time (ms)")
    table = lines[head + 1:head + 10]
    assert [ln.split("%")[0].strip() for ln in table] == PERCENTS
    assert table[-1].endswith("(longest request)")
    assert any(ln.startswith("Requests per second:") and "[#/sec] (mean)" in ln
               for ln in lines)
    assert any(ln.startswith("Transfer rate:") and "[Kbytes/sec] received" in ln
               for ln in lines)
    assert "\nComplete requests:      2000\n" in out  # 2 replications of 1000
    assert any(ln.startswith("Failed requests:") and ln.endswith(" 0") for ln in lines)
