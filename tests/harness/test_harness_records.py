"""The tidy output files: schema, incremental writes, summaries over runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sim.errors import UksimError
from sim.harness.records import RESULT_FIELDS, ResultWriter, quartiles, summarise

pytestmark = pytest.mark.harness


def test_quartiles_interpolate_between_order_statistics() -> None:
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert quartiles([7.0]) == (7.0, 7.0)


def test_summary_per_cell_and_metric() -> None:
    base = {f: "" for f in RESULT_FIELDS}
    rows = []
    for run, rps in enumerate([100.0, 300.0, 200.0, 500.0, 400.0], start=1):
        rows.append({**base, "path": "veth", "test": "GET", "connections": "10",
                     "run": str(run), "requests_per_s": str(rps)})
    rows.append({**base, "path": "veth", "test": "GET", "connections": "20", "run": "1",
                 "requests_per_s": "9"})
    out = summarise(rows)
    assert len(out) == 2
    c10 = next(r for r in out if r["connections"] == "10")
    assert (c10["metric"], c10["runs"], c10["median"]) == ("requests_per_s", "5", "300")
    assert (c10["min"], c10["max"], c10["q1"], c10["q3"], c10["iqr"]) == (
        "100", "500", "200", "400", "200")


def test_writer_appends_rows_as_they_come(tmp_path: Path) -> None:
    w = ResultWriter(tmp_path / "out", {"settings": {"kind": "test"}})
    w.add_rows([{"path": "loopback", "test": "GET", "run": 1, "requests_per_s": 1234.5,
                 "aof": False, "keepalive": True}])
    with (tmp_path / "out" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["requests_per_s"] == "1234.5"
    assert (rows[0]["aof"], rows[0]["keepalive"], rows[0]["latency_p99_ms"]) == (
        "false", "true", "")
    w.finish("interrupted")
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["status"] == "interrupted" and prov["finished_utc"]
    assert (tmp_path / "out" / "summary.csv").read_text().count("\n") == 2


def test_writer_refuses_fields_outside_the_schema(tmp_path: Path) -> None:
    w = ResultWriter(tmp_path / "out", {})
    with pytest.raises(ValueError, match="not in the schema"):
        w.add_rows([{"path": "loopback", "rps": 1}])


def test_writer_never_overwrites_a_measurement(tmp_path: Path) -> None:
    ResultWriter(tmp_path / "out", {})
    with pytest.raises(UksimError, match="already exists"):
        ResultWriter(tmp_path / "out", {})
