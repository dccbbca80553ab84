"""Helpers for the engine's tests: build a scenario from a dict, inject requests, trace them.

A test describes a model as the same dict a TOML file would give, runs it through the real
loader (:func:`sim.scenario.expand_and_resolve`, :func:`sim.scenario.to_model`) and
assembles it (:class:`sim.replication.Assembly`). To state an exact timeline it then
injects requests at chosen times instead of starting the workload's source, and reads
when each one reached the end of its route.
"""

from __future__ import annotations

import copy
import datetime
import math
from pathlib import Path
from typing import Any

from sim.replication import Assembly
from sim.requests import Request
from sim.scenario import expand_and_resolve, to_model

ROOT = Path(__file__).resolve().parent.parent
THEORY = ROOT / "scenarios" / "theory"


def scenario(stages: dict[str, dict], route: list[str] | None = None, *,
             routes: dict[str, list[str]] | None = None,
             contexts: dict[str, dict] | None = None, devices: dict[str, dict] | None = None,
             host: dict | None = None, workload: dict | None = None,
             classes: list[dict] | None = None, time_unit: str = "ns") -> dict[str, Any]:
    """A raw scenario dict (what ``tomllib`` would read), with quiet defaults."""
    raw: dict[str, Any] = {
        "scenario": {"name": "spec", "time_unit": time_unit},
        "host": host or {"cores": 1},
        "contexts": contexts or {"ctx": {"cores": [0]}},
        "stages": stages,
        "path": {"route": route} if routes is None else {"routes": routes},
        # an open source that is never started: tests inject their own requests
        "workload": workload or {"kind": "open", "rate": 1e-9, "requests": 1_000_000,
                                 "warmup": 0},
    }
    if devices:
        raw["devices"] = devices
    if classes:
        raw["workload"] = {**raw["workload"], "classes": classes}
    return raw


def assemble(raw: dict[str, Any], seed: int = 1, rep: int = 0) -> Assembly:
    """The runtime objects of one replication of ``raw``, through the real loader."""
    points = expand_and_resolve(copy.deepcopy(raw), "<test>")
    assert len(points) == 1
    return Assembly(to_model(points[0]), seed, rep)


class Trace:
    """Requests injected at chosen times, and when each left its route (engine ns)."""

    def __init__(self, a: Assembly) -> None:
        self.a = a
        self.left: dict[int, float] = {}
        sink = a.source.routes[0][-1]
        for route in a.source.routes:
            assert route[-1] is sink  # every route ends in the one sink
        done = sink.on_done

        def record(req: Request) -> None:
            self.left[req.client] = a.kernel.now
            done(req)

        sink.on_done = record
        self._next = 0

    def send(self, t: float, cls: int = 0, request_bytes: float = 0.0,
             reply_bytes: float = 0.0) -> int:
        """Inject one request of class index ``cls`` at time ``t``; returns its id."""
        rid = self._next
        self._next += 1
        req = Request(cls, request_bytes, reply_bytes, t, self.a.source.routes[cls], client=rid)

        def start(event: Any) -> None:
            self.a.recorder.arrive()
            event._value.start()

        self.a.kernel.call_at(t, start, req)
        return rid

    def run(self) -> list[float]:
        """Run until nothing is left to do; departure times in the order of injection."""
        self.a.kernel.run()
        return [self.left.get(i) for i in range(self._next)]  # type: ignore[misc]


# ------------------------------------------------------------------ writing TOML back

def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, datetime.date | datetime.datetime):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_str(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(d: dict[str, Any]) -> str:
    """Every top-level key as one line with inline tables: valid TOML for any dict."""
    return "".join(f"{_toml_str(k)} = {_toml_value(v)}\n" for k, v in d.items())
