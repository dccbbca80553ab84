"""Random streams and the distributions that stage costs and arrivals are drawn from.

Every stream is derived from ``(seed, replication, component name)`` through
``numpy.random.SeedSequence(seed, spawn_key=(rep, crc32(name)))``: adding a component
never shifts the numbers another component sees, and the same seed gives the same
numbers bit for bit. Draws are made in blocks (numpy) and handed out one by one, so a
draw in the simulation's hot path costs one ``next()`` call.

Distributions are given in files as a number (deterministic) or a table::

    { dist = "exponential", mean = 1.0 }        # or rate = 1.0
    { dist = "lognormal", mean = 2.0, cv = 0.5 }
    { dist = "gamma", mean = 2.0, cv = 0.5 }
    { dist = "uniform", low = 1.0, high = 3.0 }
    { dist = "empirical", values = [1, 2, 5], weights = [0.5, 0.3, 0.2] }
    { dist = "deterministic", value = 1.0 }

All values are in the time unit of the file they appear in (converted by the loader).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import ConfigError

BLOCK = 4096  # draws per numpy call, once a stream has drawn its first few blocks
FIRST_BLOCK = 64  # draws in its first numpy call; the blocks double up to BLOCK


def stream(seed: int, rep: int, name: str) -> np.random.Generator:
    """The generator of component ``name`` in replication ``rep`` of a run seeded ``seed``."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(rep, key))))


Draw = Callable[[], float]


