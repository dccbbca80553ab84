"""Calibration: fit the free layer parameters to a measured table, in and out of sample.

The fit minimises the squared log ratio of predicted to measured values over the
training points (a cell's throughput, or for a table of metrics, e.g. HTTP's, its
requests per second and median latency), by scipy's trust-region least squares in log-
parameter space within each parameter's bounds. Predictions come from the simulator
itself, one short replication per cell with common random numbers. The Jacobian is taken
by finite differences, and a parameter's column re-simulates only the cells whose model
uses that parameter (known from composing them), which is what makes a fit of ~20
parameters over 70 cells affordable.

The objective has local minima: a bottleneck moves from core to core as parameters move,
and each short simulated run has its own kinks. So the in-sample fit starts from the priors
and from ``starts - 1`` further points drawn around them (uniform within a factor of e
either way in log space, within bounds, from a fixed seed, so a refit is reproducible),
and keeps the best.

A fit's replication has noise of its own, which the fit cannot tell from the model's
error, and with common random numbers it is the same error in every cell that draws the
same random cost: each write row's AOF fsyncs, one flush per event-loop iteration of up to
100 commands, so 3000 requests draw only ~30 flushes, and their mean (coefficient of
variation 0.5) was 9% off in every write row at once, which the fit took for a slower
disk. So before fitting, :func:`fit_lengths` runs each cell ``PROBE_REPS`` times
(independent streams) at the starting parameters and lengthens the run of any cell whose
fitted metrics vary by more than ``fit.precision`` (relative standard deviation), as the
square of the ratio, up to ``fit.max_requests``; the lengths then stay fixed for the
whole fit and its refits, so the objective stays smooth.

Besides the in-sample fit, :func:`calibrate` refits with each platform left out (its
column is then predicted by parameters fitted without it) and with each test left out
(for a table of metrics: each fitted metric). A parameter that no training cell uses
(e.g. OSv's stack when OSv is left out) stays at its prior: such a prediction is a
prior, not a fit, and the report says so. Standard errors come from the Jacobian at the
solution (s^2 (J'J)^-1, delta method).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from sim import __version__
from sim.composition import Settings, compose
from sim.experiment import Cell, Experiment, Point
from sim.parameters import Parameter, ParameterSet
from sim.predict import predict, run_jobs, run_requests
from sim.workers import pool_size, worker_pool

PROBE_REPS = 8  # independent replications per cell that size its fit run
PROBE_ROUNDS = 3  # times a lengthened cell is probed again at its new length
PROBE_GROWTH = 4  # a lengthened run is at least this many times longer
FIT_PRECISION = 0.02  # default fit.precision: relative sd of one fit run's metrics
FIT_MAX_REQUESTS = 200_000  # default fit.max_requests
START_SPREAD = 1.0  # half-width of the extra starting points around the priors, in log space
START_SEED = 20190101  # seed of the extra starting points (any fixed number: reproducibility)
LOG_STEP = 0.2  # finite-difference step in log-parameter space (~22%): wide enough to see
# across the kinks of a bottleneck (throughput is a max over cores: below its kink a
# parameter of a core that is not the bottleneck has no local effect at all)


class _Tracking(ParameterSet):
    """A parameter set that records which parameters were read."""

    def __init__(self, base: ParameterSet) -> None:
        super().__init__(base.params, base.origin)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> float:
        self.read.add(name)
        return super().__getitem__(name)


def dependencies(exp: Experiment, params: ParameterSet,
                 cells: Iterable[Cell]) -> dict[Cell, set[str]]:
    """The parameters each cell's composed model uses."""
    out = {}
    for cell in cells:
        row, platform, clients = cell
        run = exp.run_of(row)
        tracking = _Tracking(params)
        compose(exp.host, platform, exp.app, exp.workload, run.test, tracking,
                Settings(clients=clients, pipeline=exp.pipeline, aof=exp.aof,
                         keepalive=run.keepalive, page_bytes=exp.page_bytes, log=run.log))
        out[cell] = tracking.read
    return out


