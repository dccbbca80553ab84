"""The path a request and its reply follow, as a graph, and its compilation to segments.

A path is a ``networkx.MultiDiGraph`` over stage names plus the two ends ``client.send``
and ``client.receive``. Each request class (command) follows its own route: edge
``(u, v)`` with key ``(class, hop)`` says the class's ``hop``-th step goes from ``u`` to
``v``. A stage may be crossed more than once on a route (a layer crossed by the request
and again by the reply). The graph can be drawn and queried (which stages does SET cross
that GET does not?); :func:`route_of` reads one class's route back in order: the list
of stage names it was built from, which a replication compiles directly.

:func:`compile_route` turns a route into runtime segments and coalesces: consecutive
``cpu`` stages on the same context become one segment, consecutive ``delay`` stages one
timer. Batching stages are shared by every route that crosses them (they hold a queue);
the ``cpu`` stages that follow one on its own context are paid inside the batch, per item,
when that context has one thread (an event loop serving what the batch brought).
A ``listen`` stage (:mod:`sim.admission`) is shared too (it holds the accept queue), and
so is a ``pool`` (its workers); the segment holding its ``until`` stage ends right after
that stage, and a :class:`~sim.admission.Release` marker follows it. When ``until`` is a
batching stage or a ``cpu`` stage paid inside one, the connection (or the worker) is
released when the batch releases its items. Once a route is compiled, each cpu segment is
told its place on it (:meth:`~sim.stages.CpuSegment.link`: a segment is on one route at
one place, so the one that follows it is known).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim.admission import ListenSegment, PoolSegment
from sim.batching import BatchSegment, batch_absorbs
from sim.cpu import Context
from sim.devices import Device, DeviceSegment
from sim.kernel import Kernel
from sim.stages import (
    Accounts,
    ChunkedCpuSegment,
    CpuSegment,
    DelaySegment,
    NotifySegment,
    Sink,
    StageSpec,
    TrackedCpuSegment,
    Work,
    combined,
    summed,
    work_for,
)
from sim.stats.recorder import Recorder

if TYPE_CHECKING:
    import networkx as nx

SEND = "client.send"
RECEIVE = "client.receive"


def build_path(routes: Mapping[str, Sequence[str]]) -> nx.MultiDiGraph:
    """The path graph from each class's ordered list of stage names."""
    import networkx as nx  # slow to import, and only needed to draw or query a path

    g = nx.MultiDiGraph()
    g.add_node(SEND)
    g.add_node(RECEIVE)
    for cls, stages in routes.items():
        hops = [SEND, *stages, RECEIVE]
        for i, (u, v) in enumerate(itertools.pairwise(hops)):
            g.add_edge(u, v, key=(cls, i), cls=cls, hop=i)
    return g


def route_of(path: nx.MultiDiGraph, cls: str) -> list[str]:
    """The stages class ``cls`` crosses, in order (without the two ends)."""
    steps = sorted(
        (d["hop"], u, v) for u, v, d in path.edges(data=True) if d["cls"] == cls
    )
    if not steps:
        raise KeyError(cls)
    return [v for _, _, v in steps[:-1]]


