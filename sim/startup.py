"""Start-up times: from starting a VM image to the first answer of its service (Table 4).

A start-up is a sequence of phases, each a sum of random durations: the VMM (the QEMU
process), the firmware (SeaBIOS), the boot loader, loading the image (its size over the
rate of the path that reads it, from the host's page cache or from the SSD), the kernel,
device probing, the init system (absent on unikernels), network configuration (DHCP,
with each client's documented waits: ISC dhclient's random start delay, dhcpcd's ARP
probing) and the application's own start (interpreter, imports, server, database
connection with retries, the first request). The numbers are data, in
``models/startup/``: ``phases.toml`` (every duration, size and rate with its unit,
distribution and source), ``platforms.toml`` (each platform's phases) and ``apps.toml``
(each service's phases). A phase crossed by several platforms is one parameter.

The prediction of a cell (app, platform) is the mean of ``samples`` Monte-Carlo start-ups
with its 95% confidence interval; every term draws from its own stream
``(seed, 0, "startup/<platform>/<app>/<phase>/<term>")``, so the same seed gives the same
numbers bit for bit. Because phases add, the mean start-up is the sum of the terms' means:
the fit uses that exact sum. At most two durations are free (``free = true``); they are
fitted to the measured cells by least squares on relative errors (scipy), with standard
errors from the Jacobian. Out of sample, every platform (leave one platform out) and every
app (leave one test out) is left out in turn, the free parameters are refitted on the
remaining cells and the left-out cells predicted; a free parameter that no remaining cell
uses stays at its prior in that fold, and the report says so.
"""

from __future__ import annotations

import csv
import math
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from sim.errors import ConfigError
from sim.randomness import stream
from sim.resources import models_dir, validation_dir

EXPERIMENT = "jaworski2019/table4"
REFERENCE = Path("reference") / "jaworski2019" / "table4_startup_s.csv"
FILES = ("phases.toml", "platforms.toml", "apps.toml")
MISSING_REASON = {
    ("vote", "osv_kvm"): "no measurement: the OSv build of vote failed in the study",
}

# unit -> (kind, factor to the internal unit: seconds, MB, MB/s)
UNITS: dict[str, tuple[str, float]] = {
    "s": ("duration", 1.0), "ms": ("duration", 1e-3),
    "MB": ("size", 1.0), "MB/s": ("rate", 1.0),
}
DIST_KEYS = {
    "gamma": {"value", "cv"},
    "deterministic": {"value"},
    "uniform": {"low", "high"},
    "uniform_int": {"low", "high"},
    "retries": {"p_fail", "interval"},
}
COMMON_KEYS = {"unit", "dist", "description", "source", "free", "bounds"}
_REF = r"@([A-Za-z_][\w{}]*\.[A-Za-z_][\w{}]*)"
_SCALED = re.compile(rf"^\s*(?:([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*\*\s*)?{_REF}\s*$")
_LOAD = re.compile(rf"^\s*{_REF}\s*/\s*{_REF}\s*$")

Cell = tuple[str, str]  # (app, platform)


@dataclass(frozen=True)
class Param:
    """One entry of phases.toml, converted to seconds, MB or MB/s."""

    name: str
    kind: str  # duration, size, rate
    dist: str
    value: float  # the mean (in the internal unit); for uniform/retries the derived mean
    unit: str  # the file's unit
    cv: float = 0.0
    low: float = 0.0
    high: float = 0.0
    p_fail: float = 0.0
    interval: float = 0.0
    free: bool = False
    bounds: tuple[float, float] | None = None
    source: str = ""

    @property
    def scale(self) -> float:
        """File unit per internal unit (1000 for ms)."""
        return 1.0 / UNITS[self.unit][1]


@dataclass(frozen=True)
class Term:
    """A duration (``k * @param``) or an image load (``@size / @rate``)."""

    param: str
    k: float = 1.0
    rate: str | None = None  # set for a load term: param is the size

    @property
    def names(self) -> tuple[str, ...]:
        return (self.param,) if self.rate is None else (self.param, self.rate)


Phases = list[tuple[str, list[Term]]]


