"""The engine's mechanisms, stated as exact timelines with deterministic costs.

Each test builds a small model through the real scenario loader, injects requests at
chosen times and asserts when each one leaves (all times in ns, ``time_unit = "ns"``):
batching stages (max_batch, per-batch and per-item costs, the coalescing window, cpu
stages absorbed into the batch, a device visit only for some classes), cooperative and
preemptive contexts sharing cores, devices that serialise visits, and the number of
simulation events per request when consecutive stages coalesce. Then the properties the
statistics rest on: same seed, same bits (with one process or two); random streams named
by component, so adding a stage shifts nobody else's draws; histogram quantiles within
their stated error with memory flat in sample count; batch means capped at 64 batches;
warm-up removal that resets every counter.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from simkit import THEORY, Trace, assemble, scenario

from sim.errors import ConfigError
from sim.paths import route_of
from sim.randomness import BLOCK, parse_distribution, stream
from sim.runner import RunOptions, run_points
from sim.scenario import load_scenario
from sim.stats.estimators import MAX_BATCHES, BatchMeans, _t975
from sim.stats.histogram import LogHistogram

# --------------------------------------------------------------------------- batching


def batch_stage(**params) -> dict:
    return {"kind": "batch", "context": "ctx", **params}


def test_batch_with_window_leaves_when_full_or_when_the_first_item_has_waited_a_window():
    # per item 1, per batch 10, at most 3 items, window 5 after the first waiting item
    a = assemble(scenario({"poll": batch_stage(cost=1, per_batch=10, max_batch=3, window=5)},
                          ["poll"]))
    t = Trace(a)
    for at in (0, 1, 2, 3, 19, 40, 41):
        t.send(at)
    left = t.run()
    assert left == [
        15, 15, 15,  # full at t=2 (3 items): 10 + 3*1 -> leaves at 15
        26,          # came at 3 while busy; its window ran out at 8, so it goes alone at 15
        37,          # came at 19 while busy; window out at 24 -> goes at 26, alone
        57, 57,      # 40 opens a window to 45; 41 joins; 10 + 2*1 -> 57
    ]
    seg = a.source.routes[0][0]
    assert (seg.batches, seg.items) == (4, 7)


def test_batch_until_idle_takes_what_waited_up_to_max_batch():
    a = assemble(scenario({"poll": batch_stage(cost=1, per_batch=10, max_batch=2)}, ["poll"]))
    t = Trace(a)
    for at in (0, 1, 2, 3):
        t.send(at)
    # 0 alone (11); 1 and 2 as a batch of two at 11 (12 -> 23); 3 alone at 23 (11 -> 34)
    assert t.run() == [11, 23, 23, 34]
    seg = a.source.routes[0][0]
    assert (seg.batches, seg.items) == (3, 4)


def test_cpu_stages_after_a_batch_on_its_context_run_inside_the_batch():
    # an event loop: a batching poll, then parsing on the same context, paid per item
    a = assemble(scenario({"poll": batch_stage(cost=1, per_batch=10),
                           "parse": {"kind": "cpu", "context": "ctx", "cost": 2}},
                          ["poll", "parse"]))
    t = Trace(a)
    for at in (0, 1, 2):
        t.send(at)
    # 0 alone: 10 + (1 + 2) -> 13; 1 and 2 together at 13: 10 + 2*(1 + 2) -> 29
    assert t.run() == [13, 29, 29]
    assert a.kernel.scheduled == 3 + 2  # three injections, two batches: parse costs no event


def redis_like() -> dict:
    return scenario(
        {"loop": batch_stage(cost=1, per_batch=10, batch_device="disk",
                             batch_device_when=["SET"])},
        devices={"disk": {"service": 100}},
        classes=[{"name": "GET"}, {"name": "SET"}], routes={"GET": ["loop"], "SET": ["loop"]})


def test_batch_visits_its_device_only_when_it_holds_a_class_that_needs_it():
    a = assemble(redis_like())
    t = Trace(a)
    GET, SET = 0, 1
    t.send(0, GET)    # batch [GET]: 0..11, no fsync
    t.send(20, SET)   # batch [SET]: 20..31, then the disk 31..131
    t.send(21, GET)   # waits for the SET batch, fsync included: 131..142
    t.send(300, GET)  # batch [GET]: 300..311
    t.send(301, GET)  # these two form one batch at 311: 10 + 2 -> 323,
    t.send(302, SET)  # and it holds a SET, so both wait for the disk: 423
    assert t.run() == [11, 131, 142, 311, 423, 423]
    assert a.devices["disk"].visits == 2


def test_the_batch_device_visit_carries_the_bytes_of_the_items_that_trigger_it():
    raw = redis_like()
    raw["devices"]["disk"]["per_byte"] = 0.5  # ns per byte appended
    a = assemble(raw)
    t = Trace(a)
    GET, SET = 0, 1
    t.send(0, SET, request_bytes=40)     # 0..11, disk 100 + 0.5 x 40 -> 131
    t.send(290, GET)                     # 290..301
    t.send(295, GET, request_bytes=400)  # these two form one batch: 301..313; the GET's
    t.send(296, SET, request_bytes=200)  # bytes do not go to disk: + 100 + 0.5 x 200 -> 513
    assert t.run() == [131, 301, 513, 513]


def kick_scenario(drain_ns: float, *, batch: bool) -> dict:
    """A server's send path ending in a notification of the core that drains its queue."""
    stages: dict = {
        "write": {"kind": "cpu", "context": "server", "cost": 10},
        "kick": {"kind": "cpu", "context": "server", "cost": 5,
                 "suppressed_while": ["drain"]},
        "drain": {"kind": "cpu", "context": "vhost", "cost": drain_ns},
    }
    route = ["write", "kick", "drain"]
    if batch:
        stages["loop"] = batch_stage(cost=0, per_batch=0, context="server")
        route = ["loop", *route]
    return scenario(stages, route, host={"cores": 2},
                    contexts={"server": {"cores": [0]}, "vhost": {"cores": [1]}})


