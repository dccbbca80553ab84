"""Layer parameters: named costs shared across platforms, and the expressions that use them.

``models/parameters.toml`` declares every parameter (value, unit, bounds, free or fixed,
description, source). Model files refer to them in cost expressions::

    "@linux.syscall"                       a parameter
    "2 * @storage.device_flush"            a multiple
    "0.5 * @tcp.connection * @linux.tcp"   a product of numbers, parameters and variables
    "@linux.syscall + @linux.tcp_tx"       a sum of terms
    "$poll"                                a platform's variable (itself an expression)
    "0", "150.5"                           a number

A calibration file (``models/calibration/*.toml``) overrides the values of free
parameters; :class:`ParameterSet` holds the values in force.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sim.errors import ConfigError, UksimError
from sim.resources import models_dir
from sim.scenario import read_toml

_FACTOR = re.compile(r"^\s*(?P<ref>[@$][A-Za-z0-9_.\-]+|[0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    unit: str
    free: bool
    bounds: tuple[float, float]
    description: str
    source: str
    uncertainty: float | None = None  # standard error from calibration, same unit


class ParameterSet:
    """The parameters in force: priors from ``parameters.toml``, calibrated where given."""

    def __init__(self, params: Mapping[str, Parameter], origin: str) -> None:
        self.params = dict(params)
        self.origin = origin

    def __getitem__(self, name: str) -> float:
        return self.params[name].value

    def __contains__(self, name: str) -> bool:
        return name in self.params

    @property
    def free_names(self) -> list[str]:
        return [n for n, p in self.params.items() if p.free]

    def with_values(self, values: Mapping[str, float], origin: str | None = None,
                    uncertainties: Mapping[str, float] | None = None) -> ParameterSet:
        new = dict(self.params)
        for k, v in values.items():
            if k not in new:
                raise KeyError(k)
            unc = (uncertainties or {}).get(k, new[k].uncertainty)
            new[k] = replace(new[k], value=float(v), uncertainty=unc)
        return ParameterSet(new, origin or self.origin)


def load_parameters(path: Path | None = None) -> ParameterSet:
    path = path or models_dir() / "parameters.toml"
    raw = read_toml(path)
    params: dict[str, Parameter] = {}
    src = str(path)
    for group, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(src, group, "expected a table of parameters")
        for name, spec in table.items():
            key = f"{group}.{name}"
            params[key] = _parse_param(key, spec, src)
    return ParameterSet(params, src)


_PARAM_KEYS = {"value", "unit", "free", "bounds", "description", "source"}


def _parse_param(key: str, spec: Any, src: str) -> Parameter:
    if not isinstance(spec, dict):
        raise ConfigError(src, key, "expected a table with value, unit, free, description, source")
    for k in spec:
        if k not in _PARAM_KEYS:
            allowed = ", ".join(sorted(_PARAM_KEYS))
            raise ConfigError(src, f"{key}.{k}", f"unknown key; allowed: {allowed}")
    for k in ("value", "unit", "description", "source"):
        if k not in spec:
            raise ConfigError(src, f"{key}.{k}", "missing")
    v = spec["value"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ConfigError(src, f"{key}.value", f"must be a finite number >= 0, got {v!r}")
    free = bool(spec.get("free", False))
    bounds = spec.get("bounds", [0.0, math.inf])
    if (not isinstance(bounds, list) or len(bounds) != 2 or bounds[0] > bounds[1]
            or not bounds[0] <= v <= bounds[1]):
        raise ConfigError(src, f"{key}.bounds", "expected [low, high] around value")
    if free and "bounds" not in spec:
        raise ConfigError(src, f"{key}.bounds", "a free parameter needs bounds")
    return Parameter(key, float(v), str(spec["unit"]), free, (float(bounds[0]), float(bounds[1])),
                     str(spec["description"]), str(spec["source"]))


def evaluate(expr: Any, params: ParameterSet, variables: Mapping[str, Any], src: str,
             key: str, depth: int = 0) -> float:
    """The value of a cost expression (see the module docstring)."""
    if isinstance(expr, bool):
        raise ConfigError(src, key, "expected a number or an expression, got a boolean")
    if isinstance(expr, int | float):
        return float(expr)
    if not isinstance(expr, str):
        raise ConfigError(src, key, f"expected a number or an expression, got {expr!r}")
    if depth > 5:
        raise ConfigError(src, key, "variables refer to each other in a loop")
    total = 0.0
    for term in re.split(r"(?<![eE])\+", expr):  # "1e+3" is a number, not a sum
        product = 1.0
        for factor in term.split("*"):
            m = _FACTOR.match(factor)
            if not m:
                raise ConfigError(src, key, f"cannot read {term.strip()!r} in {expr!r}; "
                                  "expected a product of NUMBERs, @parameters and $variables")
            product *= _factor(m.group("ref"), expr, params, variables, src, key, depth)
        total += product
    return total


def _factor(ref: str, expr: str, params: ParameterSet, variables: Mapping[str, Any], src: str,
            key: str, depth: int) -> float:
    if ref.startswith("@"):
        name = ref[1:]
        if name not in params:
            raise ConfigError(src, key, f"unknown parameter {ref}; see models/parameters.toml")
        return params[name]
    if ref.startswith("$"):
        name = ref[1:]
        if name not in variables:
            raise ConfigError(src, key, f"unknown platform variable {ref}; the platform "
                              f"defines: {', '.join(sorted(variables)) or 'none'}")
        return evaluate(variables[name], params, variables, src, key, depth + 1)
    try:
        return float(ref)
    except ValueError:
        raise ConfigError(src, key, f"cannot read number {ref!r} in {expr!r}") from None


CALIBRATION = "jaworski2019"
# which calibration fitted which application's own costs (the others: Table 1's)
APP_CALIBRATION = {"result": "jaworski2019-table2", "vote": "jaworski2019-table3"}


def calibration_path(name: str = CALIBRATION) -> Path:
    return models_dir() / "calibration" / f"{name}.toml"


def load_calibration(base: ParameterSet, path: Path, depth: int = 0) -> ParameterSet:
    """``base`` with the fitted values (and standard errors) of a calibration file.

    A calibration may build on another (``[meta] builds_on = "NAME"``, e.g. a host's
    speed fitted on top of the reference host's layer costs): that one is applied first.
    """
    raw = read_toml(path)
    parent = raw.get("meta", {}).get("builds_on")
    if parent:
        if depth > 3:
            raise ConfigError(str(path), "meta.builds_on", "calibrations build on each other "
                              "in a loop")
        parent_path = calibration_path(parent)
        if not parent_path.is_file():
            raise ConfigError(str(path), "meta.builds_on", f"no calibration {parent_path}")
        base = load_calibration(base, parent_path, depth + 1)
    fitted = raw.get("fitted", {})
    values: dict[str, float] = {}
    errors: dict[str, float] = {}
    src = str(path)
    for name, spec in fitted.items():
        if name not in base:
            raise ConfigError(src, f"fitted.{name}", "no such parameter in parameters.toml")
        if not isinstance(spec, dict) or "value" not in spec:
            raise ConfigError(src, f"fitted.{name}", "expected {value = ..., stderr = ...}")
        values[name] = float(spec["value"])
        if spec.get("stderr") is not None:
            errors[name] = float(spec["stderr"])
    return base.with_values(values, origin=src, uncertainties=errors)


def calibration_for(app: str, name: str | None = None) -> str:
    """The calibration to predict ``app`` with: ``name`` (which must exist), or the newest
    one that fitted the application (:data:`APP_CALIBRATION`), else Table 1's."""
    if name is not None:
        if not calibration_path(name).is_file():
            raise UksimError(f"no calibration {calibration_path(name)}")
        return name
    return APP_CALIBRATION.get(app, CALIBRATION)


def current_parameters(calibration: str | None = CALIBRATION) -> ParameterSet:
    """The priors, overridden by the named calibration when its file exists."""
    base = load_parameters()
    if calibration:
        path = calibration_path(calibration)
        if path.is_file():
            return load_calibration(base, path)
    return base
