"""Validation: predictions beside a reference table, cell by cell, in and out of sample.

For every cell (test, platform) of an experiment the report gives the measured value,
the prediction with its 95% interval (calibrated parameters, replications until the
interval is within the experiment's precision) and the error. Out of sample, each cell is
predicted again by the parameters fitted without its platform (leave one platform out)
and without its test (leave one test out), as ``uksim calibrate`` stored them. The mean
absolute percentage errors of the three are the headline numbers.

The out-of-sample predictions are point predictions from one replication of the length
the calibration fits on (with its random numbers; a cell's own length where the
calibration file's ``[fit_lengths]`` gives one), the runs each refit was optimised on.
A fold in which a free parameter was used by no training cell left it at its prior (e.g.
OSv's stack when OSv is left out): those cells are predicted from priors for that layer,
and the report lists them as such.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sim.errors import ConfigError, UksimError
from sim.experiment import Cell, Experiment
from sim.parameters import ParameterSet, current_parameters, load_calibration, load_parameters
from sim.predict import REQUESTS, predict, run_jobs, run_metrics
from sim.scenario import read_toml
from sim.workers import pool_size, worker_pool


@dataclass(frozen=True)
class Folds:
    """Parameter values of each out-of-sample refit, and what each left at its prior."""

    platform: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    frozen_platform: dict[str, list[str]]
    frozen_test: dict[str, list[str]]
    meta: dict[str, Any]
    fit_lengths: dict[Cell, int]  # the fit's runs that were longer than fit.requests


def load_folds(path: Path) -> Folds:
    raw = read_toml(path)
    fitted = set(raw.get("fitted", {}))  # what the experiment's cells use

    def part(key: str) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
        values: dict[str, dict[str, float]] = {}
        frozen: dict[str, list[str]] = {}
        for left_out, table in raw.get(key, {}).items():
            # a layer no cell of the experiment uses is not "left at its prior" by a fold
            frozen[left_out] = [n for n in table.get("frozen_at_prior", []) if n in fitted]
            values[left_out] = {k: float(v) for k, v in table.items()
                                if k not in ("frozen_at_prior", "rms_log_residual")}
        return values, frozen

    p, fp = part("leave_one_platform_out")
    t, ft = part("leave_one_test_out")
    return Folds(p, t, fp, ft, dict(raw.get("meta", {})), _fit_lengths(raw, path))


def _fit_lengths(raw: dict[str, Any], path: Path) -> dict[Cell, int]:
    """The ``[fit_lengths]`` table: ``"TEST PLATFORM -c CLIENTS" = requests`` (the test may
    hold spaces, :func:`sim.calibration.fit_length_key`)."""
    table = raw.get("fit_lengths", {})
    if not isinstance(table, dict):
        raise ConfigError(str(path), "fit_lengths", "expected a table of cell = requests")
    out: dict[Cell, int] = {}
    for key, n in table.items():
        parts = key.rsplit(" ", 3)
        if (len(parts) != 4 or parts[2] != "-c" or not parts[3].isascii()
                or not parts[3].isdigit()):
            raise ConfigError(str(path), f"fit_lengths.{key}",
                              'expected a key "TEST PLATFORM -c CLIENTS"')
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ConfigError(str(path), f"fit_lengths.{key}",
                              f"expected a positive whole number of requests, got {n!r}")
        out[(parts[0], parts[1], int(parts[3]))] = n
    return out


def _mape(errors: list[float]) -> float | None:
    xs = [abs(e) for e in errors if e is not None and math.isfinite(e)]
    return sum(xs) / len(xs) if xs else None


def _err(pred: float | None, meas: float) -> float | None:
    if pred is None or not math.isfinite(pred):
        return None
    return 100.0 * (pred - meas) / meas


def validate(exp: Experiment, calibration: Path, workers: int = 0,
             out_of_sample: bool = True) -> dict[str, Any]:
    """Predict every cell and compare; returns the report as a JSON-ready dict.

    A table of tests (Table 1) has one point per cell (its throughput); a table of
    metrics (HTTP: Tables 2 and 3) has several per cell (one run per platform gives its
    req/s, KB/s and latency percentiles). The headline errors average the points a
    calibration fits (for HTTP: req/s and median latency) over the reliable platforms;
    ``mape_by_metric`` gives every row, and unreliable columns are reported apart.
    """
    t0 = time.perf_counter()
    if not calibration.is_file():
        raise UksimError(f"no calibration at {calibration}: run `uksim calibrate` first")
    # what the folds start from: the priors, or the calibration this one builds on
    base = current_parameters(exp.builds_on) if exp.builds_on else load_parameters()
    params = load_calibration(load_parameters(), calibration)
    folds = load_folds(calibration)
    exp = replace(exp, fit_lengths=folds.fit_lengths)  # the folds' runs, as they were fitted
    measured = exp.measured_points()
    cells = exp.cells
    headline = {pt for pt in measured
                if pt[1] in exp.fitted_metrics and pt[0][1] not in exp.unreliable}
    with worker_pool(pool_size(workers, len(cells))) as pool:
        rows = predict(exp, params, cells, "predict", pool)
        lopo: dict[tuple[Cell, str], Any] = {}  # (cell, fold key) -> metrics
        loto: dict[tuple[Cell, str], Any] = {}
        if out_of_sample:
            for kind, values, keys_of, target in (
                ("platform", folds.platform, lambda c: [c[1]], lopo),
                ("test", folds.test,
                 lambda c: list(exp.fitted_metrics) if exp.by_metric else [c[0]],
                 loto),
            ):
                jobs: dict[tuple[Cell, str], ParameterSet] = {}
                for c in cells:
                    if kind == "platform" and c[1] in exp.unreliable:
                        continue
                    for key in keys_of(c):
                        fold = values.get(key)
                        if fold is None:
                            raise ConfigError(str(calibration), f"leave_one_{kind}_out",
                                              f"no refit without {key}; run `uksim calibrate`"
                                              " without --no-folds")
                        # the fold's own fit; what it could not fit stays where it started
                        # (the prior, or the calibration this one builds on), never at the
                        # in-sample value (which saw the left-out cells)
                        jobs[(c, key)] = base.with_values(fold)
                # one replication of the fit's length with the fit's random numbers: the
                # runs each refit was optimised on, now for the cells it did not see
                keys = list(jobs)
                got = run_jobs(exp, [(c, jobs[(c, k)]) for c, k in keys], "fit", pool)
                target.update(zip(keys, got, strict=True))

    out_cells = []
    for pt, meas in measured.items():
        c, metric = pt
        test, platform, clients = c
        row = rows[c]
        value, ci = run_metrics(row)[metric]
        cell: dict[str, Any] = {
            "test": exp.label(pt), "platform": platform,
            "path": exp.labels.get(platform, platform),
            "clients": clients, "measured": meas,
            "predicted": value, "ci95": ci,
            "error_pct": _err(value, meas), "status": row["status"],
            "replications": row["replications"],
            "headline": pt in headline,
        }
        if exp.by_metric:
            cell["run"] = test
            cell["fitted"] = pt in set(exp.fit_points())
        if platform in exp.unreliable:
            cell["unreliable"] = exp.unreliable[platform]
        if exp.train_platforms:
            cell["in_sample"] = exp.trains_on(c)
            if pt in exp.spread:
                cell["measured_q1"], cell["measured_q3"] = exp.spread[pt]
        if out_of_sample:
            if (c, platform) in lopo:
                v = lopo[(c, platform)][metric]
                cell["predicted_leave_one_platform_out"] = v
                cell["error_pct_leave_one_platform_out"] = _err(v, meas)
                cell["leave_one_platform_out_priors"] = folds.frozen_platform.get(platform, [])
            # leave one test out: the fold without this test (for a table of metrics,
            # without this metric; a metric no fit uses is out of sample in every fold)
            fold_run = loto.get((c, metric if exp.by_metric else test))
            v = fold_run[metric] if fold_run is not None else value
            cell["predicted_leave_one_test_out"] = v
            cell["error_pct_leave_one_test_out"] = _err(v, meas)
        out_cells.append(cell)

    def mape(key: str, where: Any = None) -> float | None:
        return _mape([x.get(key) for x in out_cells if x["headline"]
                      and (where is None or where(x))])

    per_platform = {
        p: {
            "mape_in_sample": mape("error_pct", lambda x, p=p: x["platform"] == p),
            "mape_leave_one_platform_out": mape("error_pct_leave_one_platform_out",
                                                lambda x, p=p: x["platform"] == p)
            if out_of_sample else None,
            "layers_at_prior_when_left_out": folds.frozen_platform.get(p, []),
        }
        for p in exp.platforms if p not in exp.unreliable
    }
    train = set(exp.train_platforms)
    split: dict[str, Any] = {}
    if train:  # fitted on some platforms (the host path), predicted on the others
        split = {
            "fitted_on": [exp.labels.get(p, p) for p in exp.train_platforms],
            "mape_in_sample": mape("error_pct", lambda x: x["in_sample"]),
            "mape_out_of_sample": mape("error_pct", lambda x: not x["in_sample"]),
            "mape_by_path": {exp.labels.get(p, p): mape("error_pct",
                                                        lambda x, p=p: x["platform"] == p)
                             for p in exp.platforms},
        }
        if exp.by_metric:  # every metric (fitted or not) and every row, path by path
            split["mape_by_path_and_metric"] = {
                exp.labels.get(p, p): {m: _mape([x["error_pct"] for x in out_cells
                                                 if x["platform"] == p and x["test"] == m])
                                       for m in exp.metrics}
                for p in exp.platforms}
            split["mape_by_path_and_run"] = {
                exp.labels.get(p, p): {r: mape("error_pct", lambda x, p=p, r=r:
                                               x["platform"] == p and x["run"] == r)
                                       for r in exp.tests}
                for p in exp.platforms}
    extra: dict[str, Any] = {}
    if exp.by_metric:
        reliable = [x for x in out_cells if "unreliable" not in x]
        extra["mape_by_metric"] = {
            m: {k: _mape([x.get(k) for x in reliable if x["test"] == m])
                for k in ("error_pct", "error_pct_leave_one_platform_out")}
            for m in exp.metrics}
        extra["headline_metrics"] = list(exp.fitted_metrics)
        extra["unreliable"] = dict(exp.unreliable)
    return {
        "experiment": exp.name,
        "description": exp.description,
        "metric": exp.metric,
        "reference": str(exp.reference.name),
        "calibration": str(calibration.name),
        "cells": out_cells,
        "mape_in_sample": mape("error_pct"),
        "mape_leave_one_platform_out": mape("error_pct_leave_one_platform_out")
        if out_of_sample else None,
        "mape_leave_one_test_out": mape("error_pct_leave_one_test_out")
        if out_of_sample else None,
        "per_platform": per_platform,
        "free_parameters": int(folds.meta.get("free_parameters", len(params.free_names))),
        "out_of_sample_runs": ("one replication of the calibration's fit length "
                               f"({exp.fit.get('requests', REQUESTS)} requests, or the cell's "
                               "own in the calibration's [fit_lengths], at least 20 rounds "
                               "of every client; common random numbers), as each refit was "
                               "optimised on" if out_of_sample else None),
        "data_points": len(exp.fit_points()) if exp.by_metric else len(cells),
        "points_measured": len(measured),
        "points_fitted": len(exp.fit_points()),
        "parameters": {n: {"value": params[n], "stderr": params.params[n].uncertainty,
                           "unit": params.params[n].unit} for n in params.free_names},
        "wall_seconds": round(time.perf_counter() - t0, 2),
        **extra,
        **split,
    }