def test_a_notification_is_paid_only_when_the_other_side_has_drained_its_queue():
    t = Trace(assemble(kick_scenario(100, batch=False)))
    t.send(0)    # write 0..10, kick (vhost idle) 10..15, drain 15..115
    t.send(20)   # write 20..30; vhost busy: no kick; drain waits 115..215
    t.send(300)  # vhost idle again: write 300..310, kick 310..315, drain 315..415
    assert t.run() == [115, 215, 415]


def test_an_event_loop_iteration_kicks_at_most_once_for_all_its_replies():
    a = assemble(kick_scenario(100, batch=True))
    t = Trace(a)
    t.send(0)    # an iteration of one: write 0..10, kick 10..15 (vhost idle), drain 15..115
    t.send(1)    # the next iteration holds both: writes 15..35; vhost still drains the
    t.send(2)    # first reply, so no kick: drains 115..215 and 215..315
    t.send(400)  # later, alone: write 400..410, kick 410..415, drain 415..515
    assert t.run() == [115, 215, 315, 515]
    acct = a.acct
    assert acct.visits[acct.index["kick"]] == 2


@pytest.mark.parametrize(("watched", "says"), [
    (["nowhere"], "unknown stage 'nowhere'"),
    (["kick"], "must be a cpu stage that is not itself a notification"),
])
def test_a_notification_that_watches_no_cpu_stage_is_refused(watched, says):
    raw = kick_scenario(100, batch=False)
    raw["stages"]["kick"]["suppressed_while"] = watched
    with pytest.raises(ConfigError) as err:
        assemble(raw)
    assert "stages.kick.suppressed_while" in str(err.value) and says in str(err.value)


# ------------------------------------------------------------------ reading in chunks


def chunk_scenario(chunk: int) -> dict:
    read = {"kind": "cpu", "context": "ctx", "per_byte": 1, "bytes": "reply"}
    if chunk:
        read["chunk"] = chunk
    return scenario({"read": read}, ["read"])


