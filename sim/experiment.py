"""Experiments: a published (or measured) table and the setup that reproduces it.

An experiment file (``scenarios/<study>/<table>.toml``) names the reference data (under
``validation/``), the host, application and load generator models, the platforms and
tests (the table's columns and rows), the load (``clients``, ``pipeline``), the AOF
switch, and how long to run for a prediction and for a calibration fit.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.resources import scenarios_dir, validation_dir
from sim.scenario import read_toml

Cell = tuple[str, str, int]  # (test, platform, clients)


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
    train_platforms: tuple[str, ...] = ()  # fit only on these (default: every platform)
    labels: dict[str, str] = field(default_factory=dict)  # platform -> name in the data
    spread: dict[Cell, tuple[float, float]] = field(default_factory=dict)  # measured q1, q3

    @property
    def cells(self) -> list[Cell]:
        if self.values is not None:
            return list(self.values)
        loads = self.loads or (self.clients,)
        return [(t, p, c) for t in self.tests for p in self.platforms for c in loads]

    @property
    def train_cells(self) -> list[Cell]:
        if not self.train_platforms:
            return self.cells
        return [c for c in self.cells if c[1] in self.train_platforms]

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


def experiment_path(study: str, table: str) -> Path:
    return scenarios_dir() / study / f"table{table}.toml"


def load_experiment(path: Path) -> Experiment:
    src = str(path)
    raw = read_toml(path)
    e = raw.get("experiment")
    if not isinstance(e, dict):
        raise ConfigError(src, "experiment", "missing table")
    for k in e:
        if k not in _KEYS:
            allowed = ", ".join(sorted(_KEYS))
            raise ConfigError(src, f"experiment.{k}", f"unknown key; allowed: {allowed}")
    for k in _KEYS - {"description"}:
        if k not in e:
            raise ConfigError(src, f"experiment.{k}", "missing")
    return Experiment(
        name=e["name"], description=e.get("description", ""), source=src,
        reference=validation_dir() / e["reference"], metric=e["metric"], host=e["host"],
        app=e["app"], workload=e["workload"], platforms=tuple(e["platforms"]),
        tests=tuple(e["tests"]), clients=int(e["clients"]), pipeline=int(e["pipeline"]),
        aof=bool(e["aof"]), predict=dict(raw.get("predict", {})), fit=dict(raw.get("fit", {})),
    )
