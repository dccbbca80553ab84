"""Scenario files: a host, execution contexts, devices, stages, a path and a workload.

A scenario is a TOML file. Every time in it is in the unit its ``[scenario] time_unit``
names (``ns``, ``us``, ``ms`` or ``s``); rates are per that unit; per-byte costs are that
unit per byte. :func:`load_scenario` reads it, applies ``--set key=value`` overrides,
checks every key (unknown keys are errors), fills every default, and returns the
*resolved* scenario (a plain dict, in the file's units, written beside results so a run
can be repeated) and :func:`to_model` converts that to the engine's :class:`Model`
(nanoseconds). Every mistake raises :class:`~sim.errors.ConfigError` naming the file
and the dotted key.

Sections (see :data:`SECTIONS` for every parameter, its unit and default)::

    [scenario]        name, description, time_unit
    [host]            cores, speed, scheduling
    [contexts.NAME]   threads, cores
    [devices.NAME]    service, per_byte, servers
    [stages.NAME]     kind = cpu | delay | device | batch | listen, and the kind's
                      parameters
    [path]            route = [...] for every class, or [path.routes] CLASS = [...]
    [workload]        kind = open | closed, rate or interarrival (and connections) or
                      clients/pipeline/think, requests, warmup, timeout, report,
                      [[workload.classes]]
    [timers.NAME]     context, every, cost, offset (periodic work on a context)
    [run]             reps, precision, max_reps, workers, max_in_system
    [sweep]           "dotted.key" = [values, ...]  (one row per combination)
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.batching import batch_absorbs
from sim.cpu import POLICIES
from sim.devices import DeviceSpec
from sim.errors import ConfigError
from sim.randomness import Distribution, parse_distribution
from sim.schema import Param, Section
from sim.stages import SIZES, STAGE_KINDS, Cost, StageSpec
from sim.timers import TimerSpec
from sim.workload import RequestClass

UNITS_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

SCENARIO = Section("scenario", [
    Param("name", "str", description="short name of the experiment"),
    Param("description", "str", "", description="what it shows"),
    Param("time_unit", "choice", "ns", choices=tuple(UNITS_NS),
          description="unit of every time value in this file"),
])
HOST = Section("host", [
    Param("name", "str", "host", description="name of the machine"),
    Param("cores", "int", 1, "cores", "CPU cores", minimum=1),
    Param("speed", "float", 1.0, "x", "relative speed of each core (work per time unit)",
          minimum=0, exclusive_minimum=True),
    Param("scheduling", "choice", "preemptive", choices=POLICIES,
          description="how contexts that share a core are scheduled"),
])
CONTEXT = Section("contexts.NAME", [
    Param("threads", "int", 1, "threads", "work it can run at once", minimum=1),
    Param("cores", "list[int]", [0], "core index", "cores it may run on", minimum=0),
    Param("wake", "float", 0.0, "time unit", "CPU time to wake a sleeping thread of it when "
          "work arrives (scheduler wake-up, context switch; a halted vCPU's IPI and entry)",
          minimum=0),
    Param("description", "str", "", description="what runs here"),
])
DEVICE = Section("devices.NAME", [
    Param("service", "dist", 0.0, "time unit", "service time per visit"),
    Param("per_byte", "float", 0.0, "time unit/byte", "extra time per byte", minimum=0),
    Param("servers", "int", 1, "servers", "visits served at once", minimum=1),
    Param("description", "str", "", description="what the device is"),
])
STAGE = Section("stages.NAME", [
    Param("kind", "choice", choices=STAGE_KINDS, description="what the stage costs"),
    Param("context", "str", None, description="execution context (cpu, batch)"),
    Param("device", "str", None, description="device visited (device)"),
    Param("cost", "dist", 0.0, "time unit", "fixed cost per request (per item for batch)"),
    Param("per_byte", "float", 0.0, "time unit/byte", "cost per byte carried", minimum=0),
    Param("bytes", "choice", "request", choices=SIZES, description="which bytes it carries"),
    Param("per_byte_beyond", "int", 0, "bytes", "cpu, batch, delay: per_byte counts only the "
          "message's bytes past the first this many (a slower way taken once a fixed buffer "
          "is full: Redis 3.0 fills its client's 16 KB static reply buffer, then appends to "
          "a reply list; 0: every byte)", minimum=0),
    Param("per_command", "float", 0.0, "time unit/command", "cost per command the message "
          "carries (pipelining)", minimum=0),
    Param("max_batch", "int", None, "items", "largest batch (batch)", minimum=1),
    Param("window", "float", 0.0, "time unit", "wait after the first item (batch)", minimum=0),
    Param("per_batch", "dist", 0.0, "time unit", "cost paid once per batch (batch)"),
    Param("batch_device", "str", None, description="device the batch then visits (batch)"),
    Param("batch_device_when", "list[str]", [], description="classes that trigger it (batch)"),
    Param("suppressed_while", "list[str]", [], description="cpu: a notification (a virtio "
          "kick), paid only when none of these cpu stages holds a message; while they do, "
          "the other side is still busy and finds the message without it (EVENT_IDX)"),
    Param("chunk", "int", 0, "bytes", "cpu: a message's bytes (its `bytes` side) are handled "
          "in pieces of at most this many, each a task queued behind the work already "
          "waiting on the context, as an event loop that reads one buffer per ready socket "
          "per turn serves its connections round robin (hiredis reads 16 KB; 0: the whole "
          "message at once)", minimum=0),
    Param("backlog", "int", None, "connections", "connections that may wait to be accepted; "
          "a SYN arriving when this many wait is dropped (listen; Linux: min(backlog, "
          "somaxconn); default 511, nginx's and Node's)", minimum=1),
    Param("until", "str", None, description="the stage, later on the same route, whose "
          "completion takes a connection off the accept queue (listen; required), or gives "
          "the worker back (pool; required)"),
    Param("size", "int", None, "requests", "requests a pool holds at once: its workers "
          "(pool; required); a request that finds them all held waits its turn",
          minimum=1),
    Param("rto", "float", None, "time unit", "first SYN retransmission timeout, doubled after "
          "each retransmission (listen; default 1 s, Linux's)", minimum=0,
          exclusive_minimum=True),
    Param("syn_retries", "int", None, "retransmissions", "SYN retransmissions before "
          "connect() fails (listen; default 6, Linux's tcp_syn_retries)", minimum=0,
          maximum=30),
    Param("description", "str", "", description="what the layer does"),
    Param("source", "str", "", description="where the numbers come from"),
])
PATH = Section("path", [
    Param("route", "list[str]", None, description="stages every class crosses, in order"),
    Param("routes", "table", None, description="per class: stages it crosses, in order"),
])
CLASS = Section("workload.classes", [
    Param("name", "str", description="class (command) name"),
    Param("weight", "float", 1.0, "", "share of requests", minimum=0, exclusive_minimum=True),
    Param("request_bytes", "float", 0.0, "bytes", "bytes the request carries", minimum=0),
    Param("reply_bytes", "float", 0.0, "bytes", "bytes the reply carries", minimum=0),
])
WORKLOAD = Section("workload", [
    Param("kind", "choice", choices=("open", "closed"), description="open or closed loop"),
    Param("interarrival", "dist", None, "time unit", "time between arrivals (open)"),
    Param("rate", "float", None, "1/time unit", "Poisson arrival rate (open)",
          minimum=0, exclusive_minimum=True),
    Param("clients", "int", None, "clients", "closed-loop clients", minimum=1),
    Param("connections", "int", None, "connections", "open: requests in flight at most, each "
          "on its own connection (wrk2 -c); a request due while all are busy waits in the "
          "client, its latency counted from when it was due (default: unbounded)", minimum=1),
    Param("pipeline", "int", 1, "requests", "requests each client sends in one message, "
          "waiting for all replies (redis-benchmark -P)", minimum=1),
    Param("think", "dist", 0.0, "time unit", "think time between a client's batches"),
    Param("requests", "int", 100_000, "requests", "measured outcomes per replication: "
          "completions, timeouts and connect failures (as ab -n counts)", minimum=1),
    Param("warmup", "float", 0.1, "fraction", "outcomes discarded first, as a fraction of "
          "requests", minimum=0, maximum=10),
    Param("timeout", "float", 0.0, "time unit", "a request not completed this long after its "
          "send is a failure, and a closed-loop client sends its next one; the old request "
          "still runs to its end (0: no timeout; ab -s, 30 s by default)", minimum=0),
    Param("report", "choice", "none", choices=("none", "ab", "wrk", "wrk2", "redis-benchmark"),
          description="extra report `uksim run` prints: ab = ab's requests per second, "
          "transfer rate and 'served within' table; wrk = wrk's latency distribution, "
          "Requests/sec and Transfer/sec; wrk2 = offered and achieved rate, latency "
          "percentiles from the intended send time; redis-benchmark = its throughput and "
          "latency summaries"),
    Param("classes", "any", None, description="request classes (array of tables)"),
])
RUN = Section("run", [
    Param("reps", "int", 5, "replications", "replications to start with", minimum=2),
    Param("precision", "float", 0.02, "fraction", "target relative half-width of the 95% CI "
          "of throughput and mean latency", minimum=0, exclusive_minimum=True),
    Param("max_reps", "int", 40, "replications", "cap on replications", minimum=2),
    Param("workers", "int", 0, "processes", "parallel processes (0: one per core)", minimum=0),
    Param("max_in_system", "int", 200_000, "requests", "more in the system at once counts "
          "as saturated", minimum=1),
])
TIMER = Section("timers.NAME", [
    Param("context", "str", description="execution context the work runs on"),
    Param("every", "float", description="period", unit="time unit", minimum=0,
          exclusive_minimum=True),
    Param("cost", "dist", description="work per firing (at speed 1)", unit="time unit"),
    Param("offset", "float", None, "time unit", "first firing (default: a random phase, "
          "uniform in [0, every), from the timer's own random stream)", minimum=0),
    Param("description", "str", "", description="what the periodic work is"),
])
SECTIONS = (SCENARIO, HOST, CONTEXT, DEVICE, STAGE, PATH, WORKLOAD, CLASS, RUN, TIMER)
TOP_KEYS = ("scenario", "host", "contexts", "devices", "stages", "path", "workload", "run",
            "timers", "sweep")


@dataclass(frozen=True)
class Model:
    """A resolved scenario in engine units (ns): what one replication runs."""

    name: str
    cores: int
    speed: float
    scheduling: str
    contexts: dict[str, tuple[int, tuple[int, ...], float]]  # threads, cores, wake (ns)
    devices: dict[str, DeviceSpec]
    stages: dict[str, StageSpec]
    routes: dict[str, list[str]]
    classes: list[RequestClass]
    kind: str
    interarrival: Distribution | None
    clients: int
    pipeline: int
    think: Distribution
    requests: int
    warmup: int
    max_in_system: int
    stage_order: list[str] = field(default_factory=list)
    timeout_ns: float = 0.0  # 0: none
    timers: dict[str, TimerSpec] = field(default_factory=dict)
    connections: int = 0  # open: requests in flight at most (0: unbounded)


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with the value read as TOML (a bare word is a string)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected KEY=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("--set", text, "expected KEY=VALUE with a dotted key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any, src: str = "--set") -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(src, ".".join(parts[: i + 1]), "is not a table; cannot set inside it")
        node = nxt
    node[parts[-1]] = value


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """Read, override, check and resolve a scenario: one resolved dict per sweep point."""
    src = str(path)
    raw = read_toml(path)
    for text in overrides or []:
        key, value = parse_override(text)
        apply_override(raw, key, value)
    return expand_and_resolve(raw, src)


def expand_and_resolve(raw: dict[str, Any], src: str) -> list[dict[str, Any]]:
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(src, key, f"unknown section; allowed: {', '.join(TOP_KEYS)}")
    sweep = raw.get("sweep", {})
    if not isinstance(sweep, dict):
        raise ConfigError(src, "sweep", "expected a table of \"dotted.key\" = [values]")
    keys = list(sweep)
    for k in keys:
        if not isinstance(sweep[k], list) or not sweep[k]:
            raise ConfigError(src, f"sweep.{k}", "expected a non-empty list of values")
        if k.split(".")[0] not in TOP_KEYS or k.startswith("sweep"):
            raise ConfigError(src, f"sweep.{k}", "must name a key of the scenario, e.g. "
                              "\"workload.clients\"")
    base = {k: v for k, v in raw.items() if k != "sweep"}
    points = []
    for values in itertools.product(*(sweep[k] for k in keys)) if keys else [()]:
        data = copy.deepcopy(base)
        for k, v in zip(keys, values, strict=True):
            apply_override(data, k, v, src=f"{src}: sweep")
        resolved = resolve(data, src)
        resolved["sweep_point"] = dict(zip(keys, values, strict=True))
        points.append(resolved)
    return points


def _table(raw: dict[str, Any], key: str, src: str) -> dict[str, Any]:
    t = raw.get(key, {})
    if not isinstance(t, dict):
        raise ConfigError(src, key, f"expected a table, got {type(t).__name__}")
    return t


def resolve(raw: dict[str, Any], src: str) -> dict[str, Any]:
    """Check every key and fill every default; cross-check names (contexts, stages...)."""
    out: dict[str, Any] = {"source": src}
    out["scenario"] = SCENARIO.resolve(_table(raw, "scenario", src), src, "scenario")
    host = out["host"] = HOST.resolve(_table(raw, "host", src), src, "host")
    out["contexts"] = {}
    contexts = _table(raw, "contexts", src)
    if not contexts:
        raise ConfigError(src, "contexts", "at least one execution context is needed")
    for name, t in contexts.items():
        c = CONTEXT.resolve(t, src, f"contexts.{name}")
        for core in c["cores"]:
            if core >= host["cores"]:
                raise ConfigError(src, f"contexts.{name}.cores",
                                  f"core {core} does not exist; host.cores = {host['cores']}")
        if not c["cores"]:
            raise ConfigError(src, f"contexts.{name}.cores", "needs at least one core")
        out["contexts"][name] = c
    out["devices"] = {n: DEVICE.resolve(t, src, f"devices.{n}")
                      for n, t in _table(raw, "devices", src).items()}
    out["stages"] = {}
    stages = _table(raw, "stages", src)
    if not stages:
        raise ConfigError(src, "stages", "at least one stage is needed")
    for name, t in stages.items():
        out["stages"][name] = _resolve_stage(name, t, out, src)
    out["workload"] = _resolve_workload(_table(raw, "workload", src), src)
    out["path"] = _resolve_path(_table(raw, "path", src), out, src)
    _check_listens(out, src)
    _check_notifications(out, src)
    out["timers"] = {}
    for name, t in _table(raw, "timers", src).items():
        tm = out["timers"][name] = TIMER.resolve(t, src, f"timers.{name}")
        if tm["context"] not in out["contexts"]:
            raise ConfigError(src, f"timers.{name}.context", f"unknown context "
                              f"{tm['context']!r}; defined: {', '.join(sorted(out['contexts']))}")
    out["run"] = RUN.resolve(_table(raw, "run", src), src, "run")
    if out["run"]["max_reps"] < out["run"]["reps"]:
        raise ConfigError(src, "run.max_reps", f"must be >= run.reps ({out['run']['reps']})")
    return out


ADMISSION_KEYS = ("backlog", "until", "rto", "syn_retries", "size")  # admission stages' keys
NOT_LISTEN = ("context", "device", "cost", "per_byte", "bytes", "per_command", "max_batch",
              "window", "per_batch", "batch_device", "batch_device_when", "suppressed_while",
              "chunk", "per_byte_beyond")
ADMISSION = ("listen", "pool")


def _resolve_stage(name: str, t: Any, out: dict[str, Any], src: str) -> dict[str, Any]:
    key = f"stages.{name}"
    s = STAGE.resolve(t, src, key)
    kind = s["kind"]
    needs = {"cpu": ("context",), "batch": ("context",), "device": ("device",), "delay": (),
             "listen": ("until",), "pool": ("until", "size")}[kind]
    for k in needs:
        if k not in s:
            raise ConfigError(src, f"{key}.{k}", f"a {kind} stage needs {k}")
    forbidden = {
        "cpu": ("device", "max_batch", "batch_device", *ADMISSION_KEYS),
        "delay": ("context", "device", "max_batch", "batch_device", "suppressed_while",
                  "chunk", *ADMISSION_KEYS),
        "device": ("context", "max_batch", "batch_device", "suppressed_while", "chunk",
                   "per_byte_beyond", *ADMISSION_KEYS),
        "batch": ("device", "suppressed_while", "chunk", *ADMISSION_KEYS),
        "listen": (*NOT_LISTEN, "size"),
        "pool": (*NOT_LISTEN, "backlog", "rto", "syn_retries"),
    }[kind]
    for k in forbidden:
        if k in t:
            raise ConfigError(src, f"{key}.{k}", f"does not apply to a {kind} stage")
    if s["per_byte_beyond"] and s["chunk"]:
        raise ConfigError(src, f"{key}.per_byte_beyond", "a stage read in chunks pays per byte "
                          "of each chunk; drop per_byte_beyond or chunk")
    if s["per_byte_beyond"] and s["bytes"] == "none":
        raise ConfigError(src, f"{key}.per_byte_beyond", 'counts bytes past a buffer, but the '
                          'stage carries none (bytes = "none")')
    if "context" in s and s["context"] not in out["contexts"]:
        raise ConfigError(src, f"{key}.context", f"unknown context {s['context']!r}; defined: "
                          f"{', '.join(sorted(out['contexts']))}")
    for k in ("device", "batch_device"):
        if k in s and s[k] not in out["devices"]:
            known = ", ".join(sorted(out["devices"])) or "none"
            raise ConfigError(src, f"{key}.{k}", f"unknown device {s[k]!r}; defined: {known}")
    if kind == "batch":
        s.setdefault("max_batch", 64)
    if kind == "listen":
        s.setdefault("backlog", 511)
        s.setdefault("rto", 1e9 / UNITS_NS[out["scenario"]["time_unit"]])  # 1 s
        s.setdefault("syn_retries", 6)
    return s


def _check_listens(out: dict[str, Any], src: str) -> None:
    """Each listen or pool stage's ``until`` is a stage after it on every route that
    crosses it (a listen stage's accepts the connection; a pool's gives the worker back)."""
    stages = out["stages"]
    p = out["path"]
    routes = {"": p["route"]} if "route" in p else p["routes"]
    for name, s in stages.items():
        kind = s["kind"]
        if kind not in ADMISSION:
            continue
        key = f"stages.{name}.until"
        until = s["until"]
        if until not in stages:
            raise ConfigError(src, key, f"unknown stage {until!r}; defined: "
                              f"{', '.join(sorted(stages))}")
        if stages[until]["kind"] in ADMISSION:
            raise ConfigError(src, key, f"{until!r} is a {stages[until]['kind']} stage; name "
                              "the stage that " + ("accepts the connection" if kind == "listen"
                                                   else "ends the worker's part"))
        for cls, route in routes.items():
            if name not in route:
                continue
            where = f"path.routes.{cls}" if "routes" in p else "path.route"
            if route.count(name) > 1:
                raise ConfigError(src, where, f"crosses the {kind} stage {name!r} more than "
                                  "once")
            if until not in route[route.index(name) + 1:]:
                raise ConfigError(src, key, f"{until!r} is not after {name!r} on {where}: " + (
                    "a connection would never leave the accept queue" if kind == "listen"
                    else "a request would never give its worker back"))


def _check_notifications(out: dict[str, Any], src: str) -> None:
    """A notification watches cpu stages, and its own cost is a fixed one."""
    stages = out["stages"]
    for name, s in stages.items():
        key = f"stages.{name}.suppressed_while"
        for w in s["suppressed_while"]:
            if w not in stages:
                raise ConfigError(src, key, f"unknown stage {w!r}; defined: "
                                  f"{', '.join(sorted(stages))}")
            if stages[w]["kind"] != "cpu" or stages[w]["suppressed_while"]:
                raise ConfigError(src, key, f"{w!r} must be a cpu stage that is not itself a "
                                  "notification (its messages are counted while it works)")
            if stages[w]["chunk"]:
                raise ConfigError(src, key, f"{w!r} is handled in chunks; a watched stage "
                                  "must be one task per message")
        if s["suppressed_while"] and (s["per_byte"] or s["per_command"] or s["chunk"]):
            raise ConfigError(src, key, "a notification costs a fixed amount per message: "
                              "drop per_byte, per_command and chunk")
    # a watched stage must be a task of its own: inside a batch its messages would never
    # be counted, and the notification would be paid every time
    watchers = {w: n for n, s in stages.items() for w in s["suppressed_while"]}
    p = out["path"]
    routes = {"path.route": p["route"]} if "route" in p else {
        f"path.routes.{c}": r for c, r in p["routes"].items()}
    for where, route in routes.items():
        open_batch: str | None = None  # the context of the batch the stages follow
        for name in route:
            s = stages[name]
            if s["kind"] == "batch":
                open_batch = s["context"]
                continue
            ctx = s.get("context")
            threads = out["contexts"][ctx]["threads"] if ctx else 1
            if not batch_absorbs(open_batch, s["kind"], ctx, threads, s["chunk"]):
                open_batch = None
            elif name in watchers and not s["suppressed_while"]:
                raise ConfigError(src, f"stages.{watchers[name]}.suppressed_while",
                                  f"watches {name!r}, which runs inside the batch before it "
                                  f"on {where} (same context, one thread): its messages are "
                                  "never counted there; watch a stage that is a task of its "
                                  "own")


def _resolve_workload(t: dict[str, Any], src: str) -> dict[str, Any]:
    w = WORKLOAD.resolve(t, src, "workload")
    if w["kind"] == "open":
        if ("interarrival" in w) == ("rate" in w):
            raise ConfigError(src, "workload", "an open workload needs exactly one of "
                              "interarrival or rate")
        for k in ("clients",):
            if k in w:
                raise ConfigError(src, f"workload.{k}", "does not apply to an open workload")
        if w["pipeline"] != 1:
            raise ConfigError(src, "workload.pipeline", "does not apply to an open workload")
        if "interarrival" in w and parse_distribution(
                w["interarrival"], src, "workload.interarrival").mean <= 0:
            raise ConfigError(src, "workload.interarrival", "must have a mean > 0 (zero "
                              "would send endless requests at one instant)")
    else:
        if "clients" not in w:
            raise ConfigError(src, "workload.clients", "a closed workload needs clients")
        for k in ("interarrival", "rate"):
            if k in w:
                raise ConfigError(src, f"workload.{k}", "does not apply to a closed workload")
        if "connections" in w:
            raise ConfigError(src, "workload.connections", "does not apply to a closed "
                              "workload (each of its clients is a connection)")
    classes = w.get("classes", [{"name": "request"}])
    if not isinstance(classes, list) or not classes:
        raise ConfigError(src, "workload.classes", "expected a non-empty array of tables")
    resolved = []
    for i, c in enumerate(classes):
        resolved.append(CLASS.resolve(c, src, f"workload.classes[{i}]"))
    names = [c["name"] for c in resolved]
    if len(set(names)) != len(names):
        raise ConfigError(src, "workload.classes", f"class names repeat: {names}")
    w["classes"] = resolved
    return w


def _resolve_path(t: dict[str, Any], out: dict[str, Any], src: str) -> dict[str, Any]:
    p = PATH.resolve(t, src, "path")
    names = [c["name"] for c in out["workload"]["classes"]]
    if ("route" in p) == ("routes" in p):
        raise ConfigError(src, "path", "needs exactly one of route (every class) or routes "
                          "(per class)")
    routes = {n: p["route"] for n in names} if "route" in p else p["routes"]
    for n in names:
        if n not in routes:
            raise ConfigError(src, f"path.routes.{n}", "missing: every workload class needs a "
                              "route")
    for cls, route in routes.items():
        key = f"path.routes.{cls}" if "routes" in p else "path.route"
        if cls not in names:
            raise ConfigError(src, key, f"no workload class {cls!r}; classes: {', '.join(names)}")
        if not isinstance(route, list) or not route or not all(isinstance(s, str) for s in route):
            raise ConfigError(src, key, "expected a non-empty list of stage names")
        for s in route:
            if s not in out["stages"]:
                raise ConfigError(src, key, f"unknown stage {s!r}; defined: "
                                  f"{', '.join(sorted(out['stages']))}")
    return p


def to_model(r: dict[str, Any]) -> Model:
    """Convert a resolved scenario to engine units (ns) and engine objects."""
    src = r["source"]
    u = UNITS_NS[r["scenario"]["time_unit"]]

    def dist(spec: Any, key: str) -> Distribution:
        return parse_distribution(spec, src, key).scaled(u)

    stages = {}
    for name, s in r["stages"].items():
        stages[name] = StageSpec(
            name=name, kind=s["kind"],
            cost=Cost(dist(s["cost"], f"stages.{name}.cost"), s["per_byte"] * u, s["bytes"],
                      s["per_command"] * u, float(s["per_byte_beyond"])),
            context=s.get("context"), device=s.get("device"), max_batch=s.get("max_batch", 1),
            window_ns=s["window"] * u, per_batch=dist(s["per_batch"], f"stages.{name}.per_batch"),
            batch_device=s.get("batch_device"),
            batch_device_when=tuple(s["batch_device_when"]),
            backlog=s.get("backlog", 0), until=s.get("until"), rto_ns=s.get("rto", 0.0) * u,
            syn_retries=s.get("syn_retries", 0), size=s.get("size", 0),
            suppressed_while=tuple(s["suppressed_while"]), chunk_bytes=s["chunk"],
            description=s["description"],
        )
    devices = {n: DeviceSpec(n, dist(d["service"], f"devices.{n}.service"), d["per_byte"] * u,
                             d["servers"], d["description"])
               for n, d in r["devices"].items()}
    w = r["workload"]
    classes = [RequestClass(c["name"], c["weight"], c["request_bytes"], c["reply_bytes"])
               for c in w["classes"]]
    p = r["path"]
    routes = ({c.name: list(p["route"]) for c in classes} if "route" in p
              else {k: list(v) for k, v in p["routes"].items()})
    if w["kind"] == "open":
        inter = (dist(w["interarrival"], "workload.interarrival") if "interarrival" in w
                 else dist({"dist": "exponential", "rate": w["rate"]}, "workload.rate"))
    else:
        inter = None
    return Model(
        name=r["scenario"]["name"], cores=r["host"]["cores"], speed=r["host"]["speed"],
        scheduling=r["host"]["scheduling"],
        contexts={n: (c["threads"], tuple(c["cores"]), c["wake"] * u)
                  for n, c in r["contexts"].items()},
        devices=devices, stages=stages, routes=routes, classes=classes, kind=w["kind"],
        interarrival=inter, clients=w.get("clients", 0), pipeline=w["pipeline"],
        think=dist(w["think"], "workload.think"), requests=w["requests"],
        warmup=round(w["warmup"] * w["requests"]), max_in_system=r["run"]["max_in_system"],
        stage_order=list(r["stages"]), timeout_ns=w["timeout"] * u,
        timers={n: TimerSpec(n, t["context"], t["every"] * u, dist(t["cost"], f"timers.{n}.cost"),
                             None if t.get("offset") is None else t["offset"] * u)
                for n, t in r.get("timers", {}).items()},
        connections=w.get("connections") or 0,
    )