def test_a_long_reply_is_read_in_turns_behind_other_connections_ready_data():
    t = Trace(assemble(chunk_scenario(100)))
    t.send(0, reply_bytes=300)  # 300 ns of work in pieces of 100: 0..100, then behind B
    t.send(1, reply_bytes=50)   # queued behind A's first piece: 100..150
    assert t.run() == [350, 150]  # A's second and third pieces: 150..250, 250..350


def test_without_a_chunk_the_long_reply_is_read_at_once():
    t = Trace(assemble(chunk_scenario(0)))
    t.send(0, reply_bytes=300)
    t.send(1, reply_bytes=50)
    assert t.run() == [300, 350]


def test_reading_in_chunks_books_the_same_cpu_time_and_no_waiting_for_a_lone_reply():
    a = assemble(chunk_scenario(64))
    t = Trace(a)
    t.send(0, reply_bytes=300)  # five pieces of 60, back to back
    assert t.run() == [300]
    i = a.acct.index["read"]
    assert a.acct.cpu[i] == 300 and a.acct.wait[i] == 0 and a.acct.visits[i] == 1


def test_a_watched_stage_that_runs_inside_a_batch_is_refused():
    raw = kick_scenario(100, batch=True)
    raw["stages"]["kick"]["suppressed_while"] = ["write"]  # paid in the loop's own task
    with pytest.raises(ConfigError) as err:
        assemble(raw)
    assert "stages.kick.suppressed_while" in str(err.value)
    assert "'write', which runs inside the batch" in str(err.value)


def test_a_watched_stage_read_in_chunks_is_refused():
    raw = kick_scenario(100, batch=False)
    raw["stages"]["drain"]["chunk"] = 16384
    with pytest.raises(ConfigError) as err:
        assemble(raw)
    assert "stages.kick.suppressed_while" in str(err.value) and "chunks" in str(err.value)


# ---------------------------------------------------- a per-byte cost past a full buffer

def reply_list_scenario(*, batch: bool) -> dict:
    """A server that builds replies at 1 ns/byte, and 2 ns/byte more past a 100-byte buffer."""
    stages: dict = {
        "build": {"kind": "cpu", "context": "ctx", "cost": 10, "per_byte": 1, "bytes": "reply"},
        "list": {"kind": "cpu", "context": "ctx", "per_byte": 2, "bytes": "reply",
                 "per_byte_beyond": 100},
    }
    route = ["build", "list"]
    if batch:  # inside an event loop's iteration, one class: the batch's own fast start
        stages["loop"] = batch_stage(cost=0, per_batch=0)
        route = ["loop", *route]
    return scenario(stages, route)


@pytest.mark.parametrize("batch", [False, True])
def test_bytes_past_the_buffer_pay_the_extra_rate_and_those_inside_it_do_not(batch):
    a = assemble(reply_list_scenario(batch=batch))
    t = Trace(a)
    t.send(0, reply_bytes=60)       # inside the buffer: 10 + 60 -> 70
    t.send(1000, reply_bytes=100)   # fills it exactly: 10 + 100 -> 1110
    t.send(2000, reply_bytes=250)   # 150 bytes past it: 10 + 250 + 2 x 150 -> 2560
    assert t.run() == [70, 1110, 2560]
    # the extra booked to the list stage only (one task with build: its visits are build's)
    assert a.acct.cpu[a.acct.index["list"]] == 300
    assert a.acct.cpu[a.acct.index["build"]] == 3 * 10 + 410


def test_the_offered_load_check_counts_only_the_bytes_past_the_buffer():
    from sim.stages import Cost

    c = Cost(per_byte_ns=2.0, size="reply", beyond=100.0)
    assert (c.mean_for(0.0, 60.0), c.mean_for(0.0, 250.0)) == (0.0, 300.0)