@dataclass(frozen=True)
class StartupModel:
    params: dict[str, Param]
    platforms: dict[str, dict[str, Any]]  # name -> {description, fork, phases: raw terms}
    apps: dict[str, dict[str, Any]]  # name -> {description, phases, no_fork}
    page_cache: str
    directory: Path

    @property
    def free_names(self) -> list[str]:
        return [n for n, p in self.params.items() if p.free]

    def phases(self, platform: str, app: str) -> Phases:
        """The phases of one cell, in order, with ``{app}`` resolved."""
        plat = self.platforms[platform]
        spec = self.apps[app]
        app_phases = dict(spec["phases"])
        if not plat["fork"]:
            app_phases.update(spec.get("no_fork", {}))
        out: Phases = []
        for name, terms in [*plat["phases"].items(), *app_phases.items()]:
            out.append((name, [_resolve(t, app) for t in terms]))
        return out

    def uses(self, platform: str, app: str) -> set[str]:
        return {n for _, terms in self.phases(platform, app) for t in terms for n in t.names}


def _resolve(t: Term, app: str) -> Term:
    return Term(t.param.replace("{app}", app), t.k,
                t.rate.replace("{app}", app) if t.rate else None)


# --- loading and checking the model files ------------------------------------------------

def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None


def _number(src: str, key: str, v: Any, minimum: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ConfigError(src, key, f"expected a number, got {v!r}")
    if v < minimum:
        raise ConfigError(src, key, f"must be >= {minimum:g}, got {v!r}")
    return float(v)


def _param(src: str, name: str, raw: Any) -> Param:
    if not isinstance(raw, dict):
        raise ConfigError(src, name, "expected a table with unit, dist, value and source")
    unit = raw.get("unit")
    if unit is None:
        raise ConfigError(src, f"{name}.unit", f"missing unit (one of {', '.join(UNITS)})")
    if unit not in UNITS:
        raise ConfigError(src, f"{name}.unit", f"unknown unit {unit!r}; allowed: "
                          f"{', '.join(UNITS)}")
    kind, factor = UNITS[unit]
    dist = raw.get("dist")
    if dist not in DIST_KEYS:
        raise ConfigError(src, f"{name}.dist", f"expected one of {', '.join(DIST_KEYS)}, "
                          f"got {dist!r}")
    allowed = COMMON_KEYS | DIST_KEYS[dist]
    for k in raw:
        if k not in allowed:
            raise ConfigError(src, f"{name}.{k}", f"unknown key for dist = {dist!r}; "
                              f"allowed: {', '.join(sorted(allowed))}")
    for k in DIST_KEYS[dist] - {"cv"}:
        if k not in raw:
            raise ConfigError(src, f"{name}.{k}", f"missing (dist = {dist!r} needs "
                              f"{', '.join(sorted(DIST_KEYS[dist]))})")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(src, f"{name}.source", "missing source (a paper, documentation, "
                          "a measured figure, or \"assumption: why\")")
    if kind != "duration" and dist not in ("gamma", "deterministic"):
        raise ConfigError(src, f"{name}.dist", f"a {kind} takes gamma or deterministic")
    cv = _number(src, f"{name}.cv", raw.get("cv", 0.0))
    fields: dict[str, Any] = {"cv": cv}
    if dist in ("gamma", "deterministic"):
        value = _number(src, f"{name}.value", raw["value"]) * factor
        if kind == "rate" and value <= 0:
            raise ConfigError(src, f"{name}.value", "a rate must be positive")
    elif dist in ("uniform", "uniform_int"):
        lo = _number(src, f"{name}.low", raw["low"])
        hi = _number(src, f"{name}.high", raw["high"])
        if hi < lo:
            raise ConfigError(src, f"{name}.high", f"must be >= low ({lo:g})")
        if dist == "uniform_int" and (lo != int(lo) or hi != int(hi)):
            raise ConfigError(src, f"{name}.low", "uniform_int takes whole numbers")
        fields.update(low=lo * factor, high=hi * factor)
        value = (lo + hi) / 2 * factor
    else:  # retries
        p = _number(src, f"{name}.p_fail", raw["p_fail"])
        if p >= 1.0:
            raise ConfigError(src, f"{name}.p_fail", "must be below 1 (else it never connects)")
        interval = _number(src, f"{name}.interval", raw["interval"]) * factor
        fields.update(p_fail=p, interval=interval)
        value = interval * p / (1.0 - p)
    free = raw.get("free", False)
    if not isinstance(free, bool):
        raise ConfigError(src, f"{name}.free", "expected true or false")
    bounds = None
    if free:
        if kind != "duration" or dist not in ("gamma", "deterministic"):
            raise ConfigError(src, f"{name}.free", "only a gamma or deterministic duration "
                              "may be free")
        b = raw.get("bounds")
        if not (isinstance(b, list) and len(b) == 2):
            raise ConfigError(src, f"{name}.bounds", "a free parameter needs bounds = [lo, hi]")
        lo_b, hi_b = (_number(src, f"{name}.bounds", x) * factor for x in b)
        if not lo_b <= value <= hi_b:
            raise ConfigError(src, f"{name}.bounds", "must contain the prior value")
        bounds = (lo_b, hi_b)
    return Param(name, kind, dist, value, unit, free=free, bounds=bounds, source=source,
                 **fields)


def _terms(src: str, key: str, raw: Any) -> list[Term]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(src, key, "expected a non-empty list of terms such as "
                          "\"@qemu.start\" or \"@image.x / @load.y\"")
    out = []
    for i, text in enumerate(raw):
        if not isinstance(text, str):
            raise ConfigError(src, f"{key}[{i}]", f"expected a string, got {text!r}")
        m = _SCALED.match(text)
        if m:
            out.append(Term(m.group(2), float(m.group(1) or 1.0)))
            continue
        m = _LOAD.match(text)
        if m:
            out.append(Term(m.group(1), 1.0, m.group(2)))
            continue
        raise ConfigError(src, f"{key}[{i}]", f"cannot read {text!r}: expected \"@group.name\","
                          " \"k * @group.name\" or \"@image.x / @load.y\"")
    return out


def _phase_table(src: str, key: str, raw: Any) -> dict[str, list[Term]]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(src, key, "expected a table of phase = [terms]")
    return {name: _terms(src, f"{key}.{name}", v) for name, v in raw.items()}


def _entries(src: str, raw: dict[str, Any],
             allowed: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The tables of a platforms or apps file, each checked for unknown keys."""
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(src, name, "expected a table")
        for k in table:
            if k not in allowed:
                raise ConfigError(src, f"{name}.{k}", f"unknown key; allowed: "
                                  f"{', '.join(allowed)}")
    return list(raw.items())


def load_model(directory: Path | None = None) -> StartupModel:
    """Read and check ``phases.toml``, ``platforms.toml`` and ``apps.toml``."""
    d = Path(directory) if directory is not None else models_dir() / "startup"
    ph_src, pl_src, ap_src = (str(d / f) for f in FILES)
    raw = _read(d / FILES[0])
    model_tab = raw.pop("model", {})
    page_cache = model_tab.get("page_cache", "warm") if isinstance(model_tab, dict) else None
    if page_cache not in ("warm", "cold"):
        raise ConfigError(ph_src, "model.page_cache", "expected \"warm\" or \"cold\"")
    params: dict[str, Param] = {}
    for group, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(ph_src, group, "expected [group.name] tables")
        for name, entry in table.items():
            params[f"{group}.{name}"] = _param(ph_src, f"{group}.{name}", entry)
    n_free = sum(p.free for p in params.values())
    if n_free > 2:
        raise ConfigError(ph_src, "free", f"{n_free} free parameters; Table 4 has 7 measured "
                          "cells, so at most 2 may be free")

    apps: dict[str, dict[str, Any]] = {}
    for name, a in _entries(ap_src, _read(d / FILES[2]), ("description", "phases", "no_fork")):
        phases = _phase_table(ap_src, f"{name}.phases", a.get("phases"))
        no_fork = _phase_table(ap_src, f"{name}.no_fork", a["no_fork"]) if "no_fork" in a else {}
        for p in no_fork:
            if p not in phases:
                raise ConfigError(ap_src, f"{name}.no_fork.{p}", f"unknown phase {p!r}; "
                                  f"{name} has {', '.join(phases)}")
        apps[name] = {"description": str(a.get("description", "")), "phases": phases,
                      "no_fork": no_fork}

    platforms: dict[str, dict[str, Any]] = {}
    for name, p in _entries(pl_src, _read(d / FILES[1]), ("description", "fork", "phases")):
        fork = p.get("fork")
        if not isinstance(fork, bool):
            raise ConfigError(pl_src, f"{name}.fork", "expected true or false")
        phases = _phase_table(pl_src, f"{name}.phases", p.get("phases"))
        for ph in phases:
            for app, a in apps.items():
                if ph in a["phases"]:
                    raise ConfigError(pl_src, f"{name}.phases.{ph}", f"phase name also used by "
                                      f"app {app!r} in {ap_src}")
        platforms[name] = {"description": str(p.get("description", "")), "fork": fork,
                           "phases": phases}

    model = StartupModel(params, platforms, apps, page_cache, d)
    # every reference, for every app on every platform, names a parameter of the right kind
    for pname, plat in platforms.items():
        for app in apps:
            for src, where, table in ((pl_src, f"{pname}.phases", plat["phases"]),
                                      (ap_src, f"{app}.phases", apps[app]["phases"]),
                                      (ap_src, f"{app}.no_fork", apps[app]["no_fork"])):
                for ph, terms in table.items():
                    for t in terms:
                        _check_term(model, src, f"{where}.{ph}", _resolve(t, app))
    return model


def _check_term(model: StartupModel, src: str, key: str, t: Term) -> None:
    for name in t.names:
        if name not in model.params:
            raise ConfigError(src, key, f"unknown parameter @{name} (not in phases.toml)")
    kinds = tuple(model.params[n].kind for n in t.names)
    want = ("duration",) if t.rate is None else ("size", "rate")
    if kinds != want:
        raise ConfigError(src, key, f"@{' / @'.join(t.names)} has kinds {'/'.join(kinds)}, "
                          f"expected {'/'.join(want)}")


# --- means, Monte Carlo ------------------------------------------------------------------

def _mean_of(p: Param, values: Mapping[str, float]) -> float:
    return float(values.get(p.name, p.value))


def term_mean(model: StartupModel, t: Term, values: Mapping[str, float]) -> float:
    if t.rate is None:
        return t.k * _mean_of(model.params[t.param], values)
    size = _mean_of(model.params[t.param], values)
    mean = size / _mean_of(model.params[t.rate], values)
    if model.page_cache == "cold":
        mean += size / model.params["disk.read"].value
    return mean


def mean_startup(model: StartupModel, platform: str, app: str,
                 values: Mapping[str, float] | None = None) -> float:
    """The exact mean start-up time (s): the sum of every term's mean."""
    v = values or {}
    return math.fsum(term_mean(model, t, v) for _, terms in model.phases(platform, app)
                     for t in terms)


def _draw(model: StartupModel, t: Term, values: Mapping[str, float],
          rng: np.random.Generator, n: int) -> np.ndarray:
    if t.rate is not None:
        p = model.params[t.rate]
        mean, cv = term_mean(model, t, values), p.cv
    else:
        p = model.params[t.param]
        mean, cv = t.k * _mean_of(p, values), p.cv
        if p.dist == "uniform":
            return t.k * rng.uniform(p.low, p.high, n)
        if p.dist == "uniform_int":
            return t.k * rng.integers(int(p.low), int(p.high) + 1, n).astype(float)
        if p.dist == "retries":
            if p.p_fail == 0.0:
                return np.zeros(n)
            return t.k * p.interval * (rng.geometric(1.0 - p.p_fail, n) - 1).astype(float)
    if p.dist == "deterministic" or cv == 0.0 or mean == 0.0:
        return np.full(n, mean)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, mean / shape, n)


def simulate(model: StartupModel, platform: str, app: str, values: Mapping[str, float],
             seed: int, samples: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``samples`` start-ups of one cell: the totals and each phase's durations."""
    phases: dict[str, np.ndarray] = {}
    for name, terms in model.phases(platform, app):
        acc = np.zeros(samples)
        for j, t in enumerate(terms):
            rng = stream(seed, 0, f"startup/{platform}/{app}/{name}/{j}")
            acc += _draw(model, t, values, rng, samples)
        phases[name] = acc
    total = np.sum(np.vstack(list(phases.values())), axis=0)
    return total, phases


def predict_cell(model: StartupModel, platform: str, app: str, values: Mapping[str, float],
                 seed: int, samples: int) -> dict[str, Any]:
    total, phases = simulate(model, platform, app, values, seed, samples)
    mean = float(total.mean())
    half = 1.96 * float(total.std(ddof=1)) / math.sqrt(samples) if samples > 1 else 0.0
    lo, hi = np.quantile(total, [0.025, 0.975])
    return {"predicted": mean, "ci95": [mean - half, mean + half],
            "range95": [float(lo), float(hi)],
            "phases": {k: float(v.mean()) for k, v in phases.items()}}


# --- the fit -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    values: dict[str, float]  # fitted free parameters (internal unit)
    stderr: dict[str, float | None]
    frozen: list[str]  # free parameters no training cell uses: left at their prior
    rms_rel_residual: float


def fit(model: StartupModel, measured: Mapping[Cell, float],
        train: Iterable[Cell] | None = None) -> Fit:
    """Least squares on relative errors over the training cells (default: all measured)."""
    cells = [c for c in (train if train is not None else measured) if c in measured]
    used = set().union(*(model.uses(p, a) for a, p in cells)) if cells else set()
    names = [n for n in model.free_names if n in used]
    frozen = [n for n in model.free_names if n not in used]
    meas = np.array([measured[c] for c in cells])

    def resid(x: np.ndarray) -> np.ndarray:
        v = dict(zip(names, x, strict=True))
        return np.array([mean_startup(model, p, a, v) for a, p in cells]) / meas - 1.0

    if not names:
        r = resid(np.array([]))
        return Fit({}, {}, frozen, float(np.sqrt(np.mean(r * r))) if len(r) else 0.0)
    x0 = np.array([model.params[n].value for n in names])
    lo = np.array([model.params[n].bounds[0] for n in names])  # type: ignore[index]
    hi = np.array([model.params[n].bounds[1] for n in names])  # type: ignore[index]
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", xtol=1e-12, ftol=1e-12,
                        gtol=1e-12)
    r = sol.fun
    dof = len(cells) - len(names)
    stderr: dict[str, float | None] = {n: None for n in names}
    jtj = sol.jac.T @ sol.jac
    if dof > 0 and np.linalg.matrix_rank(jtj) == len(names):
        cov = np.linalg.inv(jtj) * float(r @ r) / dof
        stderr = {n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)}
    return Fit(dict(zip(names, map(float, sol.x), strict=True)), stderr, frozen,
               float(np.sqrt(np.mean(r * r))))


