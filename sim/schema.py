"""Declared parameters: every key of a file with its type, unit, default and description.

A :class:`Section` lists its :class:`Param` s; :meth:`Section.resolve` checks a table
from a file against them and returns it with every default filled in, so the resolved
scenario written beside the results names every parameter and its value. Unknown keys
are errors that list the allowed ones; every error names the file and the dotted key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError
from sim.randomness import parse_distribution

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # str, int, float, bool, list[str], list[int], dist, choice, table, any
    default: Any = REQUIRED
    unit: str = ""
    description: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None


def _fail(src: str, key: str, msg: str) -> ConfigError:
    return ConfigError(src, key, msg)


def check_value(p: Param, value: Any, src: str, key: str) -> Any:
    k = p.kind
    if k == "dist":
        parse_distribution(value, src, key)
        return value
    if k == "any" or k == "table":
        if k == "table" and not isinstance(value, dict):
            raise _fail(src, key, f"expected a table, got {type(value).__name__}")
        return value
    if k == "str":
        if not isinstance(value, str):
            raise _fail(src, key, f"expected a string, got {value!r}")
        return value
    if k == "choice":
        if value not in p.choices:
            raise _fail(src, key, f"{value!r} is not allowed; allowed: {', '.join(p.choices)}")
        return value
    if k == "bool":
        if not isinstance(value, bool):
            raise _fail(src, key, f"expected true or false, got {value!r}")
        return value
    if k in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(src, key, f"expected a number, got {value!r}")
        if k == "int" and not (isinstance(value, int) or float(value).is_integer()):
            raise _fail(src, key, f"expected a whole number, got {value!r}")
        if not math.isfinite(value):
            raise _fail(src, key, f"expected a finite number, got {value!r}")
        v = int(value) if k == "int" else float(value)
        _check_range(p, v, src, key)
        return v
    if k in ("list[str]", "list[int]"):
        if not isinstance(value, list):
            raise _fail(src, key, f"expected a list, got {value!r}")
        inner = Param(p.name, k[5:-1], minimum=p.minimum, maximum=p.maximum)
        return [check_value(inner, v, src, key) for v in value]
    raise AssertionError(k)


def _check_range(p: Param, v: float, src: str, key: str) -> None:
    unit = f" {p.unit}" if p.unit else ""
    if p.minimum is not None:
        if p.exclusive_minimum and v <= p.minimum:
            raise _fail(src, key, f"must be > {p.minimum:g}{unit}, got {v:g}")
        if not p.exclusive_minimum and v < p.minimum:
            raise _fail(src, key, f"must be >= {p.minimum:g}{unit}, got {v:g}")
    if p.maximum is not None and v > p.maximum:
        raise _fail(src, key, f"must be <= {p.maximum:g}{unit}, got {v:g}")


@dataclass(frozen=True)
class Section:
    name: str
    params: Sequence[Param]
    description: str = ""

    def resolve(self, table: Any, src: str, prefix: str,
                checks: Sequence[Callable[[dict, str, str], None]] = ()) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise _fail(src, prefix, f"expected a table, got {type(table).__name__}")
        allowed = {p.name: p for p in self.params}
        for key in table:
            if key not in allowed:
                raise _fail(src, f"{prefix}.{key}",
                            f"unknown key; allowed: {', '.join(sorted(allowed))}")
        out: dict[str, Any] = {}
        for p in self.params:
            key = f"{prefix}.{p.name}"
            if p.name in table:
                out[p.name] = check_value(p, table[p.name], src, key)
            elif p.default is REQUIRED:
                raise _fail(src, key, f"missing ({p.description or p.kind})")
            elif p.default is not None:
                out[p.name] = p.default
        for check in checks:
            check(out, src, prefix)
        return out

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(key, unit, default, description) rows for documentation."""
        rows = []
        for p in self.params:
            d = "required" if p.default is REQUIRED else repr(p.default)
            rows.append((f"{self.name}.{p.name}", p.unit, d, p.description))
        return rows