@pytest.mark.parametrize("change, says", [
    ({"chunk": 64}, "drop per_byte_beyond or chunk"),
    ({"bytes": "none"}, "carries none"),
    ({"per_byte_beyond": -1}, "stages.list.per_byte_beyond"),
])
def test_a_buffer_on_a_stage_that_cannot_count_its_bytes_is_refused(change, says):
    raw = reply_list_scenario(batch=False)
    raw["stages"]["list"].update(change)
    with pytest.raises(ConfigError) as err:
        assemble(raw)
    assert "stages.list" in str(err.value) and says in str(err.value)


def test_a_device_stage_with_a_buffer_is_refused():
    raw = scenario({"tx": {"kind": "device", "device": "link", "per_byte_beyond": 10}}, ["tx"],
                   devices={"link": {"service": 1}})
    with pytest.raises(ConfigError) as err:
        assemble(raw)
    assert "stages.tx.per_byte_beyond" in str(err.value)

# ------------------------------------------------------------------- contexts on cores


def two_tasks(policy: str, *, cores: int = 1, pool: bool = False, tasks=(3, 1)) -> list[float]:
    """Tasks of the given lengths, all submitted at t=0, each by its own class.

    Each task runs on its own context sharing all cores, or (``pool``) on one context with
    as many threads as there are tasks.
    """
    names = [f"t{i}" for i in range(len(tasks))]
    all_cores = list(range(cores))
    if pool:
        contexts = {"pool": {"threads": len(tasks), "cores": all_cores}}
        ctx = dict.fromkeys(names, "pool")
    else:
        contexts = {n: {"cores": all_cores} for n in names}
        ctx = {n: n for n in names}
    a = assemble(scenario(
        {n: {"kind": "cpu", "context": ctx[n], "cost": w}
         for n, w in zip(names, tasks, strict=True)},
        host={"cores": cores, "scheduling": policy}, contexts=contexts,
        classes=[{"name": n} for n in names], routes={n: [n] for n in names}))
    t = Trace(a)
    for i in range(len(tasks)):
        t.send(0, i)
    return t.run()


def test_cooperative_contexts_on_one_core_run_to_completion_in_turn():
    # the long task started first keeps the core; the short one finishes at 3 + 1
    assert two_tasks("cooperative") == [3, 4]


def test_preemptive_contexts_on_one_core_share_it_equally():
    # processor sharing: both at half speed; the short one is done at 2, the long at 2 + 2
    assert two_tasks("preemptive") == [4, 2]


def test_preemptive_sharing_slows_as_more_threads_run():
    # three on one core at 1/3 each: 1 done at 3; the rest at 1/2: 2 done at 5; 3 at 6
    assert two_tasks("preemptive", tasks=(1, 2, 3)) == [3, 5, 6]


@pytest.mark.parametrize("policy", ["cooperative", "preemptive"])
def test_a_context_with_two_threads_on_two_cores_runs_two_tasks_at_once(policy):
    assert two_tasks(policy, cores=2, pool=True) == [3, 1]


@pytest.mark.parametrize("policy", ["cooperative", "preemptive"])
def test_a_third_task_waits_for_a_free_thread(policy):
    # threads = cores = 2, so nobody waits for a core: the third task takes the thread
    # freed at 1 and ends at 2, whatever the policy
    contexts = {"pool": {"threads": 2, "cores": [0, 1]}}
    a = assemble(scenario({"w3": {"kind": "cpu", "context": "pool", "cost": 3},
                           "w1": {"kind": "cpu", "context": "pool", "cost": 1}},
                          host={"cores": 2, "scheduling": policy}, contexts=contexts,
                          classes=[{"name": "long"}, {"name": "short"}],
                          routes={"long": ["w3"], "short": ["w1"]}))
    t = Trace(a)
    t.send(0, 0)
    t.send(0, 1)
    t.send(0, 1)
    assert t.run() == [3, 1, 2]


def test_two_threads_on_one_core_cooperative_vs_preemptive():
    assert two_tasks("cooperative", pool=True) == [3, 4]
    assert two_tasks("preemptive", pool=True) == [4, 2]