# --- the reference and the report ----------------------------------------------------------

def read_reference(path: Path | None = None) -> tuple[list[Cell], dict[Cell, float]]:
    """Table 4 as cells (app, platform), with the measured seconds where there is one."""
    p = path or validation_dir() / REFERENCE
    try:
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise ConfigError(str(p), "", "reference data not found") from None
    if not rows or "platform" not in rows[0]:
        raise ConfigError(str(p), "platform", "expected a column `platform`")
    apps = [k for k in rows[0] if k != "platform"]
    cells: list[Cell] = []
    measured: dict[Cell, float] = {}
    for app in apps:
        for row in rows:
            c = (app, row["platform"])
            cells.append(c)
            text = (row.get(app) or "").strip()
            if text:
                try:
                    measured[c] = float(text)
                except ValueError:
                    raise ConfigError(str(p), f"{row['platform']}.{app}",
                                      f"not a number: {text!r}") from None
    return cells, measured


def _err(pred: float | None, meas: float | None) -> float | None:
    if pred is None or meas is None:
        return None
    return 100.0 * (pred - meas) / meas


def _mape(errors: Iterable[float | None]) -> float | None:
    xs = [abs(e) for e in errors if e is not None]
    return sum(xs) / len(xs) if xs else None


def startup_report(seed: int = 1, samples: int = 20000, model_dir: Path | None = None,
                   reference: Path | None = None) -> dict[str, Any]:
    """Predict Table 4 in and out of sample; a JSON-ready report (keys as Table 1's)."""
    t0 = time.perf_counter()
    model = load_model(model_dir)
    ref_path = reference or validation_dir() / REFERENCE
    cells, measured = read_reference(ref_path)
    for app, platform in cells:
        if platform not in model.platforms:
            raise ConfigError(str(model.directory / FILES[1]), platform,
                              "platform of the reference missing from the model")
        if app not in model.apps:
            raise ConfigError(str(model.directory / FILES[2]), app,
                              "application of the reference missing from the model")
    platforms = list(dict.fromkeys(p for _, p in cells))
    apps = list(dict.fromkeys(a for a, _ in cells))

    full = fit(model, measured)
    lopo = {p: fit(model, measured, [c for c in measured if c[1] != p]) for p in platforms}
    loto = {a: fit(model, measured, [c for c in measured if c[0] != a]) for a in apps}

    out_cells = []
    for c in cells:
        app, platform = c
        meas = measured.get(c)
        cell: dict[str, Any] = {"test": app, "platform": platform, "measured": meas}
        cell.update(predict_cell(model, platform, app, full.values, seed, samples))
        cell["error_pct"] = _err(cell["predicted"], meas)
        for key, folds, left in (("leave_one_platform_out", lopo, platform),
                                 ("leave_one_test_out", loto, app)):
            f = folds[left]
            pred = predict_cell(model, platform, app, f.values, seed, samples)["predicted"]
            cell[f"predicted_{key}"] = pred
            cell[f"error_pct_{key}"] = _err(pred, meas)
            cell[f"{key}_priors"] = [n for n in f.frozen if n in model.uses(platform, app)]
        if meas is None:
            cell["note"] = MISSING_REASON.get(c, "no measurement in the reference")
        # predicted first among the keys a reader scans; phases last
        cell["phases"] = cell.pop("phases")
        out_cells.append(cell)

    per_platform = {
        p: {
            "mape_in_sample": _mape(x["error_pct"] for x in out_cells if x["platform"] == p),
            "mape_leave_one_platform_out": _mape(x["error_pct_leave_one_platform_out"]
                                                 for x in out_cells if x["platform"] == p),
            "layers_at_prior_when_left_out": lopo[p].frozen,
        }
        for p in platforms
    }
    return {
        "experiment": EXPERIMENT,
        "description": ("time from image start to the first answer of the service (s), as "
                        "a sum of random phases (models/startup/); mean of "
                        f"{samples} Monte-Carlo start-ups per cell with the 95% interval of "
                        "that mean (range95: 95% of single start-ups)"),
        "metric": "startup_s",
        "reference": ref_path.name,
        "cells": out_cells,
        "mape_in_sample": _mape(x["error_pct"] for x in out_cells),
        "mape_leave_one_platform_out": _mape(x["error_pct_leave_one_platform_out"]
                                             for x in out_cells),
        "mape_leave_one_test_out": _mape(x["error_pct_leave_one_test_out"] for x in out_cells),
        "per_platform": per_platform,
        "per_test": {
            a: {"mape_in_sample": _mape(x["error_pct"] for x in out_cells if x["test"] == a),
                "mape_leave_one_test_out": _mape(x["error_pct_leave_one_test_out"]
                                                 for x in out_cells if x["test"] == a),
                "layers_at_prior_when_left_out": loto[a].frozen}
            for a in apps
        },
        "free_parameters": len(model.free_names),
        "data_points": len(measured),
        "parameters": {
            n: {"value": full.values.get(n, model.params[n].value) * model.params[n].scale,
                "stderr": (None if full.stderr.get(n) is None
                           else full.stderr[n] * model.params[n].scale),  # type: ignore[operator]
                "unit": model.params[n].unit,
                "prior": model.params[n].value * model.params[n].scale}
            for n in model.free_names
        },
        "seed": seed,
        "samples": samples,
        "page_cache": model.page_cache,
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }
