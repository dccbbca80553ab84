"""Offered load: how busy each context and device would be, from mean costs alone.

For an open workload the arrival rate times the mean work per request, summed over the
stages a class crosses, gives each scheduling domain's and device's utilisation before
any simulation. At or above 1 the system is saturated: its queue would grow without
bound, so the runner reports that instead of running. Batching stages count only their
per-item cost (the per-batch cost shrinks as batches grow), so the figure is a lower
bound where batching is present; the recorder's in-system cap catches the rest.
"""

from __future__ import annotations

from collections import defaultdict

from sim.scenario import Model


def utilisation(model: Model) -> dict[str, float]:
    """Utilisation per ``context.NAME`` (per thread) and ``device.NAME`` (per server)."""
    if model.kind != "open" or model.interarrival is None:
        return {}
    lam = 1.0 / model.interarrival.mean
    total_w = sum(c.weight for c in model.classes)
    ctx_work: dict[str, float] = defaultdict(float)
    dev_work: dict[str, float] = defaultdict(float)
    for c in model.classes:
        rate = lam * c.weight / total_w
        for name in model.routes[c.name]:
            s = model.stages[name]
            mean = s.cost.mean_for(c.request_bytes, c.reply_bytes)
            if s.kind in ("cpu", "batch"):
                ctx_work[s.context] += rate * mean  # type: ignore[index]
            elif s.kind == "device":
                d = model.devices[s.device]  # type: ignore[index]
                nbytes = (c.request_bytes if s.cost.size == "request" else
                          c.reply_bytes if s.cost.size == "reply" else 0.0)
                dev_work[s.device] += rate * (d.service.mean + d.per_byte_ns * nbytes)  # type: ignore[index]
    out: dict[str, float] = {}
    for n, w in ctx_work.items():
        threads, cores, _wake = model.contexts[n]
        out[f"context.{n}"] = w / (model.speed * min(threads, len(cores)))
    for n, w in dev_work.items():
        out[f"device.{n}"] = w / model.devices[n].servers
    # contexts sharing cores: their summed work over the shared cores
    groups: dict[tuple[int, ...], float] = defaultdict(float)
    for n, w in ctx_work.items():
        groups[model.contexts[n][1]] += w
    for cores, w in groups.items():
        out[f"cores.{','.join(map(str, cores))}"] = w / (model.speed * len(cores))
    return out


def saturated(model: Model) -> list[tuple[str, float]]:
    """Resources whose offered utilisation is at or above 1, worst first."""
    return sorted(((k, u) for k, u in utilisation(model).items() if u >= 1.0),
                  key=lambda kv: -kv[1])
