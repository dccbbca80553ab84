"""Where one request's time goes: the stage-by-stage breakdown behind ``uksim explain``.

:func:`explain` composes one scenario (host, platform, app, workload, test, load), runs it
with the usual runner and reads the per-stage accounts back in route order. Every stage
reports, per *message* (one round trip of a pipeline of ``-P`` commands), the CPU time it
booked, the time it spent waiting (for its core, for the batch it rides in, for a device's
queue) and device or delay time, in microseconds. Nothing is printed here; the command
(:mod:`sim.commands.explain`) and the waterfall plot (:mod:`sim.plots.waterfall`) render
the :class:`Explanation` this returns.

What the accounts include, and why they add up to the latency:

* a ``cpu`` segment books each stage's own CPU time, and the time between the segment's
  entry and its end minus that CPU time (waiting for the core, or a slower share of it)
  as waiting of the segment's *first* stage (consecutive cpu stages on one context run as
  one task, so their queueing cannot be split between them);
* a ``batch`` stage books each item's own CPU (its share of the per-batch cost, plus the
  cpu stages it absorbs, which are booked to those stages), the device visit of the batch
  (the AOF fsync), and everything else between the item's arrival and the batch's release
  as waiting: queueing behind the running batch and the other items' CPU in its own batch;
* ``delay`` stages book their duration as device time, ``device`` stages their service as
  device time and their queue as waiting.

So every nanosecond between a message's send and its last reply is booked to exactly one
stage, and the per-message sum equals the mean latency per message up to the edges of
the measurement window (messages in flight when it opens and when it closes, about
``clients`` messages out of ``requests / pipeline``: :data:`ACCOUNTING_TOLERANCE`).
Three things sit beside the stages:

* an open load's requests may wait in the client for a free connection (wrk2): that wait
  is booked as the first row, ``client backlog``, since latency counts from when a request
  was due;
* requests that fail (timeouts, connect failures) are in the system until they leave it,
  and the stages book their time as they book anyone's, but no latency holds it: it is
  reported apart (:attr:`Explanation.failed_us`) and the accounting check compares the
  stages with the completed messages' latency plus it;
* periodic work (``[timers.NAME]``, e.g. Node's PostgreSQL poll) holds its context while
  requests wait behind it; it is on no route, so it is shown apart
  (:class:`Periodic`): its CPU per message and its share of the context's time. The
  requests' waiting behind it is in the stages' waiting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sim.composition import (
    Settings,
    compose,
    default_workload,
    persists,
    pipelines,
    platform_names,
    workload_tests,
)
from sim.errors import UksimError
from sim.parameters import calibration_for, current_parameters
from sim.resources import models_dir
from sim.runner import RunOptions, run_point
from sim.scenario import UNITS_NS, expand_and_resolve

NS_PER_US = 1e3
US_PER_MS = 1e3
# |sum of the stage times / simulated mean latency per message - 1| stays within this
# (window-edge effects; see the module docstring). Tests check it.
ACCOUNTING_TOLERANCE = 0.02
SATURATED = 0.9  # a resource busy this much of the time is called the bottleneck
STUDY_PIPELINE = 10  # the study's -P, for a load generator that pipelines
BACKLOG_ROW = "client backlog"


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: one test on one platform under one load (the study's by default)."""

    platform: str
    app: str = "redis"
    test: str = "GET"
    host: str = "i5-3470"
    workload: str | None = None  # None: the app's own (redis-benchmark for Redis, else ab)
    clients: int = 10  # connections (an open load's: at most in flight)
    pipeline: int | None = None  # None: the study's 10 if the tool pipelines, else 1
    aof: bool = True
    requests: int = 20_000
    reps: int = 3
    seed: int = 1
    rate: float | None = None  # requests/s of an open load (wrk2 -R)
    arrivals: str | None = None  # an open load's spacing: fixed or poisson
    timeout: float | None = None  # s: a request not answered in time fails (ab -s)
    calibration: str | None = None  # None: the one that fitted the app
    log: str | None = None  # where the app's log line goes (None: the app's default)
    # (role, cores) pairs (--pin): the request stays hashable, so runs can be cached
    placement: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def load(self) -> str:
        """The load as the tool's command line would say it."""
        words = [self.workload]
        if self.rate is not None:
            words.append(f"-R {self.rate:g}")
        words.append(f"-c {self.clients}")
        if self.pipeline and self.pipeline > 1:
            words.append(f"-P {self.pipeline}")
        if self.arrivals == "poisson":
            words.append("(Poisson arrivals)")
        if self.timeout is not None:
            words.append(f"--timeout {self.timeout:g} s")
        if self.log is not None:
            words.append(f"(log: {self.log})")
        return " ".join(words)


@dataclass(frozen=True)
class Interval:
    """A value with its 95% confidence interval (``low``/``high`` None when unknown)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class StageTime:
    """One stage on the route, with the time it books per message (µs)."""

    name: str
    kind: str  # cpu, batch, delay, device, listen; backlog (the client's, an open load's)
    context: str | None  # cpu and batch stages
    cores: tuple[int, ...]
    device: str | None  # device stages, and a batch stage's batch_device
    inside: str | None  # the batch stage whose task pays this stage's CPU
    description: str
    cpu_us: float
    wait_us: float
    device_us: float
    share: float  # of the accounted round trip

    @property
    def total_us(self) -> float:
        return self.cpu_us + self.wait_us + self.device_us


@dataclass(frozen=True)
class Periodic:
    """Periodic work on a context (a timer): on no request's route, it holds the context
    (its core) while requests wait behind it; their waiting is in the stages'."""

    name: str
    context: str
    cores: tuple[int, ...]
    every_ms: float  # period
    description: str
    cpu_us: float  # per message
    wait_us: float  # per message: its firings' waiting for the context
    busy: float  # share of the context's time it takes (one thread's)


@dataclass(frozen=True)
class Load:
    """How busy a context (its cores) or a device was, and its work per message."""

    name: str
    kind: str  # context or device
    cores: tuple[int, ...]
    utilisation: Interval
    cpu_us_per_message: float | None  # contexts: CPU its stages and timers booked per message


@dataclass(frozen=True)
class Explanation:
    request: ExplainRequest
    parameters: str  # where the parameter values come from (priors or a calibration file)
    route: list[str]
    stages: list[StageTime]
    cpu_us: float
    wait_us: float
    device_us: float
    total_us: float  # accounted per message: the sum of the stage times
    latency_us: Interval  # simulated mean latency per message (= per request)
    p99_us: Interval
    throughput_rps: Interval
    loads: list[Load]
    bottleneck: str  # one sentence
    status: str
    replications: int
    completed_requests: int
    periodic: list[Periodic] = field(default_factory=list)
    # time failed requests spent in the system, per completed message: the stages book it
    failed_us: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # timeouts, connect_failures
    offered_rps: float | None = None  # an open load's rate
    notes: list[str] = field(default_factory=list)
    has_aof: bool = True  # the app has an append-only file (the AOF setting applies)

    @property
    def accounted_us(self) -> float:
        """What the stages must add up to per message: the mean latency of completed
        messages, plus the time failed requests spent in the system."""
        return self.latency_us.value + self.failed_us

    @property
    def accounting_gap(self) -> float:
        """Accounted time per message over latency plus failed requests' time, minus one."""
        if not self.accounted_us:
            return math.nan
        return self.total_us / self.accounted_us - 1.0

    def load(self, name: str) -> Load | None:
        return next((x for x in self.loads if x.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for s, st in zip(d["stages"], self.stages, strict=True):
            s["total_us"] = st.total_us
        d["accounted_us"] = self.accounted_us
        d["accounting_gap"] = self.accounting_gap
        d["accounting_tolerance"] = ACCOUNTING_TOLERANCE
        return _json_safe(d)


def _json_safe(x: Any) -> Any:
    """``x`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def app_names() -> list[str]:
    return sorted(p.stem for p in (models_dir() / "apps").glob("*.toml"))


def check_request(req: ExplainRequest) -> ExplainRequest:
    """``req`` with the test's name as the workload spells it, or a one-line UksimError."""
    known = platform_names()
    if req.platform not in known:
        raise UksimError(f"unknown platform {req.platform!r}; known: {', '.join(known)}")
    apps = app_names()
    if req.app not in apps:
        raise UksimError(f"unknown app {req.app!r}; known: {', '.join(apps)}")
    if req.workload is None:
        req = replace(req, workload=default_workload(req.app))
    workloads = sorted(p.stem for p in (models_dir() / "workloads").glob("*.toml"))
    if req.workload not in workloads:
        raise UksimError(f"unknown workload {req.workload!r}; known: {', '.join(workloads)}")
    hosts = sorted(p.stem for p in (models_dir() / "hosts").glob("*.toml"))
    if req.host not in hosts:
        raise UksimError(f"unknown host {req.host!r}; known: {', '.join(hosts)}")
    tests = workload_tests(req.workload)
    match = [t for t in tests if t.upper() == req.test.upper()]
    if not match:
        raise UksimError(f"unknown test {req.test!r} for {req.workload}; known: "
                         f"{', '.join(tests)}")
    pipeline = req.pipeline or (STUDY_PIPELINE if pipelines(req.workload) else 1)
    for name, value, low in (("clients", req.clients, 1), ("pipeline", pipeline, 1),
                             ("requests", req.requests, 1), ("reps", req.reps, 2)):
        if value < low:
            raise UksimError(f"{name} must be at least {low}, got {value}")
    calibration_for(req.app, req.calibration)  # a named one must exist
    if req.test != match[0] or req.pipeline != pipeline:
        req = ExplainRequest(**{**asdict(req), "test": match[0], "pipeline": pipeline})
    return req


def _interval(d: dict[str, Any] | None, factor: float = 1.0) -> Interval:
    if not d or d.get("value") is None:
        return Interval(math.nan)
    lo, hi = (d.get("ci95") or [None, None])[:2]
    return Interval(d["value"] * factor, None if lo is None else lo * factor,
                    None if hi is None else hi * factor)


def _absorbed_by(route: list[str], stages: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Stage -> the batch stage that pays its CPU (the cpu stages that follow a batch stage
    on its context, as :mod:`sim.paths` compiles them)."""
    inside: dict[str, str] = {}
    batch: str | None = None
    for name in route:
        s = stages[name]
        if batch is not None and s["kind"] == "cpu" and s.get("context") == \
                stages[batch].get("context"):
            inside.setdefault(name, batch)
            continue
        batch = name if s["kind"] == "batch" else None
    return inside


def explain(req: ExplainRequest) -> Explanation:
    """Run ``req``'s scenario and break its round trip down stage by stage."""
    req = check_request(req)
    params = current_parameters(calibration_for(req.app, req.calibration))
    settings = Settings(clients=req.clients, pipeline=req.pipeline, requests=req.requests,
                        aof=req.aof, rate=req.rate, arrivals=req.arrivals,
                        timeout=req.timeout, reps=req.reps, max_reps=req.reps, workers=1,
                        placement={role: list(cores) for role, cores in req.placement},
                        log=req.log)
    raw = compose(req.host, req.platform, req.app, req.workload, req.test, params, settings)
    resolved = expand_and_resolve(raw, f"{req.platform}/{req.test}")[0]
    row = run_point(resolved, RunOptions(seed=req.seed, reps=req.reps))
    if "stages_ms_per_request" not in row:
        reasons = ", ".join(f"{k} at {u:.0%}" for k, u in row.get("saturated_by", {}).items())
        raise UksimError(f"{req.platform}/{req.test} is saturated before it runs"
                         + (f" ({reasons})" if reasons else "") + "; nothing to explain")
    if not row.get("completed_requests"):
        errors = row.get("errors") or {}
        raise UksimError(
            f"{req.platform}/{req.test}: no request completed ({int(errors.get('timeouts', 0))} "
            f"timeouts, {int(errors.get('connect_failures', 0))} connect failures), so there is "
            "no completed request's time to break down. Requests that time out stay in the "
            "server and keep it busy, so a timeout near or below the latency fails nearly "
            "all of them: lengthen --timeout or lighten the load")
    return _build(req, resolved, row, params.origin)


def _build(req: ExplainRequest, resolved: dict[str, Any], row: dict[str, Any],
           origin: str) -> Explanation:
    pipeline = resolved["workload"]["pipeline"]
    per_msg = pipeline * US_PER_MS  # ms per request -> µs per message
    stage_specs: dict[str, dict[str, Any]] = resolved["stages"]
    contexts: dict[str, dict[str, Any]] = resolved["contexts"]
    route = list(resolved["path"]["route"])
    inside = _absorbed_by(route, stage_specs)
    booked = row["stages_ms_per_request"]

    # (name, spec, what it booked per request) in route order, the client's backlog first
    entries: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if "backlog_ms_per_request" in row:
        entries.append((BACKLOG_ROW, {"kind": "backlog", "description": (
            "due but not yet written: every connection was waiting for a reply (latency "
            "counts from when the request was due)")}, row["backlog_ms_per_request"]))
    for name in dict.fromkeys(route):
        entries.append((name, stage_specs[name], booked.get(name, {})))
    times = [_per_message(b, per_msg) for _, _, b in entries]
    total = sum(sum(t) for t in times)
    stages = []
    for (name, s, _), (cpu, wait, dev) in zip(entries, times, strict=True):
        ctx = s.get("context")
        stages.append(StageTime(
            name=name, kind=s["kind"], context=ctx,
            cores=tuple(contexts[ctx]["cores"]) if ctx in contexts else (),
            device=s.get("device") or s.get("batch_device"), inside=inside.get(name),
            description=s.get("description", ""), cpu_us=cpu, wait_us=wait, device_us=dev,
            share=(cpu + wait + dev) / total if total > 0 else math.nan))
    periodic = _periodic(resolved, row, per_msg)

    loads = []
    for key, est in row.get("utilisation", {}).items():
        kind, _, name = key.partition(".")
        cpu = (sum(st.cpu_us for st in stages if st.context == name)
               + sum(p.cpu_us for p in periodic if p.context == name)
               if kind == "context" else None)
        cores = tuple(contexts[name]["cores"]) if kind == "context" and name in contexts else ()
        loads.append(Load(name, kind, cores, _interval(est), cpu))
    loads.sort(key=lambda x: -(x.utilisation.value if math.isfinite(x.utilisation.value)
                                else -1.0))
    lat = row["latency_ms"]
    errors = row.get("errors", {})
    expl = Explanation(
        has_aof=persists(req.app), request=req, parameters=origin, route=route, stages=stages,
        cpu_us=sum(s.cpu_us for s in stages), wait_us=sum(s.wait_us for s in stages),
        device_us=sum(s.device_us for s in stages), total_us=total,
        latency_us=_interval(lat.get("mean"), US_PER_MS),
        p99_us=_interval(lat.get("p99"), US_PER_MS),
        throughput_rps=_interval(row.get("throughput_rps")),
        loads=loads, bottleneck=bottleneck_sentence(loads, stages),
        status=row.get("status", "?"),
        replications=row.get("replications", 0),
        completed_requests=row.get("completed_requests", 0),
        periodic=periodic,
        failed_us=(row.get("failed_ms_per_request") or 0.0) * per_msg,
        failures={k: int(errors.get(k, 0)) for k in ("timeouts", "connect_failures")},
        offered_rps=row.get("offered_rps"),
    )
    gap = expl.accounting_gap
    if math.isfinite(gap) and abs(gap) > ACCOUNTING_TOLERANCE:
        against = ("the simulated mean latency plus the failed requests' time"
                   if expl.failed_us else "the simulated mean latency")
        expl.notes.append(f"the stage times add up to {total:.1f} µs per message, "
                          f"{gap:+.1%} off {against}: the run is short for its number of "
                          "clients (window-edge effects); raise -n")
    return expl


def _per_message(booked: dict[str, Any], per_msg: float) -> tuple[float, float, float]:
    """CPU, waiting and device time (µs per message) from an account per request (ms)."""
    cpu, wait, dev = ((booked.get(k) or 0.0) * per_msg for k in ("cpu_ms", "wait_ms",
                                                                  "device_ms"))
    # waiting is elapsed time minus work: rounding can leave -1e-12 where there was none
    return cpu, 0.0 if -1e-6 < wait < 0 else wait, dev


def _periodic(resolved: dict[str, Any], row: dict[str, Any], per_msg: float
              ) -> list[Periodic]:
    """The scenario's timers, with what they cost per message and of their context."""
    out = []
    unit_ms = UNITS_NS[resolved["scenario"]["time_unit"]] / 1e6
    thr = (row.get("throughput_rps") or {}).get("value") or 0.0
    for name, booked in row.get("timers_ms_per_request", {}).items():
        spec = resolved["timers"][name]
        ctx = resolved["contexts"][spec["context"]]
        cpu, wait, _ = _per_message(booked, per_msg)
        # CPU per request (ms) x requests per second = ms of CPU per second, one thread's
        busy = (booked.get("cpu_ms") or 0.0) * thr / 1e3 / ctx["threads"]
        out.append(Periodic(name, spec["context"], tuple(ctx["cores"]),
                            spec["every"] * unit_ms, spec.get("description", ""), cpu, wait,
                            busy))
    return out


def _where(load: Load) -> str:
    if load.kind == "device":
        return f"the {load.name} device"
    cores = ",".join(str(c) for c in load.cores)
    return f"the {load.name} context (core{'s' if len(load.cores) > 1 else ''} {cores})"


def bottleneck_sentence(loads: list[Load], stages: list[StageTime]) -> str:
    """One sentence: which resource limits throughput, or that none does."""
    loads = [x for x in loads if math.isfinite(x.utilisation.value)]
    if not loads:
        return "no utilisation was measured."
    top, rest = loads[0], loads[1:]
    others = "; ".join(f"{x.name} {x.utilisation.value:.0%}" for x in rest)
    if top.utilisation.value >= SATURATED:
        what = ", so the AOF fsync sets the pace" if top.kind == "device" else ""
        return (f"{_where(top)} is busy {top.utilisation.value:.0%} of the time and limits "
                f"throughput{what}" + (f"; the others: {others}." if others else "."))
    biggest = max(stages, key=lambda s: s.total_us)
    return (f"no resource is saturated (busiest: {_where(top)} at "
            f"{top.utilisation.value:.0%}" + (f"; {others}" if others else "") +
            f"): the round trip is latency-bound; its largest part is {biggest.name} "
            f"({biggest.share:.0%}).")


@dataclass(frozen=True)
class Comparison:
    """Two explanations of the same test and load on two platforms."""

    a: str
    b: str
    throughput_ratio: float  # a's throughput over b's
    cpu_us_per_message: dict[str, tuple[float | None, float | None]]  # context -> (a, b)
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def compare(a: Explanation, b: Explanation) -> Comparison:
    names: list[str] = []
    for e in (a, b):
        for x in e.loads:
            if x.kind == "context" and x.name not in names:
                names.append(x.name)
    per_ctx: dict[str, tuple[float | None, float | None]] = {}
    for n in names:
        la, lb = a.load(n), b.load(n)
        per_ctx[n] = (la.cpu_us_per_message if la else None,
                      lb.cpu_us_per_message if lb else None)
    ta, tb = a.throughput_rps.value, b.throughput_rps.value
    ratio = ta / tb if tb else math.nan
    pa, pb = a.request.platform, b.request.platform
    test = a.request.test
    if 2 / 3 <= ratio <= 1.5:
        how = f"{abs(ratio - 1):.0%} {'more' if ratio >= 1 else 'fewer'} {test} requests " \
              "per second than"
    else:
        how = f"{ratio:.2f}x as many {test} requests per second as"
    head = f"{pa} serves {how} {pb} ({ta:,.0f} vs {tb:,.0f} req/s)"
    top_a, top_b = a.loads[0] if a.loads else None, b.loads[0] if b.loads else None
    shared = (top_a is not None and top_b is not None and top_a.name == top_b.name
              and top_a.kind == top_b.kind
              and min(top_a.utilisation.value, top_b.utilisation.value) >= SATURATED)
    if shared and top_a is not None and top_b is not None and top_a.kind == "context":
        ca, cb = per_ctx[top_a.name]
        why = (f": both are limited by the {top_a.name} context "
               f"({top_a.utilisation.value:.0%} and {top_b.utilisation.value:.0%} busy), and "
               f"a message costs it {ca:.1f} µs of CPU on {pa} against {cb:.1f} µs on {pb}")
        diffs = _stage_differences(a, b, top_a.name)
        if diffs:
            why += f" ({diffs})"
    elif shared and top_a is not None and top_b is not None:
        why = (f": both are limited by the {top_a.name} device "
               f"({top_a.utilisation.value:.0%} and {top_b.utilisation.value:.0%} busy); a "
               f"message spends {a.device_us:,.0f} µs in device or delay time on {pa} "
               f"against {b.device_us:,.0f} µs on {pb}")
    else:
        why = (f"; mean latency per message {a.latency_us.value:,.1f} µs vs "
               f"{b.latency_us.value:,.1f} µs. {pa}: {a.bottleneck.rstrip('.')}. "
               f"{pb}: {b.bottleneck.rstrip('.')}")
    return Comparison(pa, pb, ratio, per_ctx, head + why + ".")


def _stage_differences(a: Explanation, b: Explanation, context: str, top: int = 3) -> str:
    """The stages on ``context`` whose CPU per message differs most between ``a`` and ``b``."""
    ca = {s.name: s.cpu_us for s in a.stages if s.context == context}
    cb = {s.name: s.cpu_us for s in b.stages if s.context == context}
    names = list(ca) + [n for n in cb if n not in ca]
    items = [(ca.get(n, 0.0), cb.get(n, 0.0), n) for n in names]
    items = [x for x in items if abs(x[0] - x[1]) >= 0.05]
    items.sort(key=lambda x: -abs(x[0] - x[1]))
    return "largest differences: " + "; ".join(
        f"{n} {x:.1f} vs {y:.1f} µs" for x, y, n in items[:top]) if items else ""
