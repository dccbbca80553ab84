"""Experiments: a published (or measured) table and the setup that reproduces it.

An experiment file (``scenarios/<study>/<table>.toml``) names the reference data (under
``validation/``), the host, application and load generator models, the platforms and
tests (the table's columns and rows), the load (``clients``, ``pipeline``), the AOF
switch, and how long to run for a prediction and for a calibration fit.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.resources import scenarios_dir, validation_dir
from sim.scenario import read_toml

Cell = tuple[str, str, int]  # (test, platform, clients)
Point = tuple[Cell, str]  # a data point: a cell's run and one metric of it

# what a run reports that a table may give (sim.predict.run_metrics computes them)
METRICS = ("requests_per_s", "kbytes_per_s", "latency_p50_ms", "latency_p90_ms",
           "latency_p99_ms", "latency_p100_ms")


@dataclass(frozen=True)
class Variant:
    """What a row of an experiment runs when its rows differ in more than the test: the
    workload's test, with its own keep-alive switch (ab with and without ``-k``) and where
    the app's log line goes (``None``: the app's default; ``"syslog"``: as a datagram)."""

    test: str
    keepalive: bool | None = None
    log: str | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    source: str
    reference: Path
    metric: str
    host: str
    app: str
    workload: str
    platforms: tuple[str, ...]
    tests: tuple[str, ...]
    clients: int
    pipeline: int
    aof: bool
    predict: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    loads: tuple[int, ...] = ()  # client counts (default: just ``clients``)
    values: dict[Cell, float] | None = None  # reference values given directly (measured)
    points: dict[Point, float] | None = None  # the same for a table of metrics (measured)
    train_platforms: tuple[str, ...] = ()  # fit only on these (default: every platform)
    train_tests: tuple[str, ...] = ()  # fit only these rows (default: every row)
    labels: dict[str, str] = field(default_factory=dict)  # platform -> name in the data
    spread: dict[Point, tuple[float, float]] = field(default_factory=dict)  # measured q1, q3
    variants: dict[str, Variant] = field(default_factory=dict)  # row -> what it runs
    # tables whose rows are metrics of one run per platform (HTTP: Tables 2 and 3)
    metrics: tuple[str, ...] = ()  # the rows (empty: rows are tests, one metric)
    fit_metrics: tuple[str, ...] = ()  # the rows a calibration fits (default: all rows)
    unreliable: dict[str, str] = field(default_factory=dict)  # platform -> why: reported apart
    keepalive: bool | None = None
    page_bytes: int | None = None  # the static page served (None: the app's own)
    calibration: str = ""  # its calibration file's name (default: the study's)
    builds_on: str = ""  # the calibration whose values it starts from
    free: tuple[str, ...] = ()  # the parameters its calibration fits (default: every free one)
    # requests of a cell's calibration run where ``fit.requests`` would leave it noisier than
    # ``fit.precision`` (set by :func:`sim.calibration.fit_lengths`; others: fit.requests)
    fit_lengths: dict[Cell, int] = field(default_factory=dict)

    @property
    def by_metric(self) -> bool:
        return bool(self.metrics)

    def run_of(self, test: str) -> Variant:
        """What a row runs: the workload test, its keep-alive switch and log destination
        (None: the defaults)."""
        return self.variants.get(test) or Variant(test, self.keepalive)

    def trains_on(self, cell: Cell) -> bool:
        """Whether a calibration fits this cell (its platform and row are training ones)."""
        return ((not self.train_platforms or cell[1] in self.train_platforms)
                and (not self.train_tests or cell[0] in self.train_tests))

    @property
    def fitted_metrics(self) -> tuple[str, ...]:
        """The metrics a calibration fits and the headline errors average."""
        return self.fit_metrics or self.metrics or (self.metric,)

    def label(self, point: Point) -> str:
        """The table's row of a data point: its test, or its metric."""
        return point[1] if self.by_metric else point[0][0]

    def measured_points(self) -> dict[Point, float]:
        """Every reference value, by (cell, metric)."""
        if not self.by_metric:
            return {(c, self.metric): v for c, v in self.measured().items()}
        if self.points is not None:
            return dict(self.points)
        try:
            with self.reference.open(newline="") as f:
                rows = {r.get("metric"): r for r in csv.DictReader(f)}
        except FileNotFoundError:
            raise ConfigError(str(self.reference), "", "reference data not found") from None
        out: dict[Point, float] = {}
        for m in self.metrics:
            if m not in rows:
                raise ConfigError(str(self.reference), m, "no such row (metric)")
            for cell in self.cells:
                v = rows[m].get(cell[1])
                if v:  # an empty cell: not measured (e.g. a build that failed)
                    out[(cell, m)] = float(v)
        return out

    def fit_points(self) -> list[Point]:
        """The points a calibration fits: reliable, on training platforms and rows, fitted
        metrics."""
        return [pt for pt in self.measured_points()
                if pt[1] in self.fitted_metrics and self.trains_on(pt[0])
                and pt[0][1] not in self.unreliable]

    @property
    def cells(self) -> list[Cell]:
        if self.values is not None:
            return list(self.values)
        if self.points is not None:
            return list(dict.fromkeys(c for c, _ in self.points))
        loads = self.loads or (self.clients,)
        return [(t, p, c) for t in self.tests for p in self.platforms for c in loads]

    @property
    def train_cells(self) -> list[Cell]:
        return [c for c in self.cells if self.trains_on(c)]

    def measured(self) -> dict[Cell, float]:
        """The reference values, by (test, platform, clients)."""
        if self.values is not None:
            return dict(self.values)
        try:
            with self.reference.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            raise ConfigError(str(self.reference), "", "reference data not found") from None
        out: dict[Cell, float] = {}
        for row in rows:
            test = row.get("test")
            for p in self.platforms:
                if test in self.tests and row.get(p):
                    out[(test, p, self.clients)] = float(row[p])
        missing = [c for c in self.cells if c not in out]
        if missing:
            raise ConfigError(str(self.reference), "", f"no value for {missing[:3]}")
        return out


