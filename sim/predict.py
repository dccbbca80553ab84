"""Predictions of an experiment's cells from a parameter set.

Each cell (test, platform) is composed from the model files (:mod:`sim.composition`)
and run. Two modes: ``predict`` runs replications until the 95% interval of throughput is
within the experiment's precision (the numbers a report shows); ``fit`` runs one
replication with a fixed seed (common random numbers: the same draws for every parameter
set, so the fit's objective moves smoothly with the parameters), ``fit.requests`` long or
as long as the calibration chose for the cell (:func:`sim.calibration.fit_lengths`), and
returns the metrics a table may give (:data:`sim.experiment.METRICS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sim.composition import Settings, compose
from sim.experiment import Cell, Experiment
from sim.parameters import ParameterSet
from sim.replication import run_replication
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve, to_model

SEED = 1
REQUESTS = 20000  # one replication's requests where an experiment names none


def cell_scenario(exp: Experiment, cell: Cell, params: ParameterSet, mode: str) -> dict[str, Any]:
    row, platform, clients = cell
    run = exp.run_of(row)
    opts = exp.predict if mode == "predict" else exp.fit
    settings = Settings(
        clients=clients, pipeline=exp.pipeline, aof=exp.aof, keepalive=run.keepalive,
        page_bytes=exp.page_bytes, log=run.log,
        requests=run_requests(exp, cell, mode),
        reps=int(opts.get("reps", 3)),
        max_reps=int(opts.get("max_reps", 12)), precision=float(opts.get("precision", 0.02)),
    )
    raw = compose(exp.host, platform, exp.app, exp.workload, run.test, params, settings)
    return expand_and_resolve(raw, f"{exp.source} [{platform}/{run.test} -c {clients}]")[0]


def run_requests(exp: Experiment, cell: Cell, mode: str) -> int:
    """Requests of one replication of ``cell``: the cell's own fit length if the
    calibration set one, else the mode's ``requests``; at least 20 rounds of every
    client's pipeline, whatever the load."""
    if mode == "fit" and cell in exp.fit_lengths:
        n = exp.fit_lengths[cell]
    else:
        n = int((exp.predict if mode == "predict" else exp.fit).get("requests", REQUESTS))
    return max(n, 20 * cell[2] * exp.pipeline)


def reply_bytes(resolved: dict[str, Any]) -> float:
    """Mean reply bytes of a request of the scenario's workload (one class per cell)."""
    classes = resolved["workload"]["classes"]
    return float(sum(c["reply_bytes"] for c in classes) / max(len(classes), 1))


def run_metrics(row: dict[str, Any]) -> dict[str, tuple[float | None, list[float | None]]]:
    """A predicted row's metrics, each (value, 95% interval), in a table's units."""
    thr = row["throughput_rps"]
    lat = row["latency_ms"]

    def scaled(d: dict[str, Any], k: float) -> tuple[float | None, list[float | None]]:
        v = d["value"]
        return (None if v is None else v * k,
                [None if x is None else x * k for x in d["ci95"]])

    return {"requests_per_s": scaled(thr, 1.0),
            "kbytes_per_s": scaled(row["transfer_kbytes_per_s"], 1.0),
            "latency_p50_ms": scaled(lat["p50"], 1.0), "latency_p90_ms": scaled(lat["p90"], 1.0),
            "latency_p99_ms": scaled(lat["p99"], 1.0), "latency_p100_ms": scaled(lat["max"], 1.0)}


def _run_cell(args: tuple[Experiment, Cell, ParameterSet, str, int]) -> tuple[Cell, Any]:
    exp, cell, params, mode, rep = args
    resolved = cell_scenario(exp, cell, params, mode)
    if mode == "fit":
        res = run_replication(to_model(resolved), SEED, rep)
        thr = res.throughput_per_ns * 1e9
        return cell, {"requests_per_s": thr,
                      "kbytes_per_s": thr * reply_bytes(resolved) / 1024.0,
                      "latency_p50_ms": res.quantiles_ns["p50"] / 1e6,
                      "latency_p90_ms": res.quantiles_ns["p90"] / 1e6,
                      "latency_p99_ms": res.quantiles_ns["p99"] / 1e6,
                      "latency_p100_ms": res.max_ns / 1e6}
    return cell, run_point(resolved, RunOptions(seed=SEED))


def run_jobs(exp: Experiment, jobs: list[tuple[Cell, ParameterSet]], mode: str = "predict",
             pool: ProcessPoolExecutor | None = None, rep: int = 0) -> list[Any]:
    """Metrics (``fit``: of replication ``rep``, 0 in a fit) or full result rows
    (``predict``), one per (cell, parameters)."""
    args = [(exp, c, p, mode, rep) for c, p in jobs]
    if pool is None:
        out = list(map(_run_cell, args))
    else:
        out = list(pool.map(_run_cell, args, chunksize=max(1, len(args) // 32)))
    return [r for _, r in out]


def predict(exp: Experiment, params: ParameterSet | dict[Cell, ParameterSet],
            cells: Iterable[Cell], mode: str = "predict",
            pool: ProcessPoolExecutor | None = None) -> dict[Cell, Any]:
    """Metrics (``fit``) or full result rows (``predict``) for ``cells``.

    ``params`` may be one set for every cell or a set per cell (out-of-sample folds).
    """
    cells = list(cells)
    jobs = [(c, params[c] if isinstance(params, dict) else params) for c in cells]
    return dict(zip(cells, run_jobs(exp, jobs, mode, pool), strict=True))
