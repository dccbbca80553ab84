"""The runner: replications, run-length control, parallel processes, one row per point.

For each scenario point it runs replications (independent random streams, seeded by
``(seed, replication, component)``) until the 95% confidence intervals of throughput and
mean latency are within ``run.precision`` of their values, doubling the number of
replications up to ``run.max_reps``. Replications run in a process pool; results are
combined in replication order, so the numbers do not depend on how many processes ran
them. An open workload whose offered load reaches a resource's capacity is reported as
saturated without running; one that overflows at run time (``run.max_in_system``) too.
An open workload with a bound on its ``connections`` runs anyway: the server then holds at
most that many requests and the client's backlog grows instead, so the run ends, and its
row shows the offered rate beside the achieved one (status ``overloaded`` when the
achieved one is short of it: :data:`OVERLOAD`), every resource's offered utilisation
and how fast latency grew over the run (``latency_growth``, ms of latency per ms of run:
about 0 when the path keeps up, ``1 - achieved / offered`` when it does not).
A resource that a listen stage guards (one used between a listen stage and its
``until``, :func:`sim.admission.guarded_resources`) is left out of that check: above its
capacity SYNs are dropped and retried instead of a queue growing without bound; the
run-time cap still catches an overload elsewhere.

Every estimate is a value with a 95% interval: the mean over replications and Student's t
(for ``max``: the largest value seen, with the range of the replications' maxima).
Throughput counts successful completions only; requests that timed out or never
connected are counted in the row's ``errors`` (totals over the replications' windows,
with the SYN retransmissions), and latencies are those of completions; the time the
failed requests spent in the system, which the stages book too, is
``failed_ms_per_request`` (per completed request, as the stage times are). The row also
holds ab's "served within" table (``served_within_ms``: the 50th to 99th percentiles of
latency, and 100, the longest request) and the transfer rate ab prints (reply bytes
received per second / 1024, from throughput and the classes' mean reply bytes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sim import __version__
from sim.admission import guarded_resources
from sim.offered_load import saturated as saturated_resources
from sim.offered_load import utilisation as offered_utilisation
from sim.replication import (
    BACKLOG,
    ERRORS,
    QUANTILES,
    SERVED_WITHIN,
    RepResult,
    account_names,
    run_replication,
)
from sim.scenario import Model, to_model
from sim.stats.estimators import Estimate, t_interval
from sim.workers import pool_size, worker_pool

NS_PER_MS = 1e6
NS_PER_S = 1e9
# an open load whose achieved rate (its 95% interval's top) stays this far below the
# offered one is reported as ``overloaded``
OVERLOAD = 0.01


@dataclass
class RunOptions:
    seed: int = 1
    reps: int | None = None  # overrides run.reps (and fixes the count: no run-length control)
    workers: int | None = None


def run_reps(model: Model, seed: int, reps: Iterable[int], workers: int,
             pool: ProcessPoolExecutor | None) -> list[RepResult]:
    reps = list(reps)
    if pool is None or len(reps) == 1:
        return [run_replication(model, seed, r) for r in reps]
    return list(pool.map(run_replication, [model] * len(reps), [seed] * len(reps), reps))


def run_point(resolved: dict[str, Any], opts: RunOptions,
              pool: ProcessPoolExecutor | None = None) -> dict[str, Any]:
    """Run one resolved scenario point to the precision it asks for; return its row."""
    t0 = time.perf_counter()
    model = to_model(resolved)
    run = resolved["run"]
    full = _saturated(model)
    if full:
        return _saturated_row(resolved, model, full, time.perf_counter() - t0)
    fixed = opts.reps is not None
    reps = opts.reps if fixed else run["reps"]
    max_reps = reps if fixed else run["max_reps"]
    results = run_reps(model, opts.seed, range(reps), 0, pool)
    while not fixed and not any(r.saturated for r in results):
        if _precise(results, run["precision"]) or len(results) >= max_reps:
            break
        more = min(len(results), max_reps - len(results))
        results += run_reps(model, opts.seed, range(len(results), len(results) + more), 0, pool)
    return _row(resolved, model, results, run["precision"], time.perf_counter() - t0)


def _saturated(model: Model) -> list[tuple[str, float]]:
    """Resources offered at least their capacity, except those a listen stage guards; none
    when an open load bounds its connections (its backlog grows, not the system's)."""
    if model.connections:
        return []
    full = saturated_resources(model)
    if not full:
        return full
    guarded = guarded_resources(model.stages, model.routes, model.contexts)
    return [(k, u) for k, u in full if k not in guarded]


def _precise(results: list[RepResult], precision: float) -> bool:
    thr = t_interval([r.throughput_per_ns for r in results])
    mean = t_interval([r.mean_ns for r in results])
    return thr.relative_half_width <= precision and mean.relative_half_width <= precision


def _row(resolved: dict[str, Any], model: Model, results: list[RepResult], precision: float,
         wall: float) -> dict[str, Any]:
    sat = any(r.saturated for r in results)
    thr = t_interval([r.throughput_per_ns for r in results]).scaled(NS_PER_S)
    lat: dict[str, Estimate] = {"mean": t_interval([r.mean_ns for r in results])}
    for k in QUANTILES:
        lat[k] = t_interval([r.quantiles_ns[k] for r in results])
    maxes = [r.max_ns for r in results]
    lat["max"] = Estimate(max(maxes), min(maxes), max(maxes))
    served = {str(p): lat["max"] if p == 100 else
              t_interval([r.served_within_ns[str(p)] for r in results])
              for p in SERVED_WITHIN}
    in_sys = t_interval([r.mean_in_system for r in results])
    mean_lat = lat["mean"].value
    completed = sum(r.completed for r in results)
    events = sum(r.events for r in results)
    precise = _precise(results, precision) if len(results) > 1 else False
    status = "saturated" if sat else ("ok" if precise else "imprecise")
    offered = _offered_rps(model)
    if not sat and offered and thr.high < (1.0 - OVERLOAD) * offered:
        status = "overloaded"  # a bounded open load: its backlog grew
    util = {k: t_interval([r.utilisation[k] for r in results]).as_dict(4)
            for k in results[0].utilisation}
    booked = {name: _booked(results, i) for i, name in enumerate(model.stage_order)}
    timers = {name: _booked(results, len(model.stage_order) + i)
              for i, name in enumerate(model.timers)}
    total_w = sum(c.weight for c in model.classes)
    reply = sum(c.weight * c.reply_bytes for c in model.classes) / total_w  # per request
    row = {
        "scenario": model.name,
        "sweep": resolved.get("sweep_point", {}),
        "status": status,
        "throughput_rps": thr.as_dict(),
        "latency_ms": {k: e.scaled(1 / NS_PER_MS).as_dict() for k, e in lat.items()},
        "mean_in_system": in_sys.as_dict(),
        "littles_law": {"mean_in_system": _finite(in_sys.value),
                        "throughput_x_latency": _finite(thr.value / NS_PER_S * mean_lat)},
        "utilisation": util,
        "stages_ms_per_request": booked,
        "completed_requests": completed,
        "errors": {k: sum(r.errors.get(k, 0) for r in results) for k in ERRORS},
        "served_within_ms": {k: e.scaled(1 / NS_PER_MS).as_dict() for k, e in served.items()},
        "transfer_kbytes_per_s": thr.scaled(reply / 1024).as_dict(),
        "replications": len(results),
        "precision_target": precision,
        "events": events,
        "events_per_request": events / max(completed, 1),
        "wall_seconds": round(wall, 4),
        "resolved_scenario": resolved,
    }
    if timers:
        row["timers_ms_per_request"] = timers
    names = account_names(model)
    if BACKLOG in names:
        row["backlog_ms_per_request"] = _booked(results, names.index(BACKLOG))
    failed = [r.failed_ns for r in results]
    row["failed_ms_per_request"] = _finite(_mean(failed) / NS_PER_MS)
    slopes = [r.latency_slope for r in results]
    if all(math.isfinite(x) for x in slopes):
        row["latency_growth"] = t_interval(slopes).as_dict(4)
    if offered:
        row["offered_rps"] = offered
        row["offered_utilisation"] = {k: round(u, 4)
                                      for k, u in offered_utilisation(model).items()}
        if model.connections:
            row["connections"] = model.connections
    return row


def _offered_rps(model: Model) -> float | None:
    """An open load's arrival rate (requests per second), or None for a closed one."""
    if model.kind != "open" or model.interarrival is None:
        return None
    return NS_PER_S / model.interarrival.mean


def _booked(results: list[RepResult], i: int) -> dict[str, float | None]:
    """Entry ``i`` of the accounts per request (ms; visits as counts), over replications."""
    return {k.replace("_ns", "_ms"): _finite(_mean([r.stage_ns[k][i] for r in results])
                                             / (NS_PER_MS if k.endswith("_ns") else 1.0))
            for k in ("cpu_ns", "wait_ns", "device_ns", "visits")}


def _finite(x: float) -> float | None:
    """``x`` as a plain float, or None when it is not finite (JSON has no NaN)."""
    return float(x) if math.isfinite(x) else None


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def _saturated_row(resolved: dict[str, Any], model: Model, full: list[tuple[str, float]],
                   wall: float) -> dict[str, Any]:
    nan = {"value": None, "ci95": [None, None]}
    return {
        "scenario": model.name,
        "sweep": resolved.get("sweep_point", {}),
        "status": "saturated",
        "saturated_by": {k: round(u, 4) for k, u in full},
        "offered_utilisation": {k: round(u, 4) for k, u in offered_utilisation(model).items()},
        "throughput_rps": nan,
        "latency_ms": {k: nan for k in ("mean", *QUANTILES, "max")},
        "served_within_ms": {str(p): nan for p in SERVED_WITHIN},
        "completed_requests": 0,
        "replications": 0,
        "wall_seconds": round(wall, 4),
        "resolved_scenario": resolved,
    }


def run_points(points: list[dict[str, Any]], opts: RunOptions,
               on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run scenario points in order; ``on_row`` sees each row as soon as it is finished."""
    rows: list[dict[str, Any]] = []
    max_jobs = max((opts.reps or p["run"]["max_reps"]) for p in points)
    requested = opts.workers if opts.workers is not None else points[0]["run"]["workers"]
    with worker_pool(pool_size(requested, max_jobs)) as pool:
        for p in points:
            row = run_point(p, opts, pool)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def document(rows: list[dict[str, Any]], opts: RunOptions, command: list[str]) -> dict[str, Any]:
    """The JSON document ``--json`` writes."""
    return {"uksim_version": __version__, "seed": opts.seed, "command": command, "results": rows}