def test_cooperative_domain_never_leaves_a_core_idle_while_a_task_is_ready():
    # contexts a, b, c share cores 0 and 1. a gets two tasks of 10 at t=0 (its one thread
    # runs them back to back); b's task of 1 at t=1 must take the idle core at once.
    a = assemble(scenario(
        {"wa": {"kind": "cpu", "context": "a", "cost": 10},
         "wb": {"kind": "cpu", "context": "b", "cost": 1},
         "wc": {"kind": "cpu", "context": "c", "cost": 1}},
        host={"cores": 2, "scheduling": "cooperative"},
        contexts={n: {"cores": [0, 1]} for n in "abc"},
        classes=[{"name": n} for n in "abc"], routes={n: [f"w{n}"] for n in "abc"}))
    t = Trace(a)
    t.send(0, 0)
    t.send(0, 0)
    t.send(1, 1)
    t.send(3, 2)
    assert t.run() == [10, 20, 2, 4]


# ------------------------------------------------------------------------------ devices


def one_device(**device) -> list[float]:
    a = assemble(scenario({"fsync": {"kind": "device", "device": "disk"}}, ["fsync"],
                          devices={"disk": device}))
    t = Trace(a)
    for _ in range(3):
        t.send(0)
    return t.run()


def test_a_disk_with_fixed_fsync_latency_serialises_visits():
    assert one_device(service=5) == [5, 10, 15]


def test_a_device_with_two_servers_serves_two_visits_at_once():
    assert one_device(service=5, servers=2) == [5, 5, 10]


def test_a_link_pays_per_byte_for_the_bytes_the_stage_carries():
    a = assemble(scenario({"tx": {"kind": "device", "device": "link", "bytes": "reply"}},
                          ["tx"], devices={"link": {"service": 1, "per_byte": 2}}))
    t = Trace(a)
    t.send(0, request_bytes=1000, reply_bytes=10)
    t.send(0, request_bytes=1000, reply_bytes=10)
    assert t.run() == [21, 42]


# ----------------------------------------------------------------- coalescing and events

N = 50


def paced(stages: dict, route: list[str], cores: int = 1, contexts=None) -> tuple[int, object]:
    """``N`` requests, one every 100 ns (far apart: no queueing), through ``route``."""
    a = assemble(scenario(stages, route, host={"cores": cores}, contexts=contexts,
                          workload={"kind": "open", "interarrival": 100, "requests": N,
                                    "warmup": 0}))
    a.run()
    assert a.recorder.measured == N
    return a.kernel.scheduled, a


def arrivals_scheduled() -> int:
    return N + 1  # every arrival schedules the next one


def test_ten_cpu_stages_on_one_context_cost_one_event_per_request():
    stages = {f"layer{i}": {"kind": "cpu", "context": "ctx", "cost": i + 1} for i in range(10)}
    events, a = paced(stages, list(stages))
    assert events == arrivals_scheduled() + N * 1
    # still booked layer by layer
    assert a.acct.cpu == [N * (i + 1) for i in range(10)]
    assert a.recorder.histogram.max == sum(range(1, 11))


def test_ten_cpu_stages_alternating_two_contexts_cost_ten_events_per_request():
    stages = {f"layer{i}": {"kind": "cpu", "context": "ab"[i % 2], "cost": 1}
              for i in range(10)}
    events, _ = paced(stages, list(stages), cores=2,
                      contexts={"a": {"cores": [0]}, "b": {"cores": [1]}})
    assert events == arrivals_scheduled() + N * 10


def test_consecutive_delay_stages_are_one_timer():
    stages = {f"wire{i}": {"kind": "delay", "cost": 5} for i in range(3)}
    events, a = paced(stages, list(stages))
    assert events == arrivals_scheduled() + N * 1
    assert a.recorder.histogram.max == 15


