"""``uksim run``: what it prints and what its JSON holds, and that a run can be repeated.

The JSON written by ``--json`` has one row per scenario point with ``throughput_rps`` and
``latency_ms`` (mean, p50, p90, p99, max), every estimate as ``{"value", "ci95": [lo,
hi]}``, ``completed_requests``, ``wall_seconds`` and the fully resolved scenario: every
declared parameter with its value or default. Writing that resolved scenario back to a
file and running it with the recorded seed gives the same numbers. ``--set`` overrides a
key (and a bad one is a one-line error); a ``[sweep]`` gives one row per point.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from simkit import THEORY, to_toml

from sim.cli import main
from sim.scenario import CONTEXT, HOST, RUN, SCENARIO, STAGE, WORKLOAD
from sim.schema import REQUIRED

QUICK = ["--reps", "3", "--workers", "1", "--set", "workload.requests=2000"]
ESTIMATES = ("mean", "p50", "p90", "p99", "max")


def run_json(capsys, tmp_path: Path, scenario: Path, *args: str,
             name: str = "out.json") -> tuple[dict[str, Any], str]:
    out_json = tmp_path / name
    capsys.readouterr()
    code = main(["run", str(scenario), *args, "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(out_json.read_text()), out


def assert_estimate(e: dict) -> None:
    assert set(e) == {"value", "ci95"}
    lo, hi = e["ci95"]
    assert isinstance(e["value"], float | int)
    assert lo <= e["value"] <= hi


def test_json_rows_hold_every_estimate_with_its_interval(capsys, tmp_path):
    doc, out = run_json(capsys, tmp_path, THEORY / "mm1.toml", *QUICK)
    assert doc["seed"] == 1
    (row,) = doc["results"]
    assert row["scenario"] == "mm1" and row["status"] in ("ok", "imprecise")
    assert_estimate(row["throughput_rps"])
    assert set(ESTIMATES) <= set(row["latency_ms"])
    for k in ESTIMATES:
        assert_estimate(row["latency_ms"][k])
    lat = row["latency_ms"]
    assert lat["p50"]["value"] <= lat["p90"]["value"] <= lat["p99"]["value"] \
        <= lat["max"]["value"]
    assert row["completed_requests"] == 3 * 2000
    assert row["replications"] == 3
    assert isinstance(row["wall_seconds"], float) and row["wall_seconds"] > 0
    # the table on stdout: a header, a rule, one line for the one row
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["scenario", "point"]
    assert lines[2].split()[0] == "mm1"


def declared(section, table: dict, key: str) -> None:
    """Every parameter of ``section`` that has a default is present in ``table``."""
    for p in section.params:
        if p.default is REQUIRED or p.default is not None:
            assert p.name in table, f"{key}.{p.name} missing from the resolved scenario"


def test_json_holds_the_fully_resolved_scenario(capsys, tmp_path):
    doc, _ = run_json(capsys, tmp_path, THEORY / "md1.toml", *QUICK)
    r = doc["results"][0]["resolved_scenario"]
    declared(SCENARIO, r["scenario"], "scenario")
    declared(HOST, r["host"], "host")  # md1.toml has no [host]: all defaults
    assert r["host"] == {"name": "host", "cores": 1, "speed": 1.0, "scheduling": "preemptive"}
    for n, c in r["contexts"].items():
        declared(CONTEXT, c, f"contexts.{n}")
    for n, s in r["stages"].items():
        declared(STAGE, s, f"stages.{n}")
    declared(WORKLOAD, r["workload"], "workload")
    declared(RUN, r["run"], "run")
    assert r["workload"]["requests"] == 2000  # --set is applied in what is recorded
    assert r["workload"]["warmup"] == 0.1 and r["run"]["precision"] == 0.02


def test_a_run_repeats_from_its_json_alone(capsys, tmp_path):
    first, _ = run_json(capsys, tmp_path, THEORY / "tandem5.toml", *QUICK, "--seed", "9")
    row = first["results"][0]
    resolved = {k: v for k, v in row["resolved_scenario"].items()
                if k not in ("source", "sweep_point")}
    again = tmp_path / "again.toml"
    again.write_text(to_toml(resolved))
    # the seed and the options come from the recorded command, the model from the file
    cmd = first["command"]
    assert cmd[:2] == ["uksim", "run"] and "--seed" in cmd and "--reps" in cmd
    seed = cmd[cmd.index("--seed") + 1]
    reps = cmd[cmd.index("--reps") + 1]
    assert (seed, reps) == ("9", "3") and first["seed"] == 9
    second, _ = run_json(capsys, tmp_path, again, "--seed", seed, "--reps", reps,
                         "--workers", "2", name="again.json")
    row2 = second["results"][0]
    for r in (row, row2):
        r.pop("wall_seconds")
        r["resolved_scenario"].pop("source")
    assert row2 == row


def test_set_overrides_a_key(capsys, tmp_path):
    doc, _ = run_json(capsys, tmp_path, THEORY / "mm1.toml", *QUICK,
                      "--set", "workload.rate=0.25", "--set", "scenario.name=quiet")
    row = doc["results"][0]
    assert row["scenario"] == "quiet"
    assert row["resolved_scenario"]["workload"]["rate"] == 0.25
    lo, hi = row["throughput_rps"]["ci95"]
    assert lo < 250 < hi
    assert "--set" in doc["command"] and "workload.rate=0.25" in doc["command"]


@pytest.mark.parametrize("setting,names", [
    ("workload.rate", "--set: workload.rate: expected KEY=VALUE"),
    ("=1", "--set: =1: expected KEY=VALUE with a dotted key"),
    ("workload..rate=1", "--set: workload..rate=1: expected KEY=VALUE with a dotted key"),
    ("workload.rate=fast", "mm1.toml: workload.rate: expected a number"),
    ("workload.rate=-1", "mm1.toml: workload.rate: must be > 0"),
    ("host.cores.count=2", "--set: host.cores: is not a table"),
    ("hots.cores=2", "mm1.toml: hots: unknown section"),
    ("host.core=2", "mm1.toml: host.core: unknown key"),
    ("workload.kind=closed", "mm1.toml: workload.clients: a closed workload needs clients"),
])
def test_a_bad_set_is_one_clean_line(capsys, setting, names):
    capsys.readouterr()
    code = main(["run", str(THEORY / "mm1.toml"), "--set", setting])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("uksim: error: ")
    assert names in err


def test_a_sweep_gives_one_row_per_point_in_order(capsys, tmp_path):
    text = (THEORY / "mm1.toml").read_text() + (
        '\n[sweep]\n"workload.rate" = [0.2, 0.5]\n"host.speed" = [1.0, 2.0]\n')
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    doc, out = run_json(capsys, tmp_path, path, *QUICK)
    rows = doc["results"]
    points = list(itertools.product([0.2, 0.5], [1.0, 2.0]))
    assert len(rows) == len(points) == 4
    for row, (rate, speed) in zip(rows, points, strict=True):
        assert row["sweep"] == {"workload.rate": rate, "host.speed": speed}
        r = row["resolved_scenario"]
        assert (r["workload"]["rate"], r["host"]["speed"]) == (rate, speed)
        assert r["sweep_point"] == row["sweep"]
        lo, hi = row["throughput_rps"]["ci95"]
        assert lo < rate * 1000 < hi
    # a faster core: the same arrivals are served in half the time
    assert rows[1]["latency_ms"]["mean"]["value"] < rows[0]["latency_ms"]["mean"]["value"]
    table = out.strip().splitlines()
    assert len(table) == 2 + 4
    assert "rate=0.2,speed=1.0" in table[2]


def test_a_bad_sweep_is_one_clean_line(capsys, tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text((THEORY / "mm1.toml").read_text() + '\n[sweep]\n"workload.rate" = [0.5, -1]\n')
    capsys.readouterr()
    code = main(["run", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{path}: workload.rate: must be > 0" in err


def _predict(capsys, tmp_path: Path, *argv: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "p.json"
    assert main(["predict", *argv, "-n", "3000", "--reps", "2", "--json", str(out)]) == 0
    return capsys.readouterr().out, json.loads(out.read_text())


def test_predict_reports_redis_benchmark_as_redis_benchmark_does(capsys, tmp_path):
    text, row = _predict(capsys, tmp_path, "--platform", "osv_kvm", "--test", "LRANGE_100",
                         "-c", "10", "-P", "10")
    lines = text.splitlines()
    assert "as redis-benchmark reports it" in lines[0] and lines[1] == "====== LRANGE_100 ======"
    assert "10 parallel clients, pipeline 10" in lines[2]
    rate = f"{row['throughput_rps']['value']:,.0f}"
    assert f"throughput summary: {rate} ±" in text
    labels = [x.split()[0] for x in lines[lines.index("  latency summary (msec):") + 1:]]
    assert labels == ["avg", "p50", "p95", "p99", "max"]


def test_predict_reports_wrk_as_wrk_latency_does(capsys, tmp_path):
    text, row = _predict(capsys, tmp_path, "--platform", "ubuntu_kvm", "--app", "nginx",
                         "--workload", "wrk", "-c", "20")
    assert "as wrk --latency reports it" in text and "20 connections" in text
    dist = text.split("Latency Distribution (ms)\n")[1].splitlines()[:4]
    assert [x.split()[0] for x in dist] == ["50%", "75%", "90%", "99%"]
    assert f"Requests/sec:  {row['throughput_rps']['value']:,.0f} ±" in text
    mb = row["transfer_kbytes_per_s"]["value"] / 1024
    assert f"Transfer/sec:  {mb:.4g}" in text
