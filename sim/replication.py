"""One replication: assemble a model's parts on a fresh kernel, run it, summarise it.

Assembly has explicit phases: build (cores, contexts and their scheduling domains,
devices, timers), connect (compile each class's route into segments, attach the workload
and the recorder), run (until the recorder has its count, or saturation), collect (a
picklable :class:`RepResult`). Every random stream is named after the component that
draws from it, so the numbers a component sees depend on (seed, replication, its name)
alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.cpu import Context, Core, build_domains
from sim.devices import Device
from sim.kernel import Kernel
from sim.paths import Segmenter, build_path
from sim.randomness import Distribution, stream
from sim.scenario import Model
from sim.stages import Accounts, Sink
from sim.stats.recorder import Recorder
from sim.timers import Timer
from sim.workload import ClosedSource, OpenSource, class_picker

if TYPE_CHECKING:
    import networkx as nx

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
# ab's "percentage of the requests served within a certain time" (100: the longest)
SERVED_WITHIN = (50, 66, 75, 80, 90, 95, 98, 99, 100)
ERRORS = ("timeouts", "connect_failures", "syn_retransmits")
BACKLOG = "workload.backlog"  # the account of requests waiting in their client (open load)


@dataclass
class RepResult:
    rep: int
    completed: int
    window_ns: float
    throughput_per_ns: float
    mean_ns: float
    quantiles_ns: dict[str, float]
    max_ns: float
    histogram_counts: np.ndarray
    hist_total_ns: float
    hist_min_ns: float
    mean_in_system: float
    saturated: bool
    events: int
    wall_seconds: float
    stage_ns: dict[str, np.ndarray] = field(default_factory=dict)
    utilisation: dict[str, float] = field(default_factory=dict)
    # the run's batch means (count, latency sum and time span per batch); intervals from
    # them are computed by whoever needs them (the runner uses replications)
    batches: Any = None
    # failures and SYN retransmissions within the window (see ERRORS)
    errors: dict[str, int] = field(default_factory=dict)
    # ab's table: percent -> latency (ns) within which that share of completions came
    served_within_ns: dict[str, float] = field(default_factory=dict)
    # time requests that failed spent in the system, per completed request (ns)
    failed_ns: float = 0.0
    # how fast latency grew over the window: ns of latency per ns of run (0: steady)
    latency_slope: float = math.nan


def account_names(model: Model) -> list[str]:
    """What a replication books time to, in order: the stages, the timers (``timer.NAME``)
    and, for an open load that bounds its connections, the time requests wait in it for
    one (:data:`BACKLOG`)."""
    backlog = [BACKLOG] if model.kind == "open" and model.connections else []
    return [*model.stage_order, *(f"timer.{n}" for n in model.timers), *backlog]


class Assembly:
    """The runtime objects of one replication (exposed for tests and ``explain``)."""

    def __init__(self, model: Model, seed: int, rep: int) -> None:
        self.model = model
        self.seed, self.rep = seed, rep
        self.kernel = k = Kernel()
        # build
        cores = [Core(i, model.speed, model.scheduling) for i in range(model.cores)]
        self.contexts = {n: Context(n, th, cs, wake) for n, (th, cs, wake)
                         in model.contexts.items()}
        build_domains(k, cores, list(self.contexts.values()))
        self.devices = {n: Device(k, spec, self.draws(f"device.{n}", spec.service))
                        for n, spec in model.devices.items()}
        self.acct = Accounts(account_names(model))
        backlog = BACKLOG in self.acct.index
        self.timers = [
            Timer(k, spec, self.contexts[spec.context], self.draws(f"timer.{n}", spec.cost),
                  spec.offset_ns if spec.offset_ns is not None else
                  float(stream(seed, rep, f"timer.{n}.phase").uniform(0.0, spec.every_ns)),
                  self.acct, self.acct.index[f"timer.{n}"])
            for n, spec in model.timers.items()]
        # connect
        self.recorder = Recorder(k, model.warmup, model.requests, self._open_window,
                                 model.max_in_system)
        classes = model.classes
        index = {c.name: i for i, c in enumerate(classes)}
        segmenter = Segmenter(k, model.stages, self.contexts, self.devices, self.acct,
                              self.draws, index, self.recorder)
        picker = class_picker(classes, stream(seed, rep, "workload.classes"))
        if model.kind == "open":
            src = OpenSource(k, classes, picker, [], self.recorder,
                             self.draws("workload.arrivals", model.interarrival),
                             model.timeout_ns, model.connections,
                             (self.acct, self.acct.index[BACKLOG]) if backlog else None)
        else:
            think = None if model.think.is_zero else self.draws("workload.think", model.think)
            src = ClosedSource(k, classes, picker, [], self.recorder, model.clients,
                               model.pipeline, think, model.timeout_ns)
        sink = Sink(src.done, src.failed)
        src.routes = [segmenter.compile_route(model.routes[c.name], sink, c.name)
                      for c in classes]
        self.source = src

    @cached_property
    def path(self) -> nx.MultiDiGraph:
        """The model's path graph (built on demand: the routes compile from the lists
        it is made of, :func:`sim.paths.route_of`)."""
        return build_path(self.model.routes)

    def draws(self, name: str, dist: Distribution | None) -> Any:
        """Endless draws of ``dist`` from the stream named ``name``."""
        assert dist is not None
        return dist.iterator(stream(self.seed, self.rep, name))

    def _open_window(self) -> None:
        for c in self.contexts.values():
            c.reset_counters()
        for d in self.devices.values():
            d.reset_counters()
        self.acct.reset()

    def run(self) -> None:
        for t in self.timers:
            t.start()
        self.source.start()
        self.kernel.run()


def run_replication(model: Model, seed: int, rep: int) -> RepResult:
    t0 = time.perf_counter()
    a = Assembly(model, seed, rep)
    a.run()
    wall = time.perf_counter() - t0
    rec = a.recorder
    h = rec.histogram
    window = rec.window_ns
    thr = rec.measured / window if window > 0 else math.nan
    # a context's busy share of what it can use: its threads, or its cores where the
    # threads outnumber them (gunicorn's four workers on a guest's one vCPU)
    util = {f"context.{n}": c.busy_ns / (window * min(c.threads, len(c.cores)))
            if window > 0 else math.nan for n, c in a.contexts.items()}
    util.update({f"device.{n}": d.busy_ns / (window * d.spec.servers) if window > 0 else math.nan
                 for n, d in a.devices.items()})
    n = max(rec.measured, 1)
    stage_ns = {k: v / n for k, v in a.acct.as_arrays().items()}
    return RepResult(
        rep=rep, completed=rec.measured, window_ns=window, throughput_per_ns=thr,
        mean_ns=h.mean, quantiles_ns={k: h.quantile(q) for k, q in QUANTILES.items()},
        max_ns=h.max if h.n else math.nan, histogram_counts=h.counts.copy(),
        hist_total_ns=h.total, hist_min_ns=h.min,
        mean_in_system=rec.area / window if window > 0 else math.nan,
        saturated=rec.saturated, events=a.kernel.scheduled, wall_seconds=wall,
        stage_ns=stage_ns, utilisation=util,
        batches=rec.batches,
        errors={k: getattr(rec, k) for k in ERRORS},
        served_within_ns={str(p): h.quantile(p / 100) for p in SERVED_WITHIN},
        failed_ns=rec.failed_ns / n, latency_slope=rec.batches.slope(),
    )