class Segmenter:
    """Builds segments for routes, sharing what must be shared (batching stages)."""

    def __init__(self, kernel: Kernel, stages: Mapping[str, StageSpec],
                 contexts: Mapping[str, Context], devices: Mapping[str, Device],
                 acct: Accounts, draws: Callable[[str, Any], Any],
                 class_index: Mapping[str, int], recorder: Recorder | None = None) -> None:
        self.kernel = kernel
        self.stages = stages
        self.contexts = contexts
        self.devices = devices
        self.acct = acct
        self.draws = draws  # (stage name, distribution) -> iterator of draws
        self.class_index = class_index
        self.recorder = recorder  # told of SYN retransmissions (listen stages)
        self._batches: dict[str, BatchSegment] = {}
        self._listens: dict[str, ListenSegment] = {}
        self._pools: dict[str, PoolSegment] = {}
        self._fixed: dict[str, Any] = {}  # stream name -> its iterator of cost draws
        # messages inside each stage that a notification watches (suppressed_while): one
        # counter per stage, shared by every route and class that crosses it
        self._occupancy: dict[str, list[int]] = {
            w: [0] for s in stages.values() for w in s.suppressed_while}

    def _stream(self, name: str, dist: Any) -> Any:
        # one iterator per named stream, shared by every crossing of the same stages (a
        # stage crossed by the request and again by the reply, or by several classes):
        # separate iterators on the same named stream would hand each crossing the same
        # numbers
        it = self._fixed.get(name)
        if it is None:
            it = self._fixed[name] = self.draws(name, dist)
        return it

    def _work(self, specs: Sequence[StageSpec]) -> Work:
        """The cost of consecutive stages paid together: one draw per visit."""
        dists = [s.cost.fixed for s in specs]
        one = combined(dists)
        if one is not None:
            draw = self._stream("+".join(s.name for s in specs), one)
        else:
            draw = summed([self._stream(s.name, s.cost.fixed) for s in specs])
        return work_for([(self.acct.index[s.name], s.cost.fixed, s.cost) for s in specs], draw)

    def _batch(self, spec: StageSpec) -> BatchSegment:
        seg = self._batches.get(spec.name)
        if seg is None:
            dev = self.devices[spec.batch_device] if spec.batch_device else None
            seg = BatchSegment(
                self.kernel, self.contexts[spec.context], self.acct.index[spec.name],  # type: ignore[index]
                self.draws(spec.name + ".per_batch", spec.per_batch),
                spec.max_batch, spec.window_ns, self.acct, dev,
                frozenset(self.class_index[c] for c in spec.batch_device_when
                          if c in self.class_index),
            )
            self._batches[spec.name] = seg
        return seg

    def _listen(self, spec: StageSpec) -> ListenSegment:
        seg = self._listens.get(spec.name)
        if seg is None:
            seg = ListenSegment(self.kernel, spec, self.acct.index[spec.name], self.acct,
                                self.recorder)  # type: ignore[arg-type]
            self._listens[spec.name] = seg
        return seg

    def _pool(self, spec: StageSpec) -> PoolSegment:
        seg = self._pools.get(spec.name)
        if seg is None:
            seg = PoolSegment(self.kernel, spec, self.acct.index[spec.name], self.acct)
            self._pools[spec.name] = seg
        return seg

    def _absorbs(self, batch_context: str | None, spec: StageSpec) -> bool:
        threads = self.contexts[spec.context].threads if spec.context else 1
        return batch_absorbs(batch_context, spec.kind, spec.context, threads, spec.chunk_bytes)

    def compile_route(self, names: Sequence[str], sink: Sink, cls: str | None = None
                      ) -> list[Any]:
        """Segments for one class's route, ending in ``sink``."""
        segments: list[Any] = []
        run: list[StageSpec] = []
        batch: BatchSegment | None = None  # the batch absorbing cpu stages that follow it
        batch_specs: list[StageSpec] = []
        batch_context: str | None = None
        cls_index = self.class_index.get(cls, 0) if cls is not None else 0
        # until stage -> the listens (and pools) it releases
        pending: dict[str, list[ListenSegment | PoolSegment]] = {}
        after_batch: list[ListenSegment | PoolSegment] = []  # released with the open batch

        def close_batch() -> None:
            nonlocal batch
            if batch is not None:
                work = self._work(batch_specs)
                batch.set_item_work(cls_index, work)
                batch = None
                segments.extend(x.release for x in after_batch)
                after_batch.clear()

        def close_run() -> None:
            if not run:
                return
            work = self._work(run)
            if run[0].kind == "cpu":
                context = self.contexts[run[0].context]  # type: ignore[index]
                tracked = [self._occupancy[x.name] for x in run if x.name in self._occupancy]
                chunked = [x for x in run if x.chunk_bytes]
                if chunked and tracked:
                    raise ValueError(f"stage {chunked[0].name!r} is read in chunks and "
                                     f"{tracked[0].name!r}'s occupancy is watched: a segment "
                                     "cannot do both")
                if chunked:  # the whole segment (read, then parse) goes piece by piece
                    c = min(chunked, key=lambda x: x.chunk_bytes)
                    segments.append(ChunkedCpuSegment(self.kernel, context, work, self.acct,
                                                      c.chunk_bytes, c.cost.size))
                elif tracked:
                    segments.append(TrackedCpuSegment(self.kernel, context, work, self.acct,
                                                      tracked))
                else:
                    segments.append(CpuSegment(self.kernel, context, work, self.acct))
            else:
                segments.append(DelaySegment(self.kernel, work, self.acct))
            run.clear()

        for name in names:
            spec = self.stages[name]
            # connections that leave an accept queue once this stage completes
            accepts = pending.pop(name, [])
            if spec.suppressed_while:  # a notification: its own segment, or the batch's
                watched = [self._occupancy[w] for w in spec.suppressed_while]
                work = self._work([spec])
                if batch is not None and self._absorbs(batch_context, spec):
                    batch.set_notification(cls_index, work, watched)
                    after_batch.extend(accepts)
                    continue
                close_batch()
                close_run()
                segments.append(NotifySegment(self.kernel, self.contexts[spec.context],  # type: ignore[index]
                                              work, self.acct, watched))
                segments.extend(x.release for x in accepts)
                continue
            # the cpu stages after a batch that run inside it (batch_absorbs)
            if batch is not None and self._absorbs(batch_context, spec):
                batch_specs.append(spec)
                after_batch.extend(accepts)
                continue
            close_batch()
            if spec.kind in ("cpu", "delay"):
                if run and (run[0].kind != spec.kind or run[0].context != spec.context):
                    close_run()
                run.append(spec)
                if accepts:
                    close_run()
                    segments.extend(x.release for x in accepts)
                continue
            close_run()
            if spec.kind == "batch":
                batch = self._batch(spec)
                batch_context = spec.context
                batch_specs = [spec]
                segments.append(batch)
                after_batch.extend(accepts)
            elif spec.kind == "device":
                segments.append(DeviceSegment(self.devices[spec.device], spec.cost.size,  # type: ignore[index]
                                              self.acct.index[spec.name], self.acct))
                segments.extend(x.release for x in accepts)
            elif spec.kind in ("listen", "pool"):
                admission = self._listen(spec) if spec.kind == "listen" else self._pool(spec)
                pending.setdefault(spec.until, []).append(admission)  # type: ignore[arg-type]
                segments.append(admission)
            else:  # pragma: no cover - the loader rejects other kinds
                raise AssertionError(spec.kind)
        close_run()
        close_batch()
        segments.append(sink)
        for i, seg in enumerate(segments):
            if isinstance(seg, CpuSegment):  # its place is known now (CpuSegment.link)
                seg.link(segments, i)
        return segments