def test_coalescing_stops_at_every_change_of_resource():
    stages = {"syscall": {"kind": "cpu", "context": "ctx", "cost": 1},
              "tcp": {"kind": "cpu", "context": "ctx", "cost": 2},
              "wire": {"kind": "delay", "cost": 10},
              "prop": {"kind": "delay", "cost": 10},
              "rx": {"kind": "cpu", "context": "ctx", "cost": 3}}
    events, a = paced(stages, list(stages))
    assert events == arrivals_scheduled() + N * 3  # cpu | delay | cpu
    assert a.recorder.histogram.max == 26



def test_the_path_graph_reads_back_every_class_route_the_replication_compiled():
    cpu = {"kind": "cpu", "context": "ctx", "cost": 1}
    routes = {"GET": ["syscall", "tcp", "lookup", "tcp", "syscall"],
              "SET": ["syscall", "tcp", "store", "fsync", "tcp", "syscall"]}
    a = assemble(scenario({n: cpu for n in ("syscall", "tcp", "lookup", "store", "fsync")},
                          routes=routes, classes=[{"name": "GET"}, {"name": "SET"}]))
    for cls, route in routes.items():
        assert route_of(a.path, cls) == route == a.model.routes[cls]
    assert set(a.path.successors("tcp")) == {"lookup", "store", "syscall"}

# ------------------------------------------------------------------------- determinism


def short_runs(seed: int, workers: int) -> str:
    points = load_scenario(THEORY / "tandem5.toml", ["workload.requests=3000"])
    rows = run_points(points, RunOptions(seed=seed, reps=4, workers=workers))
    for row in rows:
        row.pop("wall_seconds")
    return json.dumps(rows, sort_keys=True)


def test_same_seed_gives_bit_identical_results_in_one_process_or_two():
    one = short_runs(seed=11, workers=1)
    assert one == short_runs(seed=11, workers=2)
    assert one != short_runs(seed=12, workers=1)


def probe_stations(extra: bool) -> tuple[list[float], list[float], list[float]]:
    """Station 1's departure times, station 2's drawn costs, and end-to-end latencies."""
    exp = {"dist": "exponential", "mean": 1.0}
    stages = {"station1": {"kind": "cpu", "context": "s1", "cost": exp},
              "station2": {"kind": "cpu", "context": "s2", "cost": exp}}
    route = ["station1", "station2"]
    if extra:
        stages["hop"] = {"kind": "delay", "cost": {"dist": "exponential", "mean": 0.3}}
        route = ["station1", "hop", "station2"]
    a = assemble(scenario(stages, route, time_unit="ms", host={"cores": 2},
                          contexts={"s1": {"cores": [0]}, "s2": {"cores": [1]}},
                          workload={"kind": "open", "rate": 0.5, "requests": 2000,
                                    "warmup": 0}), seed=3)
    route_segments = a.source.routes[0]
    after_s1, s2 = route_segments[1], route_segments[-2]
    departures, costs = [], []

    def leaving_s1(enter):  # station 1's departure is the entry into what follows it
        def wrapped(req):
            departures.append(a.kernel.now)
            enter(req)
        return wrapped

    def entering_s2(enter):
        def wrapped(req):
            enter(req)
            costs.append(req.work)  # the work station 2 drew for this request
        return wrapped

    s2.enter = entering_s2(s2.enter)
    after_s1.enter = leaving_s1(after_s1.enter)
    latencies = []
    sink = route_segments[-1]
    done = sink.on_done
    sink.on_done = lambda req: (latencies.append(a.kernel.now - req.t0), done(req))
    a.run()
    assert min(len(departures), len(costs), len(latencies)) >= 1500
    return departures[:1500], costs[:1500], latencies[:1500]


def test_adding_a_stage_to_a_route_shifts_no_other_components_draws():
    base_dep, base_cost, base_lat = probe_stations(extra=False)
    dep, cost, lat = probe_stations(extra=True)
    assert dep == base_dep  # same arrivals, same station-1 service draws
    assert cost == base_cost  # station 2 draws the same numbers from its own stream
    assert lat != base_lat  # while the new stage does change the end-to-end times