_KEYS = {"name", "description", "reference", "metric", "host", "app", "workload", "platforms",
         "tests", "clients", "pipeline", "aof"}
_OPTIONAL = {"metrics", "fit_metrics", "unreliable", "keepalive", "calibration", "builds_on",
             "free"}


def experiment_path(study: str, table: str) -> Path:
    return scenarios_dir() / study / f"table{table}.toml"


def load_experiment(path: Path) -> Experiment:
    src = str(path)
    raw = read_toml(path)
    e = raw.get("experiment")
    if not isinstance(e, dict):
        raise ConfigError(src, "experiment", "missing table")
    for k in e:
        if k not in _KEYS | _OPTIONAL:
            allowed = ", ".join(sorted(_KEYS | _OPTIONAL))
            raise ConfigError(src, f"experiment.{k}", f"unknown key; allowed: {allowed}")
    for k in _KEYS - {"description"}:
        if k not in e:
            raise ConfigError(src, f"experiment.{k}", "missing")
    return Experiment(
        name=e["name"], description=e.get("description", ""), source=src,
        reference=validation_dir() / e["reference"], metric=e["metric"], host=e["host"],
        app=e["app"], workload=e["workload"], platforms=tuple(e["platforms"]),
        tests=tuple(e["tests"]), clients=int(e["clients"]), pipeline=int(e["pipeline"]),
        aof=bool(e["aof"]), predict=_run_length(raw, "predict", src),
        fit=_run_length(raw, "fit", src),
        metrics=_names(e, "metrics", src, METRICS),
        fit_metrics=_names(e, "fit_metrics", src, METRICS),
        unreliable=dict(e.get("unreliable", {})),
        keepalive=e.get("keepalive"), calibration=str(e.get("calibration", "")),
        builds_on=str(e.get("builds_on", "")), free=_names(e, "free", src),
    )


# how long to run: for a prediction (replications until precise) and for a calibration fit
# (one replication per cell, lengthened where it is noisier than ``precision``)
_RUN_KEYS = {"predict": {"requests": int, "reps": int, "max_reps": int, "precision": float},
             "fit": {"requests": int, "precision": float, "max_requests": int}}


def _run_length(raw: dict[str, Any], table: str, src: str) -> dict[str, Any]:
    t = raw.get(table, {})
    if not isinstance(t, dict):
        raise ConfigError(src, table, "expected a table")
    kinds = _RUN_KEYS[table]
    for k, v in t.items():
        if k not in kinds:
            raise ConfigError(src, f"{table}.{k}",
                              f"unknown key; allowed: {', '.join(sorted(kinds))}")
        want = kinds[k]
        ok = (isinstance(v, int) if want is int else isinstance(v, int | float)) \
            and not isinstance(v, bool) and v > 0 and math.isfinite(v)
        if not ok:
            what = "a positive whole number" if want is int else "a positive number"
            raise ConfigError(src, f"{table}.{k}", f"expected {what}, got {v!r}")
    if table == "fit" and t.get("max_requests", math.inf) < t.get("requests", 0):
        raise ConfigError(src, "fit.max_requests",
                          f"{t['max_requests']} is less than fit.requests ({t['requests']})")
    return dict(t)


def _names(e: dict[str, Any], key: str, src: str, allowed: tuple[str, ...] = ()
           ) -> tuple[str, ...]:
    v = e.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(src, f"experiment.{key}", "expected a list of names")
    bad = [x for x in v if allowed and x not in allowed]
    if bad:
        raise ConfigError(src, f"experiment.{key}",
                          f"unknown {bad[0]!r}; known: {', '.join(allowed)}")
    return tuple(v)