@dataclass(frozen=True)
class Distribution:
    """A non-negative random quantity: its kind, its parameters, its mean and a sampler."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        p = self.params
        if self.kind == "deterministic":
            return float(p["value"])
        if self.kind in ("exponential", "lognormal", "gamma"):
            return float(p["mean"])
        if self.kind == "uniform":
            return (p["low"] + p["high"]) / 2.0
        if self.kind == "empirical":
            v = np.asarray(p["values"], dtype=float)
            w = np.asarray(p["weights"], dtype=float)
            return float((v * w).sum() / w.sum())
        raise AssertionError(self.kind)

    @property
    def is_zero(self) -> bool:
        return self.kind == "deterministic" and self.params["value"] == 0.0

    def scaled(self, factor: float) -> Distribution:
        """The same shape with every time value multiplied by ``factor`` (unit change)."""
        p = dict(self.params)
        for k in ("value", "mean", "low", "high"):
            if k in p:
                p[k] = p[k] * factor
        if "values" in p:
            p["values"] = [v * factor for v in p["values"]]
        return Distribution(self.kind, p)

    def iterator(self, rng: np.random.Generator) -> Iterator[float]:
        """An endless iterator of draws; ``next(it)`` is the hot-path call."""
        p = self.params
        k = self.kind
        if k == "deterministic":
            return itertools.repeat(float(p["value"]))
        if k == "exponential":
            m = float(p["mean"])
            return blocks(lambda n: rng.exponential(m, n))
        if k == "lognormal":
            m, cv = float(p["mean"]), float(p["cv"])
            sigma2 = math.log1p(cv * cv)
            mu = math.log(m) - sigma2 / 2.0
            s = math.sqrt(sigma2)
            return blocks(lambda n: rng.lognormal(mu, s, n))
        if k == "gamma":
            m, cv = float(p["mean"]), float(p["cv"])
            shape = 1.0 / (cv * cv)
            scale = m / shape
            return blocks(lambda n: rng.gamma(shape, scale, n))
        if k == "uniform":
            lo, hi = float(p["low"]), float(p["high"])
            return blocks(lambda n: rng.uniform(lo, hi, n))
        if k == "empirical":
            v = np.asarray(p["values"], dtype=float)
            w = np.asarray(p["weights"], dtype=float)
            w = w / w.sum()
            return blocks(lambda n: rng.choice(v, n, p=w))
        raise AssertionError(k)


def blocks(make: Callable[[int], np.ndarray]) -> Iterator[float]:
    """The draws of ``make(n)`` (n draws from one generator), one by one.

    Blocks start at FIRST_BLOCK draws and double up to BLOCK, so a short run does not
    draw thousands of numbers it never uses. A generator makes its draws one after the
    other whatever the size of the call, so the sequence does not depend on the blocks.
    """
    first = [FIRST_BLOCK << i for i in range((BLOCK // FIRST_BLOCK).bit_length() - 1)]
    sizes = itertools.chain(first, itertools.repeat(BLOCK))
    return itertools.chain.from_iterable(make(n).tolist() for n in sizes)


def deterministic(value: float) -> Distribution:
    return Distribution("deterministic", {"value": float(value)})


ZERO = deterministic(0.0)

_REQUIRED = {
    "deterministic": ({"value"}, set()),
    "exponential": (set(), {"mean", "rate"}),
    "lognormal": ({"mean", "cv"}, set()),
    "gamma": ({"mean", "cv"}, set()),
    "uniform": ({"low", "high"}, set()),
    "empirical": ({"values"}, {"weights"}),
}
KINDS = tuple(_REQUIRED)


def parse_distribution(spec: Any, source: str, key: str) -> Distribution:
    """Read a distribution from a number or a ``{dist = ...}`` table, checking every value."""
    if isinstance(spec, bool):
        raise ConfigError(source, key, "expected a number or a {dist = ...} table, got a boolean")
    if isinstance(spec, int | float):
        _check_nonneg(spec, source, key)
        return deterministic(float(spec))
    if not isinstance(spec, dict):
        raise ConfigError(
            source, key, f"expected a number or a {{dist = ...}} table, got {type(spec).__name__}"
        )
    kind = spec.get("dist")
    if not isinstance(kind, str) or kind not in _REQUIRED:  # a list or table is unhashable
        raise ConfigError(
            source, f"{key}.dist", f"unknown distribution {kind!r}; allowed: {', '.join(KINDS)}"
        )
    required, optional = _REQUIRED[kind]
    allowed = required | optional | {"dist"}
    for k in spec:
        if k not in allowed:
            allowed_text = ", ".join(sorted(allowed))
            raise ConfigError(source, f"{key}.{k}",
                              f"unknown key for {kind}; allowed: {allowed_text}")
    for k in required:
        if k not in spec:
            needed = ", ".join(sorted(required))
            raise ConfigError(source, f"{key}.{k}", f"missing; {kind} needs {needed}")
    params: dict[str, Any] = {}
    if kind == "exponential":
        if ("mean" in spec) == ("rate" in spec):
            raise ConfigError(source, key, "exponential needs exactly one of mean or rate")
        if "rate" in spec:
            rate = _number(spec["rate"], source, f"{key}.rate")
            if rate <= 0:
                raise ConfigError(source, f"{key}.rate", f"must be > 0, got {rate}")
            params["mean"] = 1.0 / rate
        else:
            params["mean"] = _positive(spec["mean"], source, f"{key}.mean")
    elif kind == "empirical":
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(source, f"{key}.values", "must be a non-empty list of numbers")
        vals = [_number(v, source, f"{key}.values") for v in values]
        for v in vals:
            _check_nonneg(v, source, f"{key}.values")
        weights = spec.get("weights", [1.0] * len(vals))
        if not isinstance(weights, list) or len(weights) != len(vals):
            raise ConfigError(source, f"{key}.weights", "must be a list as long as values")
        ws = [_number(w, source, f"{key}.weights") for w in weights]
        if any(w < 0 for w in ws) or sum(ws) <= 0:
            raise ConfigError(source, f"{key}.weights", "must be >= 0 with a positive sum")
        params = {"values": vals, "weights": ws}
    else:
        for k in required:
            params[k] = _number(spec[k], source, f"{key}.{k}")
        if kind == "deterministic":
            _check_nonneg(params["value"], source, f"{key}.value")
        if kind in ("lognormal", "gamma"):
            params["mean"] = _positive(params["mean"], source, f"{key}.mean")
            params["cv"] = _positive(params["cv"], source, f"{key}.cv")
        if kind == "uniform":
            _check_nonneg(params["low"], source, f"{key}.low")
            if params["high"] < params["low"]:
                raise ConfigError(source, f"{key}.high", "must be >= low")
    return Distribution(kind, params)


def _number(v: Any, source: str, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ConfigError(source, key, f"expected a finite number, got {v!r}")
    return float(v)


def _positive(v: Any, source: str, key: str) -> float:
    x = _number(v, source, key)
    if x <= 0:
        raise ConfigError(source, key, f"must be > 0, got {x}")
    return x


def _check_nonneg(v: float, source: str, key: str) -> None:
    if not math.isfinite(v) or v < 0:
        raise ConfigError(source, key, f"must be a finite number >= 0, got {v}")
