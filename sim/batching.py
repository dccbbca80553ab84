"""Batching stages: work that is paid once per batch of requests.

Many layers of an I/O path amortise a fixed cost over whatever has accumulated: a Redis
event-loop iteration serves every ready connection and then fsyncs the append-only file
once; NAPI polls up to 64 packets per softirq; virtio notification suppression lets the
host's vhost thread drain a whole ring per kick; a NIC coalesces interrupts.

A batching stage on a context works like this. Items queue while the stage is busy.
When it is idle and an item is waiting, a batch forms: at once ("until idle", the
default), or, with a ``window_ns``, when ``max_batch`` items are there or the window
since the first item has passed (interrupt coalescing). A batch takes at most
``max_batch`` items and costs ``per_batch`` plus each item's own cost (fixed plus per
byte), as one task on the context. The ``cpu`` stages that follow a batching stage on the
same context run inside the batch: their costs are added to each item's (per class,
since classes may cross different stages), as the work of an event-loop iteration is.
Optionally the whole batch then waits for one visit to a device (``batch_device``), only
if it holds an item of the classes in ``batch_device_when`` (Redis: the AOF fsync, only
when a command changed data); the visit carries those items' request bytes (the device's
``per_byte``: the file system's cost of the appended bytes). A notification stage among
the absorbed ones (``suppressed_while``, a virtio kick) is paid at most once per batch,
when the batch's items leave and only if the stages it watches are empty: the items go
out back to back, and the first one's notification covers the others, which the other
side finds while it is still busy with the first. Then all its items move on together,
and the next batch forms from what has arrived meanwhile.

Time is booked per item: its share of the batch's CPU time as CPU, the device visit in
full as device time, the rest as waiting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from sim.cpu import Context
from sim.devices import Device
from sim.kernel import Kernel
from sim.requests import Request
from sim.stages import Accounts, Work, add_beyond, collect_beyond


def batch_absorbs(batch_context: str | None, kind: str, context: str | None, threads: int,
                  chunk_bytes: int = 0) -> bool:
    """Whether a stage that follows a batch on a route runs inside it (its cost paid in
    the batch's task, once per item): a cpu stage on the batch's own context when one
    thread runs both (an event loop), unless it is read in chunks (its pieces are tasks
    of their own). Where the context has several threads (worker processes), the batch and
    the stages after it are separate tasks. ``batch_context``: the open batch's context,
    None when no batch is open."""
    return (batch_context is not None and kind == "cpu" and context == batch_context
            and threads == 1 and not chunk_bytes)


class BatchSegment:
    def __init__(self, kernel: Kernel, context: Context, index: int, per_batch: Iterator[float],
                 max_batch: int, window_ns: float, acct: Accounts,
                 device: Device | None = None, device_classes: frozenset[int] = frozenset()
                 ) -> None:
        self.kernel = kernel
        self.context = context
        self.index = index
        self.per_batch = per_batch
        self.items_of: dict[int, Work] = {}  # class -> the per-item work
        self.max_batch = max_batch
        self.window_ns = window_ns
        self.acct = acct
        self.device = device
        self.device_classes = device_classes
        self.inv_speed = 1.0 / context.speed
        self.notify_of: dict[int, tuple[Work, list[list[int]]]] = {}  # class -> kick
        self._clock = kernel.env
        self.waiting: deque[Request] = deque()
        # what follows the batch's CPU task: the device visit, the notification, the release
        # (set_notification moves it to _send); without a window a batch forms at once
        self._after_cpu = self._cpu_done if device is not None else self._release_batch
        self._choose_start()
        self.busy = False
        self.armed = 0  # version of the pending window timer, 0 when none
        self._version = 0
        self.batches = 0
        self.items = 0

    def set_item_work(self, cls: int, work: Work) -> None:
        """The per-item work of class ``cls``: this stage's and the cpu stages it absorbed."""
        self.items_of[cls] = work
        self.acct.register(work, "cpu", self.inv_speed)
        self._choose_start()

    def _choose_start(self) -> None:
        """How a batch starts: with the item's cost inlined where one class crosses the
        stage (:meth:`_start_one`); without a window at once (no :meth:`_form`)."""
        if len(self.items_of) == 1:
            (work,) = self.items_of.values()
            self._begin = self._start_one(work)
        else:
            self._begin = self._start
        # what an item that finds the stage idle, or a released batch, sets off
        self._idle = self._begin if self.window_ns <= 0 else self._form

    def set_notification(self, cls: int, work: Work, watched: list[list[int]]) -> None:
        """Items of class ``cls`` end with a notification, suppressed while any of the
        ``watched`` stages' occupancy counters is above zero."""
        self.notify_of[cls] = (work, watched)
        self.acct.register(work, "cpu", self.inv_speed)
        if self.device is None:
            self._after_cpu = self._send

    def enter(self, req: Request) -> None:
        req.t_seg = self._clock._now
        self.waiting.append(req)
        if not self.busy:
            self._idle()

    def _form(self) -> None:
        """Start a batch now, or arm the window timer if one is configured."""
        if self.window_ns > 0 and len(self.waiting) < self.max_batch:
            # the window runs from the first waiting item's arrival, not from when the stage
            # fell idle: an item that waited a whole window behind a busy batch goes at once
            left = self.waiting[0].t_seg + self.window_ns - self.kernel.env._now
            if left > 0:
                if not self.armed:
                    self._version += 1
                    self.armed = self._version
                    self.kernel.after(left, self._window_over, self._version)
                return
        self._begin()

    def _window_over(self, version: int) -> None:
        if version == self.armed and not self.busy:
            self._begin()

    def _start(self) -> None:
        self.armed = 0
        w = self.waiting
        n = len(w)
        if n <= self.max_batch:  # everything that waits (the usual case)
            batch = list(w)
            w.clear()
        else:
            n = self.max_batch
            batch = [w.popleft() for _ in range(n)]
        cost = next(self.per_batch)
        inv = self.inv_speed
        batch_cpu = cost * inv
        self.acct._cpu[self.index] += batch_cpu
        share = batch_cpu / n
        items = self.items_of
        for req in batch:
            cost_i = items[req.cls].cost(req)  # books the item's stages (and its visit)
            req.work = cost_i * inv + share
            cost += cost_i
        self.busy = True
        self.batches += 1
        self.items += n
        self.context.submit(cost, self._after_cpu, batch)

    def _start_one(self, work: Work) -> Callable[[], None]:
        """:meth:`_start` where every item is of one class, whose cost is ``work``: a
        closure with :meth:`Work.cost` inlined and the visits' sums kept in its own
        variables (``work.collect`` takes them in, as for :func:`sim.stages.fused_visit`).
        The same operations in the same order (a part whose coefficient is zero is left
        out, as the kinds of :class:`Work` leave it out)."""
        waiting, max_batch, per_batch = self.waiting, self.max_batch, self.per_batch
        inv, index, acct = self.inv_speed, self.index, self.acct
        draw = work.draw
        kq, kp, kc = work.k_request, work.k_reply, work.k_command
        has_q, has_p, has_c = kq != 0.0, kp != 0.0, kc != 0.0  # bools test quicker
        beyond = work._beyond  # parts paid past a buffer (Redis's reply list): few
        has_b = bool(beyond)
        s_b = [0.0] * len(beyond)
        submit = self.context.submit
        n_items = 0
        s_fixed = s_request = s_reply = s_count = 0.0

        def collect() -> None:
            nonlocal n_items, s_fixed, s_request, s_reply, s_count
            work.n += n_items
            work.s_fixed += s_fixed
            work.s_request += s_request
            work.s_reply += s_reply
            work.s_count += s_count
            n_items = 0
            s_fixed = s_request = s_reply = s_count = 0.0
            if has_b:
                collect_beyond(work, s_b)

        def start() -> None:
            nonlocal n_items, s_fixed, s_request, s_reply, s_count
            self.armed = 0
            n = len(waiting)
            if n <= max_batch:  # everything that waits (the usual case)
                batch = list(waiting)
                waiting.clear()
            else:
                n = max_batch
                batch = [waiting.popleft() for _ in range(n)]
            cost = next(per_batch)
            batch_cpu = cost * inv
            acct._cpu[index] += batch_cpu
            share = batch_cpu / n
            n_items += n
            for req in batch:
                # cost_i = work.cost(req)
                cost_i = f = next(draw)
                s_fixed += f
                if has_q:
                    b = req.request_bytes
                    s_request += b
                    cost_i += kq * b
                if has_p:
                    b = req.reply_bytes
                    s_reply += b
                    cost_i += kp * b
                if has_c:
                    b = req.count
                    s_count += b
                    cost_i += kc * b
                if has_b:
                    cost_i = add_beyond(cost_i, req, beyond, s_b)
                req.work = cost_i * inv + share
                cost += cost_i
            self.busy = True
            self.batches += 1
            self.items += n
            submit(cost, self._after_cpu, batch)

        work.collect = collect
        return start

    def _cpu_done(self, batch: list[Request]) -> None:
        dev = self.device
        if dev is not None and any(r.cls in self.device_classes for r in batch):
            # what the visit carries: the requests of the classes that trigger it (Redis
            # appends the commands that changed data to the AOF, as they came in)
            s = dev.service_time(sum(r.request_bytes for r in batch
                                     if r.cls in self.device_classes))
            visit = s + dev.submit(s, self._device_done, batch)  # service plus its queue
            acct = self.acct
            for req in batch:
                acct._device[self.index] += visit
                req.work += visit  # so that _release books only the rest as waiting
            return
        self._send(batch)

    def _device_done(self, event: Any) -> None:
        """The batch's device visit is over (a device calls back in the event form)."""
        self._send(event._value)

    def _send(self, batch: list[Request]) -> None:
        """The items leave: first a notification, if one of them needs it (see above)."""
        if self.notify_of:
            for req in batch:
                kick = self.notify_of.get(req.cls)
                if kick is not None:
                    work, watched = kick
                    for c in watched:  # all_empty(watched), inlined
                        if c[0]:
                            break
                    else:
                        # the kick is part of the first write: the replies leave after it,
                        # whatever else is queued for this context (a timer of its
                        # length); its CPU time is taken from the context as well
                        cost = work.cost(req)
                        t = cost * self.inv_speed
                        for r in batch:
                            r.work += t / len(batch)
                        self.context.occupy(cost)
                        self.kernel.after(t, self._release_batch, batch)
                        return
                    break
        self._release_batch(batch)

    def _release_batch(self, batch: list[Request]) -> None:
        now = self._clock._now
        wait = self.acct.wait
        i = self.index
        for req in batch:
            wait[i] += (now - req.t_seg) - req.work
        self.busy = False
        for req in batch:
            req.pos += 1  # advance(req), inlined on the hot path
            req.route[req.pos].enter(req)
        if self.waiting and not self.busy:
            self._idle()