@pytest.mark.parametrize("spec", [
    {"dist": "exponential", "mean": 3.0},
    {"dist": "lognormal", "mean": 3.0, "cv": 0.7},
    {"dist": "gamma", "mean": 3.0, "cv": 0.2},
    {"dist": "gamma", "mean": 3.0, "cv": 2.5},  # shape below 1: another rejection sampler
    {"dist": "uniform", "low": 1.0, "high": 4.0},
    {"dist": "empirical", "values": [1, 2, 5], "weights": [0.5, 0.3, 0.2]},
])
def test_draws_do_not_depend_on_the_block_sizes_they_are_made_in(spec):
    # a stream hands out its draws from blocks of growing size (small first, for short
    # runs); the numbers must be those of one call for them all
    n = 3 * BLOCK + 17
    drawn = list(itertools.islice(parse_distribution(spec, "t", "k").iterator(stream(5, 1, "x")),
                                  n))
    rng = stream(5, 1, "x")
    kind, p = spec["dist"], spec
    if kind == "empirical":
        w = np.asarray(p["weights"], float)
        once = rng.choice(np.asarray(p["values"], float), n, p=w / w.sum())
    elif kind == "uniform":
        once = rng.uniform(p["low"], p["high"], n)
    elif kind == "exponential":
        once = rng.exponential(p["mean"], n)
    elif kind == "gamma":
        shape = 1.0 / p["cv"] ** 2
        once = rng.gamma(shape, p["mean"] / shape, n)
    else:
        sigma2 = math.log1p(p["cv"] ** 2)
        once = rng.lognormal(math.log(p["mean"]) - sigma2 / 2.0, math.sqrt(sigma2), n)
    assert drawn == once.tolist()

# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_histogram_quantiles_are_within_the_stated_relative_error(q):
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.lognormal(11.0, 1.5, 200_000), rng.exponential(3e4, 50_000)])
    h = LogHistogram()
    for block in np.array_split(x, 13):
        h.add_many(block)
    exact = float(np.quantile(x, q, method="inverted_cdf"))
    assert abs(h.quantile(q) - exact) <= h.rel_error * exact
    assert h.quantile(1.0) == x.max()
    assert h.n == x.size
    assert math.isclose(h.mean, x.mean(), rel_tol=1e-12)


def test_histogram_memory_does_not_grow_with_the_number_of_samples():
    rng = np.random.default_rng(1)
    h = LogHistogram()
    size = h.counts.size
    h.add_many(rng.exponential(1e6, 1_000))
    h.add_many(rng.exponential(1e6, 1_000_000))
    h.add_many(np.array([0.2, 5e14]))  # below 1 ns and beyond the last bucket: clipped
    assert h.counts.size == size
    assert h.counts.sum() == h.n == 1_001_002
    assert size < 4000


def test_batch_means_double_the_batch_size_and_keep_at_most_64_batches():
    rng = np.random.default_rng(2)
    bm = BatchMeans(batch_size=64)
    t = 0.0
    longest = total = 0
    for _ in range(300):
        n = int(rng.integers(1, 6000))
        times = t + np.cumsum(rng.exponential(1.0, n))
        t = float(times[-1])
        bm.add_block(times, rng.exponential(5.0, n), 0.0)
        total += n
        longest = max(longest, len(bm.counts))
        assert sum(bm.counts) == total  # every completion is in some batch
    assert MAX_BATCHES == 64
    assert longest <= 64
    assert bm.batch_size > 64 and bm.batch_size & (bm.batch_size - 1) == 0
    assert all(c == bm.batch_size for c in bm.counts[:-1])
    assert bm.starts[1:] == bm.ends[:-1]  # batches tile the window
    mean = bm.mean_latency(5.0)
    assert mean.low < 5.0 < mean.high
    thr = bm.throughput(1.0)
    assert thr.low < 1.0 < thr.high



