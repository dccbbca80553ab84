"""The measured nginx + ab runs as an experiment: they load, bad data is one clear error,
the HTTP calibration sees loopback only, veth is predicted without its data, and the
path's MSS splits a corked reply into two packets where (and only where) it should.

The fits here free one parameter over a slice of the committed data, so they take
seconds; the full data set is validated by `uksim validate measured` (README).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from sim.calibration import calibrate, write_calibration
from sim.cli import main
from sim.composition import Settings, compose
from sim.errors import ConfigError
from sim.experiment import Variant
from sim.measured import HTTP_FIT_METRICS, HTTP_METRICS, load_measured_http
from sim.parameters import ParameterSet, current_parameters
from sim.predict import predict
from sim.validate import validate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "validation" / "measured" / "python-kind-2core"
HTTP = current_parameters("python-kind-2core-http")


def test_the_committed_http_cells_load_as_a_table_of_metrics():
    exp = load_measured_http(DATA)
    assert exp.tests == ("close", "keep-alive") and exp.page_bytes == 1450
    assert exp.run_of("close") == Variant("GET", False)
    assert exp.run_of("keep-alive") == Variant("GET", True)
    assert {c[2] for c in exp.cells} == {1, 10, 50, 100}
    assert len(exp.cells) == 2 * 3 * 4
    points = exp.measured_points()
    assert len(points) == len(exp.cells) * len(HTTP_METRICS)
    for pt, value in points.items():
        q1, q3 = exp.spread[pt]
        assert q1 <= value <= q3
    fit = exp.fit_points()
    assert fit and all(c[1] == "ubuntu_bare" and m in HTTP_FIT_METRICS for c, m in fit)
    assert len(fit) == 2 * 4 * len(HTTP_FIT_METRICS)
    # the committed calibration builds on the Redis one and frees fewer than a third
    assert exp.builds_on == "python-kind-2core" and 3 * len(exp.free) < len(fit)


def _slice(tmp_path: Path, keep=lambda r: True, edit=lambda r: r) -> Path:
    """Rows of the committed keep-alive summary, filtered and edited, as a new data set."""
    src = DATA / "http-ab-keepalive" / "summary.csv"
    out = tmp_path / "slice" / "http-ab-keepalive"
    out.mkdir(parents=True)
    with src.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [edit(dict(r)) for r in reader if keep(r)]
        fields = reader.fieldnames
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return out.parent


@pytest.mark.parametrize("edit, match", [
    (lambda r: {**r, "keepalive": "maybe"}, r"line 2: keepalive: expected true or false"),
    (lambda r: {**r, "median": "fast"}, r"line 2: cannot read an ab cell"),
    (lambda r: {**r, "median": "0"}, r"line 2: median: requests_per_s must be positive"),
    (lambda r: {**r, "server": "apache"}, r"line 2: server: ab ran against 'apache'"),
    (lambda r: {**r, "value_bytes": "4096" if r["connections"] == "1" else r["value_bytes"]},
     r"value_bytes: runs with different page sizes \(1450, 4096 bytes\)"),
])
def test_bad_http_data_is_one_clear_error_naming_file_and_line(tmp_path: Path, edit, match):
    with pytest.raises(ConfigError, match=match):
        load_measured_http(_slice(tmp_path, edit=edit))


def test_missing_http_runs_or_loopback_are_clear_errors(tmp_path: Path, capsys):
    no_ab = _slice(tmp_path / "a", edit=lambda r: {**r, "tool": "wrk"})
    with pytest.raises(ConfigError, match="no ab runs"):
        load_measured_http(no_ab)
    with pytest.raises(ConfigError, match="no loopback ab runs"):
        load_measured_http(_slice(tmp_path / "b", keep=lambda r: r["path"] != "loopback"))
    # through the CLI: one line, exit 2 (no calibration for this data set yet)
    ds = _slice(tmp_path / "c")
    assert main(["validate", "measured", str(ds), "--only", "http"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--http" in err[0]
    assert main(["calibrate", "--http"]) == 2
    assert "--measured" in capsys.readouterr().err


def test_runs_with_the_log_shipped_as_syslog_are_rows_of_their_own_never_fitted(tmp_path):
    # the keep-alive runs again as if nginx had shipped its log (a second folder)
    root = _slice(tmp_path, keep=lambda r: r["connections"] in ("1", "10"))
    shipped = root / "http-ab-keepalive-syslog"
    shipped.mkdir()
    with (root / "http-ab-keepalive" / "summary.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [{**r, "access_log": "syslog"} for r in reader]
        fields = [*(reader.fieldnames or []), "access_log"]
    with (shipped / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    exp = load_measured_http(root)
    assert exp.tests == ("keep-alive", "keep-alive, syslog")
    assert exp.run_of("keep-alive, syslog") == Variant("GET", True, "syslog")
    assert exp.run_of("keep-alive") == Variant("GET", True)  # nginx's default: no log
    fit = exp.fit_points()
    assert fit and all(c[0] == "keep-alive" and c[1] == "ubuntu_bare" for c, _ in fit)
    assert not exp.trains_on(("keep-alive, syslog", "ubuntu_bare", 10))
    # an access log the model does not know is one clear error
    rows[0]["access_log"] = "kafka"
    with (shipped / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ConfigError, match="access_log: unknown access log 'kafka'"):
        load_measured_http(root)


def _only(base: ParameterSet, name: str) -> ParameterSet:
    return ParameterSet({n: dataclasses.replace(p, free=(n == name))
                         for n, p in base.params.items()}, base.origin)


def test_the_http_fit_sees_loopback_only_and_veth_is_predicted_without_its_data(tmp_path: Path):
    few = lambda r: r["connections"] in ("1", "10") and r["path"] in ("loopback", "veth")  # noqa: E731
    exp = load_measured_http(_slice(tmp_path / "a", keep=few))
    exp = dataclasses.replace(exp, predict={"requests": 3000, "reps": 2, "max_reps": 2,
                                            "precision": 0.05}, fit={"requests": 1500})
    base = _only(current_parameters("python-kind-2core"), "nginx.request")
    cal = calibrate(exp, base, workers=1, folds=False)
    assert cal.in_sample.free == ["nginx.request"]
    assert {c[1] for c, _ in cal.in_sample.train} == {"ubuntu_bare"}
    # veth's measurements a hundred times off: the fit does not move at all
    wild = load_measured_http(_slice(tmp_path / "b", keep=few, edit=lambda r: {
        **r, "median": str(100 * float(r["median"])) if r["path"] == "veth" else r["median"]}))
    wild = dataclasses.replace(wild, fit=exp.fit)
    again = calibrate(wild, base, workers=1, folds=False)
    assert again.in_sample.values == cal.in_sample.values
    path = tmp_path / "cal.toml"
    write_calibration(cal, base, path, len(exp.fit_points()), builds_on="python-kind-2core")
    rep = validate(exp, path, workers=1, out_of_sample=False)
    veth = [c for c in rep["cells"] if c["path"] == "veth"]
    assert veth and not any(c["in_sample"] for c in veth)
    assert all(c["predicted"] > 0 for c in veth)
    assert rep["fitted_on"] == ["loopback"] and rep["points_fitted"] == 4
    assert set(rep["mape_by_path_and_metric"]["veth"]) == set(HTTP_METRICS)
    assert set(rep["mape_by_path_and_run"]["loopback"]) == {"keep-alive"}


def _route(platform: str, keepalive: bool, page: int | None = None, app: str = "nginx"
           ) -> list[str]:
    raw = compose("python-kind-2core", platform, app, "ab", "GET", HTTP,
                  Settings(clients=10, requests=2000, keepalive=keepalive, page_bytes=page))
    return raw["path"]["route"]


def test_a_corked_reply_over_the_paths_mss_leaves_as_two_packets():
    # loopback's MSS (65483 B) holds the 1684-byte response; a veth's (1448 B) does not
    assert "srv.write_tail" not in _route("ubuntu_bare", True)
    veth = _route("container_veth", True)
    assert veth.count("veth.deliver_reply") == 2 and "veth.ack" in veth
    assert veth.index("srv.write") < veth.index("srv.write_tail") < veth.index("veth.ack")
    # without keep-alive the tail goes with the FIN, whose ACK exists anyway
    closed = _route("container", False)
    assert "srv.write_tail" in closed and "ct.ack" not in closed
    # a page whose response fits one segment: one packet on every path
    assert "srv.write_tail" not in _route("container_veth", True, page=1000)
    # Node's Express writes without TCP_CORK: never split
    assert "srv.write_tail" not in _route("container_veth", True, app="result")


def test_the_split_costs_keepalive_throughput_on_veth_and_a_small_page_does_not():
    exp = dataclasses.replace(load_measured_http(DATA), fit={"requests": 3000})

    def ratio(page: int) -> float:
        e = dataclasses.replace(exp, page_bytes=page)
        cells = [("keep-alive", p, 50) for p in ("ubuntu_bare", "container_veth")]
        got = predict(e, HTTP, cells, "fit")
        return got[cells[1]]["requests_per_s"] / got[cells[0]]["requests_per_s"]

    assert ratio(1450) < 0.8 < 0.9 < ratio(1000)


def test_page_size_settings_are_checked():
    with pytest.raises(ConfigError, match=r"commands\.GET /\.page_bytes: missing"):
        _route("ubuntu_bare", True, page=500, app="result")
    with pytest.raises(ConfigError, match=r"page_bytes: expected a size in bytes"):
        _route("ubuntu_bare", True, page=-1)
