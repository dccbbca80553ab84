"""Calibration and validation against a table: the fit recovers parameters it was made from.

The "measured" values here are the simulator's own predictions at known parameter values
(moved away from the priors), so a correct fit must find those values again; the folds
must fit without the left-out cells and leave unused layers at their priors; the
calibration file must round-trip; and the validation report must carry the keys that
users and the issue ask for. The cells are few and short, so this runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from sim.calibration import (
    FIT_PRECISION,
    calibrate,
    dependencies,
    fit_lengths,
    multistart_fit,
    starting_points,
    write_calibration,
)
from sim.experiment import experiment_path, load_experiment
from sim.parameters import load_calibration, load_parameters
from sim.predict import predict, run_jobs
from sim.validate import load_folds, validate

FREE = ("linux.tcp", "redis.per_reply_byte")
TRUTH = {"linux.tcp": 4200.0, "redis.per_reply_byte": 11.0}


def _small_experiment():
    exp = load_experiment(experiment_path("jaworski2019", "1"))
    return dataclasses.replace(
        exp, platforms=("ubuntu_bare", "osv_kvm"), tests=("GET", "LRANGE_100", "LRANGE_300"),
        predict={"requests": 6000, "reps": 2, "max_reps": 2, "precision": 0.05},
        # the "measured" values are fit runs of fit.requests: fit on the same runs
        fit={**exp.fit, "precision": 0.5},
    )


def _base_with_free(free: tuple[str, ...]):
    base = load_parameters()
    params = {n: dataclasses.replace(p, free=n in free) for n, p in base.params.items()}
    return type(base)(params, base.origin)


@pytest.fixture(scope="module")
def synthetic():
    exp = _small_experiment()
    base = _base_with_free(FREE)
    truth = predict(exp, base.with_values(TRUTH), exp.cells, "fit")
    return dataclasses.replace(exp, values={c: m["requests_per_s"] for c, m in truth.items()}), base


def test_dependencies_follow_the_composed_models(synthetic):
    exp, base = synthetic
    deps = dependencies(exp, base, exp.cells)
    bare = deps[("GET", "ubuntu_bare", 10)]
    osv = deps[("GET", "osv_kvm", 10)]
    assert "osv.tcp" in osv and "osv.tcp" not in bare
    assert "kvm.irq" in osv and "kvm.irq" not in bare
    assert "redis.lookup" in bare  # GET looks a key up
    assert "storage.device_flush" not in bare  # GET changes no data: no fsync


def test_fit_recovers_the_values_the_data_were_made_from(synthetic):
    exp, base = synthetic
    cal = calibrate(exp, base, workers=1, folds=False)
    f = cal.in_sample
    assert sorted(f.free) == sorted(FREE)
    for name, value in TRUTH.items():
        assert f.values[name] == pytest.approx(value, rel=0.05), name
        assert base[name] != pytest.approx(value, rel=0.05)  # the prior was elsewhere
    assert f.rms_log_residual < 0.02


def test_folds_never_see_what_they_predict_and_write_round_trips(synthetic, tmp_path: Path):
    exp, _ = synthetic
    # a free parameter only OSv uses: left at its prior when OSv is left out
    base3 = _base_with_free((*FREE, "osv.tcp"))
    cal = calibrate(exp, base3, workers=1, folds=True)
    lopo = cal.leave_one_platform_out["osv_kvm"]
    assert all(cell[1] != "osv_kvm" for cell, _metric in lopo.train)
    assert "osv.tcp" in lopo.frozen and "osv.tcp" not in lopo.values
    loto = cal.leave_one_test_out["GET"]
    assert all(cell[0] != "GET" for cell, _metric in loto.train)
    path = tmp_path / "cal.toml"
    write_calibration(cal, base3, path, len(exp.cells))
    loaded = load_calibration(base3, path)
    for name in cal.in_sample.free:
        assert loaded[name] == pytest.approx(cal.in_sample.values[name], rel=1e-12)
        assert loaded.params[name].uncertainty is not None
    folds = load_folds(path)
    assert folds.frozen_platform["osv_kvm"] == ["osv.tcp"]
    assert set(folds.test) == set(exp.tests)


def test_validation_report_has_every_cell_and_the_headline_errors(synthetic, tmp_path: Path):
    exp, base = synthetic
    cal = calibrate(exp, base, workers=1, folds=True)
    path = tmp_path / "cal.toml"
    write_calibration(cal, base, path, len(exp.cells))
    rep = validate(exp, path, workers=1)
    assert len(rep["cells"]) == len(exp.cells) == rep["data_points"]
    for c in rep["cells"]:
        for key in ("test", "platform", "measured", "predicted", "error_pct", "ci95",
                    "error_pct_leave_one_platform_out", "error_pct_leave_one_test_out"):
            assert key in c
        lo, hi = c["ci95"]
        assert lo <= c["predicted"] <= hi
    for key in ("mape_in_sample", "mape_leave_one_platform_out", "mape_leave_one_test_out"):
        assert math.isfinite(rep[key])
    # the data were made by the model: in sample it fits them closely
    assert rep["mape_in_sample"] < 5.0
    assert rep["free_parameters"] == len(FREE)


def test_one_speed_factor_carries_costs_to_another_host(tmp_path: Path):
    # data made on a host 0.6x as fast as the reference, with the reference's layer
    # costs: fitting only host.speed on top of the reference calibration finds 0.6, and
    # the written calibration builds on the reference one when loaded
    from sim.parameters import current_parameters

    ref = current_parameters("jaworski2019")
    exp = dataclasses.replace(_small_experiment(), platforms=("ubuntu_bare",))
    truth = {c: m["requests_per_s"] for c, m in
             predict(exp, ref.with_values({"host.speed": 0.6}), exp.cells, "fit").items()}
    exp = dataclasses.replace(exp, values=truth)
    only_speed = type(ref)({n: dataclasses.replace(p, free=(n == "host.speed"))
                            for n, p in ref.params.items()}, ref.origin)
    cal = calibrate(exp, only_speed, workers=1, folds=False)
    assert cal.in_sample.free == ["host.speed"]
    assert cal.in_sample.values["host.speed"] == pytest.approx(0.6, rel=0.02)
    path = tmp_path / "speed.toml"
    write_calibration(cal, only_speed, path, len(exp.cells), builds_on="jaworski2019")
    loaded = load_calibration(load_parameters(), path)
    assert loaded["host.speed"] == pytest.approx(cal.in_sample.values["host.speed"])
    assert loaded["linux.tcp"] == ref["linux.tcp"] != load_parameters()["linux.tcp"]


def test_starting_points_are_reproducible_and_within_bounds():
    base = _base_with_free(FREE)
    first = starting_points(base, 5)
    assert first[0] is None  # the priors come first
    assert first == starting_points(base, 5)  # the same seed every time
    assert len({tuple(sorted(p.items())) for p in first[1:]}) == 4  # four distinct draws
    for point in first[1:]:
        assert sorted(point) == sorted(FREE)
        for name, value in point.items():
            lo, hi = base.params[name].bounds
            assert lo <= value <= hi
            assert abs(math.log(value / base[name])) <= 1.0 + 1e-12


def test_several_starts_keep_the_best_fit(synthetic):
    exp, base = synthetic
    measured = exp.measured_points()
    points = exp.fit_points()
    deps = dependencies(exp, base, exp.cells)
    single = multistart_fit(exp, base, points, measured, deps, None, starts=1)
    several = multistart_fit(exp, base, points, measured, deps, None, starts=3)
    assert several.starts == 3 and 0 <= several.best_start < 3
    assert several.rms_log_residual <= single.rms_log_residual
    assert several.evaluations > single.evaluations


def test_fit_runs_of_a_write_row_are_long_enough_to_be_fitted():
    # SET with the AOF on waits for one flush per event-loop iteration of up to 100
    # commands: 3000 requests draw ~30 flushes, and with common random numbers their
    # mean's error is every write row's. The probes lengthen that run, not GET's, and at
    # the chosen length the fit's one run is as close to the long-run mean as asked.
    exp = dataclasses.replace(load_experiment(experiment_path("jaworski2019", "1")),
                              platforms=("ubuntu_bare",), tests=("SET", "GET"))
    base = load_parameters()
    write, read = ("SET", "ubuntu_bare", 10), ("GET", "ubuntu_bare", 10)
    chosen = fit_lengths(exp, base, exp.fit_points(), None)
    lengths = chosen.lengths
    assert read not in lengths and not chosen.imprecise
    assert lengths[write] >= 5 * exp.fit["requests"]
    longer = dataclasses.replace(exp, fit_lengths=lengths)
    one = predict(longer, base, [write], "fit")[write]["requests_per_s"]
    many = dataclasses.replace(exp, fit_lengths={write: 100_000})
    mean = sum(run_jobs(many, [(write, base)], "fit", None, rep=k)[0]["requests_per_s"]
               for k in range(1, 7)) / 6
    assert one == pytest.approx(mean, rel=3 * FIT_PRECISION)


def test_a_cell_whose_runs_settle_into_two_regimes_is_reported_not_lengthened():
    # at the priors, this machine's LRANGE_600 -c 50 runs at about 9,800 or 13,900 req/s
    # depending on its random stream, at any length: a longer run cannot make it precise
    from sim.measured import load_measured
    from sim.resources import validation_dir

    exp = load_measured(validation_dir() / "measured" / "python-kind-2core",
                        host="python-kind-2core")
    cell = ("LRANGE_600", "ubuntu_bare", 50)
    exp = dataclasses.replace(exp, values={cell: exp.values[cell]},
                              fit={"requests": 3000, "max_requests": 50000})
    chosen = fit_lengths(exp, load_parameters(), exp.fit_points(), None)
    assert chosen.lengths == {}
    why = chosen.imprecise[cell]
    assert "no less noisy" in why and why.endswith("kept at 10,000")


def test_lengthened_fit_runs_are_written_with_the_calibration(synthetic, tmp_path: Path):
    exp, base = synthetic
    cal = calibrate(exp, base, workers=1, folds=True)
    cal.fit_lengths = {("GET", "osv_kvm", 10): 12000, ("close, syslog", "ubuntu_bare", 1): 5000}
    cal.imprecise = {("GET", "osv_kvm", 10): 'two "regimes"'}
    path = tmp_path / "cal.toml"
    write_calibration(cal, base, path, len(exp.cells))
    text = path.read_text()
    assert '[fit_lengths]\n"GET osv_kvm -c 10" = 12000' in text
    assert '[imprecise_fit_runs]\n"GET osv_kvm -c 10" = "two \\"regimes\\""' in text
    assert load_folds(path).fit_lengths == cal.fit_lengths  # the validation reads them back
    assert load_calibration(base, path)["linux.tcp"] == pytest.approx(
        cal.in_sample.values["linux.tcp"])


@pytest.mark.parametrize(("table", "key", "message"), [
    ("fit_lengths = 5", "fit_lengths", "expected a table"),
    ('[fit_lengths]\n"GET osv_kvm 10" = 5000', "fit_lengths.GET osv_kvm 10",
     '"TEST PLATFORM -c CLIENTS"'),
    ('[fit_lengths]\n"GET osv_kvm -c \u00b9" = 5000', "fit_lengths.GET", "-c CLIENTS"),
    ('[fit_lengths]\n"GET osv_kvm -c 10" = 0', "fit_lengths.GET osv_kvm -c 10",
     "positive whole number"),
])
def test_a_bad_fit_lengths_table_names_the_calibration_file_and_key(tmp_path: Path, table, key,
                                                                    message):
    from sim.errors import ConfigError

    path = tmp_path / "cal.toml"
    path.write_text(f"{table}\n\n[meta]\nfree_parameters = 0\n")
    with pytest.raises(ConfigError) as e:
        load_folds(path)
    assert str(path) in str(e.value) and key in str(e.value) and message in str(e.value)


@pytest.mark.parametrize(("fit", "key", "message"), [
    ("requests = 3000\nprecison = 0.02", "fit.precison", "unknown key"),
    ("requests = 0", "fit.requests", "positive whole number"),
    ("requests = 3000\nprecision = -0.1", "fit.precision", "positive number"),
    ("requests = 3000\nmax_requests = 1.5", "fit.max_requests", "positive whole number"),
    ("requests = 3000\nmax_requests = 1000", "fit.max_requests", "less than fit.requests"),
    ("requests = 3000\nprecision = inf", "fit.precision", "positive number"),
])
def test_a_bad_run_length_in_an_experiment_names_its_file_and_key(tmp_path: Path, fit, key,
                                                                  message):
    from sim.errors import ConfigError

    text = experiment_path("jaworski2019", "1").read_text()
    head, _, _ = text.partition("[fit]")
    path = tmp_path / "table1.toml"
    path.write_text(f"{head}[fit]\n{fit}\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(path)
    assert str(path) in str(e.value) and key in str(e.value) and message in str(e.value)