def test_the_t_quantile_is_scipy_stats_own_to_the_last_bit():
    # intervals use scipy.special's stdtrit, which scipy.stats.t.ppf evaluates, because
    # scipy.stats takes seconds to import in every worker; the numbers must not move
    from scipy import stats

    for dof in [*range(1, 130), 255, 1000, 10**5]:
        assert _t975(dof) == float(stats.t.ppf(0.975, dof))
    assert 12.70 < _t975(1) < 12.71 and 1.95 < _t975(10**5) < 1.97

def test_warm_up_removal_resets_every_counter():
    # one client, 10 requests of exactly 1 ms CPU then a 2 ms disk visit; the first 5 are
    # warm-up: when the 5th completes (t = 15 ms), every counter starts again from zero
    raw = scenario({"work": {"kind": "cpu", "context": "ctx", "cost": 1},
                    "fsync": {"kind": "device", "device": "disk"}},
                   ["work", "fsync"], time_unit="ms", devices={"disk": {"service": 2}},
                   workload={"kind": "closed", "clients": 1, "requests": 5, "warmup": 1.0})
    a = assemble(raw)
    a.run()
    ms = 1e6
    rec = a.recorder
    assert (rec.completed, rec.measured) == (10, 5)
    assert rec.t_begin == 15 * ms and rec.t_end == 30 * ms
    assert rec.histogram.n == 5 and rec.histogram.mean == 3 * ms
    ctx, disk = a.contexts["ctx"], a.devices["disk"]
    assert (ctx.tasks, ctx.busy_ns) == (5, 5 * ms)
    assert (disk.visits, disk.busy_ns) == (5, 10 * ms)
    assert a.acct.cpu == [5 * ms, 0.0] and a.acct.device == [0.0, 10 * ms]
    assert a.acct.visits == [5, 5]
    assert rec.area == pytest.approx(15 * ms)  # one request in the system all along


def test_a_stage_crossed_twice_draws_fresh_numbers_each_time():
    # a layer crossed by the request and again by the reply: the two crossings cost two
    # independent draws, not the same number twice. For exponential costs of mean 100 ns
    # the sum has mean 200 and squared coefficient of variation 1/2 (it would be 1 if
    # one draw were used twice). 4000 isolated messages: the sample's squared CV has a
    # standard error of about 0.03, so 0.5 +- 0.1 cannot pass by chance for 1.0.
    exp = {"dist": "exponential", "mean": 100.0}
    a = assemble(scenario({"tcp": {"kind": "cpu", "context": "ctx", "cost": exp}},
                          ["tcp", "tcp"]), seed=5)
    t = Trace(a)
    for i in range(4000):
        t.send(i * 1e6)  # far apart: no queueing, latency = the two crossings' cost
    lat = np.asarray(t.run()) - np.arange(4000) * 1e6
    assert lat.mean() == pytest.approx(200.0, rel=0.05)
    assert lat.var() / lat.mean() ** 2 == pytest.approx(0.5, abs=0.1)


# ------------------------------------------------------------------------- waking up


@pytest.mark.parametrize("scheduling", ["cooperative", "preemptive"])
def test_a_sleeping_thread_pays_its_wake_up_and_a_busy_one_does_not(scheduling):
    # context wake = 2: a task arriving while its thread sleeps costs 2 more; one that
    # queues behind a running task finds the thread awake
    a = assemble(scenario({"s": {"kind": "cpu", "context": "ctx", "cost": 5}}, ["s"],
                          host={"cores": 1, "scheduling": scheduling},
                          contexts={"ctx": {"cores": [0], "wake": 2}}))
    t = Trace(a)
    t.send(0)    # asleep: 0 + 2 + 5 = 7
    t.send(1)    # arrives while the first runs: no wake-up, starts at 7, ends 12
    t.send(100)  # asleep again: 100 + 2 + 5
    assert t.run() == [7, 12, 107]
    assert a.contexts["ctx"].busy_ns == 5 + 5 + 5 + 2 * 2