@dataclass
class Fit:
    values: dict[str, float]  # fitted free parameters (the rest at their priors)
    stderr: dict[str, float]
    free: list[str]  # parameters that were fitted
    frozen: list[str]  # free in the file, but no training cell uses them: left at prior
    train: list[Point]
    rms_log_residual: float
    evaluations: int
    seconds: float
    starts: int = 1  # starting points tried (the best is kept)
    best_start: int = 0  # which of them gave this fit (0: the priors)


@dataclass
class Calibration:
    experiment: str
    in_sample: Fit
    leave_one_platform_out: dict[str, Fit] = field(default_factory=dict)
    leave_one_test_out: dict[str, Fit] = field(default_factory=dict)
    fit_lengths: dict[Cell, int] = field(default_factory=dict)  # lengthened fit runs
    imprecise: dict[Cell, str] = field(default_factory=dict)  # fit runs noisier than asked


def fit(exp: Experiment, base: ParameterSet, train: list[Point], measured: dict[Point, float],
        deps: dict[Cell, set[str]], pool: ProcessPoolExecutor | None,
        start: dict[str, float] | None = None, max_iterations: int = 30,
        progress: Callable[[str], None] | None = None) -> Fit:
    t0 = time.perf_counter()
    cells = list(dict.fromkeys(c for c, _ in train))  # each run once, whatever it gives
    used = set().union(*(deps[c] for c in cells))
    free = [n for n in base.free_names if n in used]
    in_experiment = set().union(*deps.values())
    frozen = [n for n in base.free_names if n not in used and n in in_experiment]
    specs: list[Parameter] = [base.params[n] for n in free]
    lo = np.log([max(p.bounds[0], 1e-9) for p in specs])
    hi = np.log([p.bounds[1] for p in specs])
    x0 = np.log([max((start or {}).get(p.name, p.value), 1e-9) for p in specs])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    y = np.log([measured[pt] for pt in train])
    counter = {"evals": 0}
    cache: dict[bytes, np.ndarray] = {}

    def params_at(x: np.ndarray) -> ParameterSet:
        return base.with_values({n: float(math.exp(v)) for n, v in zip(free, x, strict=True)})

    def logs(pred: dict[Cell, dict[str, float]], points: list[Point]) -> np.ndarray:
        return np.log([max(pred[c][m], 1e-9) for c, m in points])

    def residuals(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in cache:
            pred = predict(exp, params_at(x), cells, "fit", pool)
            counter["evals"] += 1
            cache[key] = logs(pred, train) - y
            if progress:
                rms = float(np.sqrt(np.mean(cache[key] ** 2)))
                progress(f"evaluation {counter['evals']}: rms log error {rms:.4f}")
        return cache[key]

    def jacobian(x: np.ndarray) -> np.ndarray:
        """Forward differences; column j re-simulates only the cells that use parameter j."""
        r0 = residuals(x)
        steps = np.where(x + LOG_STEP <= hi, LOG_STEP, -LOG_STEP)
        where: list[tuple[int, Cell]] = []  # (column, cell) of each job
        jobs: list[tuple[Cell, ParameterSet]] = []
        for j, name in enumerate(free):
            xs = x.copy()
            xs[j] += steps[j]
            ps = params_at(xs)
            for c in cells:
                if name in deps[c]:
                    where.append((j, c))
                    jobs.append((c, ps))
        results = run_jobs(exp, jobs, "fit", pool)  # one batch: all columns in parallel
        counter["evals"] += 1
        by_job = dict(zip(where, results, strict=True))
        jac = np.zeros((len(train), len(free)))
        for i, (c, m) in enumerate(train):
            for j in range(len(free)):
                got = by_job.get((j, c))
                if got is not None:
                    jac[i, j] = (math.log(max(got[m], 1e-9)) - y[i] - r0[i]) / steps[j]
        return jac

    sol = least_squares(residuals, x0, jac=jacobian, bounds=(lo, hi), method="trf",
                        x_scale=1.0, max_nfev=max_iterations, xtol=1e-4, ftol=1e-6)
    r = sol.fun
    dof = max(1, len(train) - len(free))
    s2 = float(r @ r) / dof
    try:
        cov = np.linalg.pinv(sol.jac.T @ sol.jac) * s2
        se_log = np.sqrt(np.maximum(np.diag(cov), 0.0))
    except np.linalg.LinAlgError:
        se_log = np.full(len(free), math.nan)
    values = {n: float(math.exp(v)) for n, v in zip(free, sol.x, strict=True)}
    stderr = {n: float(values[n] * se) for n, se in zip(free, se_log, strict=True)}
    return Fit(values, stderr, free, frozen, list(train), float(np.sqrt(np.mean(r**2))),
               counter["evals"], time.perf_counter() - t0)


@dataclass
class FitLengths:
    """What :func:`fit_lengths` chose: the lengthened runs, and the cells it could not make
    as precise as asked (each with why), which the calibration reports."""

    lengths: dict[Cell, int]
    imprecise: dict[Cell, str]
    precision: float  # the relative sd asked for (fit.precision)


def fit_lengths(exp: Experiment, base: ParameterSet, points: list[Point],
                pool: ProcessPoolExecutor | None) -> FitLengths:
    """Requests of each cell's fit run that its usual length leaves too noisy.

    Each cell runs ``PROBE_REPS`` replications of its usual fit length
    (:func:`sim.predict.run_requests`) at ``base``; where the relative standard deviation
    ``s`` of one of its fitted metrics exceeds ``fit.precision``, the run is lengthened to
    ``length * (s / precision)^2`` (sampling noise falls as the square root of the length),
    and at least ``PROBE_GROWTH`` times (so that the noise should halve, which eight probes
    can see), rounded up to a thousand, at most ``fit.max_requests``, and probed again at
    that length, up to ``PROBE_ROUNDS`` times. A cell whose noise does not fall at all
    (its runs settle into different regimes, not sampling noise) keeps its previous
    length; it and a cell still noisier than asked at ``fit.max_requests`` are reported,
    not hidden.
    """
    plain = replace(exp, fit_lengths={})
    precision = float(exp.fit.get("precision", FIT_PRECISION))
    most = int(exp.fit.get("max_requests", FIT_MAX_REQUESTS))
    cells = list(dict.fromkeys(c for c, _ in points))
    length = {c: run_requests(plain, c, "fit") for c in cells}
    noise = _probe_noise(plain, base, points, cells, pool)
    lengths: dict[Cell, int] = {}
    imprecise: dict[Cell, str] = {}
    todo = [c for c in cells if noise[c] > precision]
    for _ in range(PROBE_ROUNDS):
        trial = {c: _longer(length[c], noise[c], precision, most) for c in todo}
        grow = [c for c in todo if trial[c] > length[c]]
        if not grow:
            break
        new = _probe_noise(replace(plain, fit_lengths={c: trial[c] for c in grow}), base,
                           points, grow, pool)
        todo = []
        for c in grow:
            if math.isfinite(noise[c]) and new[c] >= noise[c]:
                imprecise[c] = (f"{noise[c]:.1%} at {length[c]:,} requests and {new[c]:.1%} "
                                f"at {trial[c]:,}: no less noisy, so its runs differ by more "
                                f"than sampling noise; kept at {length[c]:,}")
                continue
            length[c] = lengths[c] = trial[c]
            noise[c] = new[c]
            if noise[c] > precision:
                todo.append(c)
    for c in todo:
        imprecise.setdefault(c, f"{noise[c]:.1%} at {length[c]:,} requests")
    return FitLengths(lengths, imprecise, precision)


def _longer(length: int, noise: float, precision: float, most: int) -> int:
    """The run length that ``noise`` at ``length`` asks for: never shorter, at most ``most``."""
    if not math.isfinite(noise):
        return max(length, most)
    need = max(length * (noise / precision) ** 2, PROBE_GROWTH * length)
    return max(length, min(most, math.ceil(need / 1000.0) * 1000))


def _probe_noise(exp: Experiment, base: ParameterSet, points: list[Point], cells: list[Cell],
                 pool: ProcessPoolExecutor | None) -> dict[Cell, float]:
    """Each cell's largest relative standard deviation, over ``PROBE_REPS`` independent
    replications, of the metrics the fit takes from it (inf where a run gave none)."""
    jobs = [(c, base) for c in cells]
    runs = [run_jobs(exp, jobs, "fit", pool, rep=k) for k in range(PROBE_REPS)]
    noise: dict[Cell, float] = {}
    for i, cell in enumerate(cells):
        worst = 0.0
        for c, m in points:
            if c == cell:
                xs = np.array([r[i][m] for r in runs], dtype=float)
                ok = bool(np.all(np.isfinite(xs)) and xs.mean() > 0)
                worst = max(worst, float(xs.std(ddof=1) / xs.mean()) if ok else math.inf)
        noise[cell] = worst
    return noise


def starting_points(base: ParameterSet, starts: int) -> list[dict[str, float] | None]:
    """The priors (None) and ``starts - 1`` points drawn around them, the same every time."""
    rng = np.random.default_rng(START_SEED)
    points: list[dict[str, float] | None] = [None]
    for _ in range(starts - 1):
        point = {}
        for name in base.free_names:
            p = base.params[name]
            lo, hi = math.log(max(p.bounds[0], 1e-9)), math.log(p.bounds[1])
            x = math.log(max(p.value, 1e-9)) + rng.uniform(-START_SPREAD, START_SPREAD)
            point[name] = math.exp(min(max(x, lo), hi))
        points.append(point)
    return points


def multistart_fit(exp: Experiment, base: ParameterSet, train: list[Point],
                   measured: dict[Point, float], deps: dict[Cell, set[str]],
                   pool: ProcessPoolExecutor | None, starts: int = 1,
                   progress: Callable[[str], None] | None = None) -> Fit:
    """The best of :func:`fit` from each of :func:`starting_points` (least rms log error)."""
    say = progress or (lambda _m: None)
    best: Fit | None = None
    t0 = time.perf_counter()
    evaluations = 0
    for k, start in enumerate(starting_points(base, starts)):
        if starts > 1:
            say(f"start {k + 1} of {starts}: {'the priors' if start is None else 'drawn'}")
        f = fit(exp, base, train, measured, deps, pool, start=start, progress=progress)
        evaluations += f.evaluations
        if starts > 1:
            say(f"start {k + 1}: rms log error {f.rms_log_residual:.4f}")
        if best is None or f.rms_log_residual < best.rms_log_residual:
            f.best_start = k
            best = f
    assert best is not None
    best.starts, best.evaluations = starts, evaluations
    best.seconds = time.perf_counter() - t0
    return best


def calibrate(exp: Experiment, base: ParameterSet, workers: int = 0, folds: bool = True,
              progress: Callable[[str], None] | None = None, starts: int = 1) -> Calibration:
    measured = exp.measured_points()
    points = exp.fit_points()
    deps = dependencies(exp, base, dict.fromkeys(c for c, _ in points))
    say = progress or (lambda _m: None)
    with worker_pool(pool_size(workers, len(points))) as pool:
        chosen = fit_lengths(exp, base, points, pool)
        lengths = chosen.lengths
        if lengths:
            say(f"fit runs: {len(lengths)} of {len(set(c for c, _ in points))} cells "
                f"lengthened to {min(lengths.values()):,}-{max(lengths.values()):,} requests "
                f"for a relative sd of {chosen.precision:.0%}")
        for (test, platform, clients), why in chosen.imprecise.items():
            say(f"fit run of {test} on {platform} -c {clients} stays imprecise: {why}")
        exp = replace(exp, fit_lengths=lengths)
        say(f"in-sample fit: at most {len(base.free_names)} free parameters, "
            f"{len(points)} data points")
        full = multistart_fit(exp, base, points, measured, deps, pool, starts, progress=say)
        cal = Calibration(exp.name, full, fit_lengths=lengths, imprecise=chosen.imprecise)
        if folds:
            for p in exp.platforms:
                if p in exp.unreliable:
                    continue
                say(f"leave out platform {p}")
                train = [pt for pt in points if pt[0][1] != p]
                cal.leave_one_platform_out[p] = fit(exp, base, train, measured, deps, pool,
                                                    start=full.values, max_iterations=6)
            for t in dict.fromkeys(exp.label(pt) for pt in points):
                say(f"leave out {'metric' if exp.by_metric else 'test'} {t}")
                train = [pt for pt in points if exp.label(pt) != t]
                cal.leave_one_test_out[t] = fit(exp, base, train, measured, deps, pool,
                                                start=full.values, max_iterations=6)
    return cal


def fit_length_key(cell: Cell) -> str:
    """A cell's key in a calibration file: ``"TEST PLATFORM -c CLIENTS"`` (the test may
    hold spaces; the platform does not)."""
    test, platform, clients = cell
    return f"{test} {platform} -c {clients}"


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def write_calibration(cal: Calibration, base: ParameterSet, path: Path, data_points: int,
                      builds_on: str | None = None) -> None:
    """Write the fit, its uncertainty and every fold's values as TOML."""
    f = cal.in_sample
    lines = [
        "# Written by `uksim calibrate`: fitted values of the free layer parameters",
        "# (models/parameters.toml), with standard errors, and the refits used for the",
        "# out-of-sample report. Do not edit by hand: run `uksim calibrate` again.",
        "",
        "[meta]",
        f"experiment = {_toml_value(cal.experiment)}",
        f"uksim_version = {_toml_value(__version__)}",
        f"date = {_toml_value(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d'))}",
        f"data_points = {data_points}",
        f"free_parameters = {len(f.free)}",
        f"rms_log_residual = {f.rms_log_residual!r}",
        f"evaluations = {f.evaluations}",
        f"seconds = {round(f.seconds, 1)!r}",
        f"starts = {f.starts}",
        f"best_start = {f.best_start}",
        *([f"builds_on = {_toml_value(builds_on)}"] if builds_on else []),
        "",
    ]
    for name in f.free:
        p = base.params[name]
        lines += [f'[fitted."{name}"]', f"value = {f.values[name]!r}",
                  f"stderr = {_toml_value(f.stderr[name])}", f"unit = {_toml_value(p.unit)}",
                  f"prior = {p.value!r}", ""]
    for kind, folds in (("leave_one_platform_out", cal.leave_one_platform_out),
                        ("leave_one_test_out", cal.leave_one_test_out)):
        for left_out, fold in folds.items():
            lines.append(f'[{kind}."{left_out}"]')
            lines.append(f"frozen_at_prior = {_toml_value(fold.frozen)}")
            lines.append(f"rms_log_residual = {fold.rms_log_residual!r}")
            for name in fold.free:
                lines.append(f'"{name}" = {fold.values[name]!r}')
            lines.append("")
    by_cell: tuple[tuple[str, str, dict[Cell, Any]], ...] = (
        ("fit_lengths", "requests of the fit runs that fit.requests left noisier than "
         "fit.precision", cal.fit_lengths),
        ("imprecise_fit_runs", "fit runs that stay noisier than fit.precision, and why",
         cal.imprecise))
    for table, comment, entries in by_cell:
        if entries:
            lines += [f"# {comment}", f"[{table}]"]
            lines += [f"{_toml_value(fit_length_key(c))} = {_toml_value(v)}"
                      for c, v in entries.items()]
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
