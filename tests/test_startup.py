"""The start-up model of Table 4 (sim/startup.py, models/startup/).

Same seed, same numbers bit for bit; the phases of a cell add up to its prediction and
their exact sum lies inside the Monte-Carlo interval; the fit recovers free parameters
from data the model itself generated; out-of-sample predictions differ from in-sample
ones and do not move when the left-out cells' measurements change; bad model files raise
ConfigError naming the file and the key; the report has the keys of Table 1's.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ConfigError
from sim.plots.startup import plot_startup
from sim.resources import models_dir, validation_dir
from sim.startup import (
    REFERENCE,
    fit,
    load_model,
    mean_startup,
    predict_cell,
    read_reference,
    simulate,
    startup_report,
)

SAMPLES = 4000


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def report():
    return startup_report(seed=3, samples=SAMPLES)


def test_same_seed_same_numbers_bit_for_bit(model) -> None:
    a, pa = simulate(model, "netbsd_kvm", "result", {}, seed=7, samples=500)
    b, pb = simulate(model, "netbsd_kvm", "result", {}, seed=7, samples=500)
    assert a.tobytes() == b.tobytes()
    assert all(pa[k].tobytes() == pb[k].tobytes() for k in pa)
    c, _ = simulate(model, "netbsd_kvm", "result", {}, seed=8, samples=500)
    assert a.tobytes() != c.tobytes()
    r1 = startup_report(seed=5, samples=300)
    r2 = startup_report(seed=5, samples=300)
    assert r1["cells"] == r2["cells"]


def test_phases_add_up_to_the_prediction(report, model) -> None:
    for c in report["cells"]:
        assert math.isclose(sum(c["phases"].values()), c["predicted"], rel_tol=1e-12)
        lo, hi = c["ci95"]
        assert lo < c["predicted"] < hi
        # the exact mean (sum of the terms' means) lies within the Monte-Carlo interval,
        # widened to 4 standard errors so the test is not a coin toss
        exact = mean_startup(model, c["platform"], c["test"],
                             {n: p["value"] for n, p in report["parameters"].items()})
        half = (hi - lo) / 2
        assert abs(exact - c["predicted"]) < 4 * half / 1.96
        assert c["range95"][0] <= c["predicted"] <= c["range95"][1]


def test_documented_random_waits_have_their_documented_support(model) -> None:
    _, ph = simulate(model, "netbsd_kvm", "vote", {}, seed=1, samples=20000)
    arp = ph["network"]  # RFC 5227: 4 to 7 s of probing, plus the DHCP exchange
    assert arp.min() > 4.0 and arp.max() < 7.5
    assert abs(arp.mean() - 5.52) < 0.05
    _, ph = simulate(model, "ubuntu_kvm", "vote", {}, seed=1, samples=20000)
    delay = ph["network"] - np.floor(ph["network"])  # whole-second dhclient delay + exchange
    assert set(np.unique(np.floor(ph["network"]))) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert delay.max() < 0.5


def test_fit_recovers_known_parameters_from_synthetic_data(model) -> None:
    truth = {"ubuntu.systemd": 4.2, "netbsd.rc": 11.0}
    _, measured = read_reference()
    synthetic = {c: mean_startup(model, c[1], c[0], truth) for c in measured}
    f = fit(model, synthetic)
    for name, value in truth.items():
        assert f.values[name] == pytest.approx(value, rel=1e-6)
    assert f.rms_rel_residual < 1e-8
    # from Monte-Carlo data (a noisy measurement of the same model), within a few percent
    noisy = {c: predict_cell(model, c[1], c[0], truth, seed=11, samples=3000)["predicted"]
             for c in measured}
    g = fit(model, noisy)
    for name, value in truth.items():
        assert g.values[name] == pytest.approx(value, rel=0.05)
        assert g.stderr[name] is not None and g.stderr[name] >= 0.0


def test_out_of_sample_folds_use_only_their_training_cells(model, tmp_path: Path) -> None:
    _, measured = read_reference()
    base = fit(model, measured, [c for c in measured if c[1] != "netbsd_kvm"])
    assert base.frozen == ["netbsd.rc"]  # no other platform uses NetBSD's rc(8)
    moved = {c: (v * 3 if c[1] == "netbsd_kvm" else v) for c, v in measured.items()}
    again = fit(model, moved, [c for c in moved if c[1] != "netbsd_kvm"])
    assert again.values == base.values

    # through the whole report: change the NetBSD column of the reference
    text = (validation_dir() / REFERENCE).read_text()
    ref = tmp_path / "table4.csv"
    ref.write_text(re.sub(r"netbsd_kvm,[\d.]+,[\d.]+", "netbsd_kvm,60.0,61.0", text))
    a = startup_report(seed=2, samples=500)
    b = startup_report(seed=2, samples=500, reference=ref)
    for ca, cb in zip(a["cells"], b["cells"], strict=True):
        if ca["platform"] == "netbsd_kvm":
            assert ca["predicted_leave_one_platform_out"] == cb["predicted_leave_one_platform_out"]
            assert ca["predicted"] != cb["predicted"]
        if ca["test"] == "vote" and ca["platform"] == "netbsd_kvm":
            # leave-one-test-out without vote still sees NetBSD's result cell, which moved
            assert ca["predicted_leave_one_test_out"] != cb["predicted_leave_one_test_out"]


def test_out_of_sample_differs_from_in_sample(report) -> None:
    by = {(c["test"], c["platform"]): c for c in report["cells"]}
    for app in ("vote", "result"):
        for platform in ("ubuntu_kvm", "netbsd_kvm"):
            c = by[(app, platform)]
            assert c["predicted_leave_one_platform_out"] != pytest.approx(c["predicted"],
                                                                          rel=1e-3)
            assert c["predicted_leave_one_test_out"] != pytest.approx(c["predicted"],
                                                                      rel=1e-3)
            assert c["leave_one_platform_out_priors"]
    assert report["per_platform"]["netbsd_kvm"]["layers_at_prior_when_left_out"] == [
        "netbsd.rc"]
    assert report["mape_leave_one_platform_out"] > report["mape_in_sample"]


def test_report_has_the_keys_of_table_1(report, tmp_path: Path) -> None:
    for key in ("experiment", "description", "metric", "reference", "cells",
                "mape_in_sample", "mape_leave_one_platform_out", "mape_leave_one_test_out",
                "per_platform", "free_parameters", "data_points", "parameters",
                "wall_seconds"):
        assert key in report, key
    assert report["experiment"] == "jaworski2019/table4"
    assert report["metric"] == "startup_s"
    assert report["data_points"] == 7 and report["free_parameters"] <= 2
    assert len(report["cells"]) == 8
    for c in report["cells"]:
        for key in ("test", "platform", "measured", "predicted", "ci95", "error_pct",
                    "predicted_leave_one_platform_out", "error_pct_leave_one_platform_out",
                    "predicted_leave_one_test_out", "error_pct_leave_one_test_out", "phases"):
            assert key in c, key
    osv_vote = next(c for c in report["cells"]
                    if (c["test"], c["platform"]) == ("vote", "osv_kvm"))
    assert osv_vote["measured"] is None and osv_vote["error_pct"] is None
    assert "OSv build of vote failed" in osv_vote["note"]
    assert osv_vote["predicted"] > 0
    for p in report["parameters"].values():
        assert set(p) >= {"value", "stderr", "unit"}
    assert report["wall_seconds"] < 5
    png = plot_startup(report, tmp_path / "t4.png")
    assert png.stat().st_size > 10_000


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "startup"
    shutil.copytree(models_dir() / "startup", d)
    return d


@pytest.mark.parametrize(("file", "old", "new", "key", "words"), [
    ("phases.toml", "[linux.kernel]\nvalue = 1.5", "[linux.kernel]\nvalue = -1.5",
     "linux.kernel.value", ">= 0"),
    ("phases.toml", '[qemu.start]\nvalue = 0.25\nunit = "s"\n', "[qemu.start]\nvalue = 0.25\n",
     "qemu.start.unit", "missing unit"),
    ("phases.toml", 'unit = "MB/s"', 'unit = "furlongs"', "load.int13.unit", "unknown unit"),
    ("phases.toml", "low = 0\nhigh = 4\n", "low = 3\nhigh = 1\n", "dhclient.start_delay.high",
     ">= low"),
    ("phases.toml", "bounds = [0.2, 20.0]\n", "", "ubuntu.systemd.bounds", "bounds"),
    ("platforms.toml", 'kernel = ["@linux.kernel"]', 'kernel = ["@linux.kernl"]',
     "ubuntu_kvm.phases.kernel", "unknown parameter @linux.kernl"),
    ("platforms.toml", 'kernel = ["@osv.kernel"]', 'kernel = ["osv.kernel"]',
     "osv_kvm.phases.kernel[0]", "cannot read"),
    ("platforms.toml", 'image_load = ["@image.netbsd_kernel / @load.int13"]',
     'image_load = ["@load.int13 / @image.netbsd_kernel"]',
     "netbsd_kvm.phases.image_load", "expected size/rate"),
    ("apps.toml", 'server = ["@flask.dev_server"]', 'serve = ["@flask.dev_server"]',
     "vote.no_fork.serve", "unknown phase"),
])
def test_bad_model_files_name_the_file_and_the_key(tmp_path: Path, file: str, old: str,
                                                   new: str, key: str, words: str) -> None:
    d = _copy(tmp_path)
    path = d / file
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_model(d)
    assert exc.value.source == str(path)
    assert exc.value.key == key
    assert words in exc.value.message
    assert str(path) in str(exc.value) and key in str(exc.value)
