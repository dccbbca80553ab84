"""Measured data sets as experiments: the committed data set loads, and a host fitted on
its loopback runs predicts the container paths, with the report's keys.

The end-to-end case uses a slice of the real committed data (GET at two connection
counts on loopback and veth) and fits one parameter, so it runs in seconds; the full
data set is validated by `uksim validate measured` (README).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pytest

from sim.calibration import calibrate, write_calibration
from sim.cli import main
from sim.errors import ConfigError
from sim.measured import PATH_PLATFORMS, load_measured
from sim.parameters import load_parameters
from sim.validate import validate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "validation" / "measured" / "python-kind-2core"


def test_the_committed_data_set_loads_as_an_experiment():
    exp = load_measured(DATA)
    assert exp.pipeline == 10 and not exp.aof
    assert set(exp.platforms) == set(PATH_PLATFORMS.values())
    clients = {c[2] for c in exp.cells}
    assert {1, 10, 100} <= clients
    assert exp.train_cells and all(c[1] == "ubuntu_bare" for c in exp.train_cells)
    assert len(exp.train_cells) < len(exp.cells)
    for cell, value in exp.measured().items():
        q1, q3 = exp.spread[(cell, exp.metric)]
        assert q1 <= value <= q3


def test_bad_data_folders_are_one_clear_error(tmp_path: Path, capsys):
    with pytest.raises(ConfigError, match=r"no summary\.csv"):
        load_measured(tmp_path)
    (tmp_path / "x").mkdir()
    with (tmp_path / "x" / "summary.csv").open("w") as f:
        f.write("path,tool,test,metric,median\n")
    with pytest.raises(ConfigError, match="no redis-benchmark runs"):
        load_measured(tmp_path)
    assert main(["validate", "measured", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]


def _slice(tmp_path: Path) -> Path:
    """GET at -c 1 and 10 on loopback and veth, copied from the committed summary."""
    src = DATA / "redis-P10" / "summary.csv"
    out = tmp_path / "slice" / "redis"
    out.mkdir(parents=True)
    with src.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["test"] == "GET" and r["connections"] in ("1", "10")
                and r["path"] in ("loopback", "veth")]
        fields = reader.fieldnames
    assert len({(r["path"], r["connections"]) for r in rows}) == 4
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return out.parent


def test_fit_on_loopback_predicts_veth_out_of_sample(tmp_path: Path):
    exp = load_measured(_slice(tmp_path))
    exp = dataclasses.replace(exp, predict={"requests": 5000, "reps": 2, "max_reps": 2,
                                            "precision": 0.05})
    base = load_parameters()
    base = type(base)({n: dataclasses.replace(p, free=(n == "linux.tcp"))
                       for n, p in base.params.items()}, base.origin)
    cal = calibrate(exp, base, workers=1, folds=False)
    assert cal.in_sample.free == ["linux.tcp"]
    assert all(cell[1] == "ubuntu_bare" for cell, _metric in cal.in_sample.train)
    path = tmp_path / "cal.toml"
    write_calibration(cal, base, path, len(exp.train_cells))
    rep = validate(exp, path, workers=1, out_of_sample=False)
    assert rep["fitted_on"] == ["loopback"]
    assert {c["path"] for c in rep["cells"]} == {"loopback", "veth"}
    for c in rep["cells"]:
        assert c["in_sample"] == (c["path"] == "loopback")
        assert c["error_pct"] == pytest.approx(100 * (c["predicted"] / c["measured"] - 1))
    assert math.isfinite(rep["mape_in_sample"]) and math.isfinite(rep["mape_out_of_sample"])
