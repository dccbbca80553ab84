"""Composition: a host, a platform, an application and a load generator become a scenario.

The model files in ``models/`` describe pieces of an I/O path declaratively:

* ``hosts/NAME.toml``: cores, speed, where each role (client, server, vhost) runs, and
  the client's socket calls on the host OS;
* ``platforms/NAME.toml``: the platform's contexts, its storage device for the AOF, its
  stages, and its words for the pieces of the path (``[vars]``: ``to_server``,
  ``recv``, ``send``, ``to_client``, ``poll``; for HTTP ``handshake``, ``accept``,
  ``close``, and where the path's MSS is modelled ``mss``, ``send_tail``,
  ``quick_ack``); ``include`` pulls in shared pieces (``common/kvm_host``);
* ``apps/NAME.toml``: the server's stages, the route a command takes through it, and
  what each command does (looks a key up, changes data);
* ``workloads/NAME.toml``: the load generator's stages, its send and receive path and its
  tests (command, bytes each way); ``[workload] kind`` says how it sends: a closed loop
  of ``clients`` connections (redis-benchmark, ab, wrk), or an open load at a ``rate``
  with ``arrivals`` ``fixed`` (evenly spaced, wrk2's ``-R``) or ``poisson``, over at most
  ``connections`` connections (wrk2). ``include`` in ``[workload]`` pulls in another
  workload's stages, path and tests (wrk2 is wrk with a schedule).

:func:`compose` joins them for one test into a scenario in the same form as a
hand-written scenario file (every cost a number of ns, evaluated from the parameter set),
so the same loader checks it and the same runner runs it. The route of a request is::

    workload.send + platform.to_server + app.route + platform.to_client + workload.receive

where the app's route uses the platform's ``$recv`` and ``$send`` stages. An item of the
app's route may hold a condition (``"$accept if connect"``, ``"$quick_ack if split and
keepalive"``): ``connect`` (a connection per request) or ``keepalive``, ``split`` (the
reply leaves as two packets, see :func:`_splits`), or a command's own true keys
(``writes``). A ``pool`` stage's ``size = "$processes"`` is the app's processes that
run (one where the platform cannot fork). ``$log``, an app's log line, takes the path a run chooses
(``Settings.log``, ``--log``): the platform's own (``vars.log``: a pipe on Linux, the
console on the unikernels), none, or another the platform names (``vars.log_syslog``: an
RFC 5424 datagram to a collector on the host); by default the app's ``[app] log``
(nginx: none, as the harness runs it), else the platform's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sim.errors import ConfigError, UksimError
from sim.parameters import ParameterSet, evaluate
from sim.resources import models_dir
from sim.scenario import read_toml
from sim.stages import STAGE_KINDS

COST_KEYS = ("cost", "per_byte", "per_command", "per_batch", "window")
ARRIVALS = ("fixed", "poisson")
NS_PER_S = 1e9
PLATFORM_VARS = ("to_server", "recv", "send", "to_client", "poll")


@dataclass(frozen=True)
class Settings:
    """What an experiment chooses: the load, the AOF switch and how long to run."""

    clients: int | None = None  # None: the workload's default (an open load's connections)
    pipeline: int | None = None
    keepalive: bool | None = None  # None: the workload's default (ab: off, wrk: on)
    page_bytes: int | None = None  # a static page's size (bytes), where the app serves one
    requests: int | None = None
    rate: float | None = None  # requests/s of an open load (wrk2 -R); only for one
    arrivals: str | None = None  # an open load's: "fixed" or "poisson"; None: the workload's
    timeout: float | None = None  # s: a request not answered in time fails (ab -s); None: none
    warmup: float = 0.1
    aof: bool = True
    reps: int = 3
    max_reps: int = 12
    precision: float = 0.02
    workers: int = 1
    placement: dict[str, list[int]] = field(default_factory=dict)
    log: str | None = None  # where an app's log line goes: None the app's default ([app] log,
    # else "platform"), "platform" the platform's own path (vars.log), "none" nowhere, any
    # other NAME the platform's path vars.log_NAME (e.g. "syslog": RFC 5424 over UDP)


def _file(kind: str, name: str) -> Path:
    path = models_dir() / kind / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (models_dir() / kind).glob("*.toml"))
        raise ConfigError(str(models_dir() / kind), name,
                          f"unknown {kind[:-1]}; known: {', '.join(known)}")
    return path


@lru_cache(maxsize=64)
def _load(kind: str, name: str) -> tuple[str, dict[str, Any]]:
    path = _file(kind, name)
    data = read_toml(path)
    head = {**data.get("host", {}), **data.get("platform", {}), **data.get("workload", {})}
    for inc in head.get("include", []):
        inc_path = models_dir() / kind / f"{inc}.toml"
        if not inc_path.is_file():
            raise ConfigError(str(path), "include", f"no file {inc}.toml in {kind}/")
        extra = read_toml(inc_path)
        for section in ("contexts", "stages", "devices", "path", "tests"):
            for k, v in extra.get(section, {}).items():
                data.setdefault(section, {}).setdefault(k, v)
    return str(path), data


def platform_names() -> list[str]:
    return sorted(p.stem for p in (models_dir() / "platforms").glob("*.toml"))


def workload_tests(workload: str) -> list[str]:
    return list(_load("workloads", workload)[1].get("tests", {}))


def default_workload(app: str) -> str:
    """The load generator an app is driven with unless another is named: its file's
    ``[app] workload`` (Redis: redis-benchmark; the HTTP services: ab)."""
    src, a = _load("apps", app)
    name = a.get("app", {}).get("workload", "redis-benchmark")
    known = sorted(p.stem for p in (models_dir() / "workloads").glob("*.toml"))
    if name not in known:
        raise ConfigError(src, "app.workload", f"unknown workload {name!r}; known: "
                          f"{', '.join(known)}")
    return name


def persists(app: str) -> bool:
    """Whether ``app`` has an append-only file (a device its event loop waits for before
    replying: Redis's AOF), which the ``aof`` setting turns on and off."""
    _src, a = _load("apps", app)
    return any(isinstance(s, dict) and "batch_device" in s
               for s in a.get("stages", {}).values())


def pipelines(workload: str) -> bool:
    """Whether the load generator can write several requests at once (``-P``)."""
    wl = _load("workloads", workload)[1].get("workload", {})
    return bool(wl.get("pipelining", wl.get("kind", "closed") == "closed"))


def compose(host: str, platform: str, app: str, workload: str, test: str,
            params: ParameterSet, settings: Settings) -> dict[str, Any]:
    """The raw scenario (as if read from a TOML file) for one test on one platform."""
    h_src, h = _load("hosts", host)
    p_src, p = _load("platforms", platform)
    a_src, a = _load("apps", app)
    w_src, w = _load("workloads", workload)
    tests = w.get("tests", {})
    if test not in tests:
        raise ConfigError(w_src, f"tests.{test}", f"unknown test; known: {', '.join(tests)}")
    t = tests[test]
    commands = a.get("commands", {})
    cmd = t.get("command")
    if cmd not in commands:
        raise ConfigError(a_src, f"commands.{cmd}", f"test {test} runs {cmd!r}, which the app "
                          f"does not define; defined: {', '.join(commands)}")
    cmd_spec = {**commands[cmd], **t}  # the test's own sizes override the app's
    if settings.page_bytes is not None or "page_bytes" in cmd_spec:
        cmd_spec["reply_bytes"] = _page_reply(cmd_spec, settings.page_bytes, a_src,
                                              f"commands.{cmd}")
    flags = {k for k, v in cmd_spec.items() if v is True}
    wl = w.get("workload", {})
    keepalive = settings.keepalive if settings.keepalive is not None else wl.get("keepalive", True)
    flags.add("keepalive" if keepalive else "connect")  # connect: a connection per request
    variables = p.get("vars", {})
    for v in PLATFORM_VARS:
        if v not in variables:
            raise ConfigError(p_src, f"vars.{v}", "missing; a platform names " +
                              ", ".join(PLATFORM_VARS))
    if _splits(a.get("serve", {}), cmd_spec, variables, params, a_src, p_src):
        flags.add("split")

    # the route
    def stage_list(value: Any, src: str, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ConfigError(src, key, "expected a list of stage names")
        return value

    app_route: list[str] = []
    logs = False
    for item in stage_list(a.get("serve", {}).get("route"), a_src, "serve.route"):
        name, _, cond = item.partition(" if ")
        if cond and not all(c.strip() in flags for c in cond.split(" and ")):
            continue
        name = name.strip()
        if name == "$log":
            logs = True
            dest = settings.log or a.get("app", {}).get("log", "platform")
            app_route += _log_path(dest, variables, platform, p_src, a_src)
        elif name.startswith("$"):
            app_route += stage_list(variables.get(name[1:]), p_src, f"vars.{name[1:]}")
        else:
            app_route.append(name)
    if settings.log is not None and not logs:
        raise UksimError(f"log destination {settings.log!r}: the app {app} writes no log "
                         f"line (its route in {a_src} has no $log)")
    wpath = w.get("path", {})
    route = (stage_list(wpath.get("send"), w_src, "path.send")
             + stage_list(variables["to_server"], p_src, "vars.to_server") + app_route
             + stage_list(variables["to_client"], p_src, "vars.to_client")
             + stage_list(wpath.get("receive"), w_src, "path.receive"))
    if "connect" in flags:
        # connect: the client's SYN crosses the path to the server's stack and its SYN-ACK
        # comes back before the request is written; the client closes after the response
        for key in ("connect", "close"):
            if key not in wpath:
                raise ConfigError(w_src, f"path.{key}", "missing: needed without keep-alive")
        if "handshake" not in variables:
            raise ConfigError(p_src, "vars.handshake", "missing: the platform has no "
                              "connection set-up path (needed without keep-alive)")
        route = (stage_list(wpath["connect"], w_src, "path.connect")
                 + stage_list(variables["handshake"], p_src, "vars.handshake") + route
                 + stage_list(wpath["close"], w_src, "path.close"))

    # the stages it crosses, with costs evaluated (a service the app calls, such as vote's
    # Redis, brings its own stages and context)
    pools = [(h_src, h), (p_src, p), (a_src, a), (w_src, w),
             *(_load("services", svc) for svc in _services(a, a_src))]
    stages: dict[str, Any] = {}
    for name in route:
        if name in stages:
            continue
        for src, data in pools:
            if name in data.get("stages", {}):
                spec = copy.deepcopy(data["stages"][name])
                if not isinstance(spec, dict) or spec.get("kind") not in STAGE_KINDS:
                    kind = spec.get("kind") if isinstance(spec, dict) else spec
                    raise ConfigError(src, f"stages.{name}.kind", f"unknown stage kind {kind!r}; "
                                      f"allowed: {', '.join(STAGE_KINDS)}")
                for k in COST_KEYS:
                    if k in spec:
                        spec[k] = evaluate(spec[k], params, variables, src,
                                           f"stages.{name}.{k}")
                stages[name] = spec
                break
        else:
            raise ConfigError(p_src, "vars", f"stage {name!r} on the route of {test} is defined "
                              "in none of the host, platform, app or workload files")
    # a notification watches stages of the path: those this route does not cross never
    # hold its messages (a name defined nowhere is a mistake)
    for name, spec in stages.items():
        watched = spec.get("suppressed_while", [])
        for w in watched:
            if not any(w in data.get("stages", {}) for _src, data in pools):
                raise ConfigError(p_src, f"stages.{name}.suppressed_while",
                                  f"names the stage {w!r}, defined in no model file")
        if watched:
            spec["suppressed_while"] = [w for w in watched if w in stages]
    _add_variability(stages, params)
    writes = "writes" in flags
    for spec in stages.values():
        if "batch_device" in spec:
            if writes and settings.aof:
                spec["batch_device_when"] = [test]
            else:
                del spec["batch_device"]

    # contexts: roles placed on the host's cores
    host_roles = h.get("placement", {})
    cores = h.get("host", {}).get("cores")
    for role, where in settings.placement.items():  # pinned by the user (--pin)
        if isinstance(cores, int) and any(c >= cores for c in where):
            raise UksimError(f"--pin {role}={','.join(map(str, where))}: host {host} has "
                             f"{cores} cores (0 to {cores - 1})")
    placement = {**host_roles, **settings.placement}
    # a server of several processes (gunicorn's workers) on a platform that cannot fork
    # (a unikernel) runs them as one: the mechanism, not a fitted factor
    app_info = a.get("app", {})
    processes = app_info.get("processes", 1)
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise ConfigError(a_src, "app.processes",
                          f"expected a whole number >= 1, got {processes!r}")
    if not p.get("platform", {}).get("fork", True):
        processes = 1
    # a pool of workers as large as the processes that run (gunicorn's sync workers)
    for spec in stages.values():
        if spec.get("kind") == "pool" and spec.get("size") == "$processes":
            spec["size"] = processes
    contexts: dict[str, Any] = {}
    roles_used: set[str] = set()
    used = {s["context"] for s in stages.values() if "context" in s}
    for _src, data in pools:
        for name, c in data.get("contexts", {}).items():  # first definition wins
            if name in used and name not in contexts:
                c = dict(c)
                role = c.get("cores", name)
                if name == "server" and processes > 1:
                    c["threads"] = processes
                    role = variables.get("cpus", role)  # processes go where the OS puts them
                if isinstance(role, str):
                    if role not in placement:
                        raise ConfigError(h_src, f"placement.{role}", "missing: no core for "
                                          f"the {role} role (or pin it: --pin {role}=CORES)")
                    c["cores"] = placement[role]
                    roles_used.add(role)
                if "wake" in c:
                    c["wake"] = evaluate(c["wake"], params, variables, _src,
                                         f"contexts.{name}.wake")
                contexts[name] = c
    for name in used - set(contexts):
        if name not in placement:
            raise ConfigError(h_src, f"placement.{name}", f"missing: no core for {name} (or "
                              f"pin it: --pin {name}=CORES)")
        contexts[name] = {"cores": placement[name]}
        roles_used.add(name)
    # a pinned role must be one the host places or one this run uses (a typo is not ignored)
    for role in settings.placement:
        if role not in host_roles and role not in roles_used:
            raise UksimError(f"--pin {role}=...: no context of this run has the role "
                             f"{role!r}; the host {host} places "
                             f"{', '.join(sorted(host_roles))}")

    devices = {}
    needed = {s.get("batch_device") for s in stages.values()} | {
        s.get("device") for s in stages.values()}
    for name, d in p.get("devices", {}).items():
        if name in needed:
            d = dict(d)
            d.pop("source", None)
            if "service" in d:
                d["service"] = _gamma(evaluate(d["service"], params, variables, p_src,
                                               f"devices.{name}.service"),
                                      params["variability.flush_cv"])
            if "per_byte" in d:
                d["per_byte"] = evaluate(d["per_byte"], params, variables, p_src,
                                         f"devices.{name}.per_byte")
            devices[name] = d

    timers = {}
    for name, spec in a.get("timers", {}).items():
        if not isinstance(spec, dict):
            raise ConfigError(a_src, f"timers.{name}", "expected a table")
        tm = {k: v for k, v in spec.items() if k != "source"}
        for k in ("every", "cost"):
            if k not in tm:
                raise ConfigError(a_src, f"timers.{name}.{k}", "missing")
            tm[k] = evaluate(tm[k], params, variables, a_src, f"timers.{name}.{k}")
        if tm.get("context", "server") not in contexts:
            raise ConfigError(a_src, f"timers.{name}.context",
                              f"no context {tm.get('context')!r} on this path")
        tm["cost"] = _gamma(tm["cost"], params["variability.cpu_cv"])
        timers[name] = tm
    hh = h.get("host", {})
    return {
        "scenario": {"name": f"{platform}/{test}", "time_unit": "ns",
                     "description": f"{workload} {test} against {app} on {platform} ({host})"},
        "host": {"name": hh.get("name", host), "cores": hh.get("cores", 1),
                 "speed": hh.get("speed", 1.0) * params["host.speed"]},
        "contexts": contexts,
        "devices": devices,
        "stages": {n: {k: v for k, v in s.items() if k != "source"} for n, s in stages.items()},
        "path": {"route": route},
        "workload": {
            **_sending(w_src, workload, wl, settings),
            "requests": settings.requests or wl.get("requests", 100000),
            "warmup": settings.warmup,
            **({"report": wl["report"]} if "report" in wl else {}),
            "classes": [{"name": test, "request_bytes": float(cmd_spec.get("request_bytes", 0)),
                         "reply_bytes": float(cmd_spec.get("reply_bytes", 0))}],
        },
        **({"timers": timers} if timers else {}),
        "run": {"reps": settings.reps, "max_reps": settings.max_reps,
                "precision": settings.precision, "workers": settings.workers},
    }


def _services(app: dict[str, Any], a_src: str) -> list[str]:
    """The services an app reaches over the network (PostgreSQL, Redis): each modelled."""
    services = app.get("app", {}).get("services", [])
    if not isinstance(services, list):
        raise ConfigError(a_src, "app.services", "expected a list of service names")
    for svc in services:
        if not (models_dir() / "services" / f"{svc}.toml").is_file():
            known = sorted(q.stem for q in (models_dir() / "services").glob("*.toml"))
            raise ConfigError(a_src, "app.services", f"names the service {svc!r}, which has no "
                              f"model (models/services/{svc}.toml); known: {', '.join(known)}")
    return services


def _log_path(dest: Any, variables: dict[str, Any], platform: str, p_src: str,
              a_src: str) -> list[str]:
    """The stages an app's log line crosses: the platform's own path (``platform``: its
    ``vars.log``), none, or the platform's ``vars.log_NAME`` (``syslog``: ``log_syslog``)."""
    if not isinstance(dest, str):
        raise ConfigError(a_src, "app.log", f"expected a log destination name, got {dest!r}")
    if dest == "none":
        return []
    key = "log" if dest == "platform" else f"log_{dest}"
    if key not in variables:
        if dest == "platform":
            raise ConfigError(p_src, "vars.log", "missing: the app writes a log line ($log)")
        known = sorted(k[4:] for k in variables if k.startswith("log_"))
        raise UksimError(f"log destination {dest!r}: the platform {platform} has no such "
                         f"path (vars.log_{dest} in {p_src}); it has: "
                         f"{', '.join(['platform', 'none', *known])}")
    value = variables[key]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ConfigError(p_src, f"vars.{key}", "expected a list of stage names")
    return value


def _sending(src: str, name: str, wl: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """How the load generator sends: a closed loop's clients and pipeline, or an open
    load's arrivals (ns apart) and connections; and its timeout. A setting that does not
    apply to the generator is an error, not ignored."""
    kind = wl.get("kind", "closed")
    if kind not in ("open", "closed"):
        raise ConfigError(src, "workload.kind", f"expected open or closed, got {kind!r}")
    out: dict[str, Any] = {"kind": kind}
    if settings.timeout is not None:
        if not settings.timeout > 0:
            raise UksimError(f"--timeout must be > 0 s, got {settings.timeout}")
        out["timeout"] = settings.timeout * NS_PER_S
    pipeline = settings.pipeline or wl.get("pipeline", 1)
    if pipeline > 1 and not pipelines(name):
        raise UksimError(f"-P {pipeline}: {name} writes one request at a time (no pipelining)")
    if kind == "closed":
        if settings.rate is not None:
            raise UksimError(f"--rate {settings.rate:g}: {name} is a closed loop (each "
                             "connection sends its next request when the last reply is in), "
                             "so the server sets its rate; for a fixed rate use --workload "
                             "wrk2")
        if settings.arrivals is not None:
            raise UksimError(f"--arrivals {settings.arrivals}: {name} is a closed loop; "
                             "arrivals apply to an open-loop generator (wrk2)")
        return {**out, "clients": settings.clients or wl.get("clients", 1),
                "pipeline": pipeline}
    rate = settings.rate if settings.rate is not None else wl.get("rate")
    if rate is None:
        raise UksimError(f"{name} sends at a fixed rate: give it with --rate REQUESTS_PER_S")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise UksimError(f"the rate of {name} must be > 0 requests/s, got {rate!r}")
    arrivals = settings.arrivals or wl.get("arrivals", "fixed")
    if arrivals not in ARRIVALS:
        raise ConfigError(src, "workload.arrivals", f"expected one of {', '.join(ARRIVALS)}, "
                          f"got {arrivals!r}")
    spacing = NS_PER_S / rate
    out["interarrival"] = (spacing if arrivals == "fixed"
                           else {"dist": "exponential", "mean": spacing})
    connections = settings.clients or wl.get("connections")
    if connections is not None:
        out["connections"] = connections
    return out


def _splits(serve: dict[str, Any], cmd_spec: dict[str, Any], variables: dict[str, Any],
            params: ParameterSet, a_src: str, p_src: str) -> bool:
    """Whether the reply leaves as two packets: written corked (nginx's sendfile under
    ``tcp_nopush``: TCP_CORK) and larger than the path's MSS, its full segments go as soon
    as they fill (one GSO packet) and the tail when the app uncorks. A platform that
    gives no ``mss`` carries every reply in one packet (its segmentation is not modelled)."""
    cork = serve.get("cork", False)
    if not isinstance(cork, bool):
        raise ConfigError(a_src, "serve.cork", f"expected true or false, got {cork!r}")
    if not cork or "mss" not in variables:
        return False
    mss = evaluate(variables["mss"], params, variables, p_src, "vars.mss")
    if mss <= 0:
        raise ConfigError(p_src, "vars.mss", f"expected a segment size in bytes > 0, got {mss:g}")
    return float(cmd_spec.get("reply_bytes", 0)) > mss


def _page_reply(spec: dict[str, Any], page: int | None, src: str, key: str) -> float:
    """A static page's reply: the response headers and the page (its size as measured)."""
    if "page_bytes" not in spec:
        raise ConfigError(src, f"{key}.page_bytes", "missing: the experiment sets the page "
                          "size, but this command serves no static page")
    if "reply_bytes" in spec:
        raise ConfigError(src, f"{key}.reply_bytes", "give page_bytes and header_bytes for a "
                          "static page, not reply_bytes")
    size = spec["page_bytes"] if page is None else page
    headers = spec.get("header_bytes", 0)
    for k, v in (("page_bytes", size), ("header_bytes", headers)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError(src, f"{key}.{k}", f"expected a size in bytes >= 0, got {v!r}")
    return float(headers + size)


def _gamma(mean: float, cv: float) -> Any:
    """A gamma-distributed cost of this mean and coefficient of variation (or the number)."""
    if mean <= 0 or cv <= 0:
        return mean
    return {"dist": "gamma", "mean": mean, "cv": cv}


def _add_variability(stages: dict[str, Any], params: ParameterSet) -> None:
    """Make each stage's fixed costs random around their means (models/parameters.toml)."""
    cv = params["variability.cpu_cv"]
    for spec in stages.values():
        for k in ("cost", "per_batch"):
            if k in spec:
                spec[k] = _gamma(spec[k], cv)

