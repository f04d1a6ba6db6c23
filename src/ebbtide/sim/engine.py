"""Discrete-event engine: a heap of timed events over the simulated world, on a `VirtualClock`.

The scaler (the real `Controller`, or AWS's actuation of the real policies) ticks every setup
interval of virtual time. While nothing is queued, running or paid for, ticks skip ahead to the
next arrival — an idle fleet at zero has nothing to decide — which is what lets a month simulate
in seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import VirtualClock
from ebbtide.config.sections import MediaConfig
from ebbtide.fleet.model import ARRIVAL_WINDOW, QueueView, WaitingJob, WorkerView
from ebbtide.fleet.policies.deadline import MAX_PLAN_JOBS
from ebbtide.fleet.split_goal import split_goal
from ebbtide.media.chunks import PoolCapacity
from ebbtide.queue.base import job_ids_of
from ebbtide.sim import world as W
from ebbtide.sim.chunked import PART, ChunkModel, split, split_step
from ebbtide.sim.fleets import SimFleet, SimPool, job_seconds, ladder_bytes_per_second
from ebbtide.sim.setups import Setup
from ebbtide.sim.squeue import SimQueue
from ebbtide.sim.workloads import JobSpec

# event kinds
ARRIVE, TICK, BOOTED, FINISH, LAPSE, NOTICE, RECLAIM, CALL = range(8)
SPOT_NOTICE = 120.0  # AWS's spot interruption warning
SKIP_SECONDS = 2.0
RECENT_SPEEDS = 20  # the catalog's recent_speeds limit  # a ledger check on an already-finished job
START = 1_700_000_000.0


@dataclass(frozen=True)
class Sample:
    """One point of the timeline: queue depth and workers per pool."""

    t: float
    visible: int
    in_flight: int
    workers: tuple[tuple[str, int], ...]


class Engine:
    def __init__(
        self,
        jobs: Sequence[JobSpec],
        fleet: SimFleet,
        setup: Setup,
        seed: int = 0,
        horizon: float | None = None,
        skip: bool = True,
        chunks: ChunkModel | None = None,
    ) -> None:
        """`skip`: skip ticks that provably change nothing (tests compare with skip=False).
        `chunks`: split long uploads into parallel chunk jobs (sim/chunked.py)."""
        self.chunks = chunks
        self.clock = VirtualClock(START)
        self.skip = skip
        self.quiet_fn: Callable[[], float | None] = lambda: None
        self.controlled = False  # set when the real controller drives this engine
        self.fleet = fleet
        self.setup = setup
        self.rng = random.Random(seed)
        self.queue = SimQueue(setup.max_receives, clock=self.clock)  # the real `Queue` port
        self.jobs = {j.id: W.JobRun(j) for j in jobs}
        self.unsettled = len(self.jobs)  # jobs neither ready nor dead
        self.paid_live = 0  # paid instances not yet ended
        self.specs = list(jobs)
        last = max((j.arrival for j in jobs), default=0.0)
        self.end = START + (horizon if horizon is not None else last + 14 * 86400.0)
        self.instances: dict[str, W.Instance] = {}
        self.workers: dict[str, W.Worker] = {}
        self.live: dict[str, W.Worker] = {}  # workers not gone
        self.live_instances: dict[str, W.Instance] = {}  # instances not ended
        self.attempts: list[W.Attempt] = []
        self.samples: list[Sample] = []
        self.events = 0
        self.ticks = 0
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self._arrivals: deque[float] = deque()
        # pool -> the latest winning attempts' speeds, as the catalog's `recent_speeds` keeps them
        self._speed: dict[str, deque[float]] = {}
        self._out_bps = ladder_bytes_per_second()
        self._media = MediaConfig()  # the split plans with the production defaults
        self._splits: dict[tuple[str, str], list[JobSpec]] = {}
        self._dead_seen: set[str] = set()
        self._queued_at: dict[str, float] = {}  # split attempts running: their parts
        self._launched_since_tick = 0
        self.tick_fn: Callable[[], object] = lambda: None
        self.on_worker_gone: Callable[[W.Worker], None] = lambda w: None
        for j in jobs:
            self.push(START + j.arrival, ARRIVE, j.id)
        for pool in fleet.pools:
            if pool.config.provider == "static":
                for _ in range(pool.config.max):
                    self.start_worker(pool, boot=0.0)

    # --- event plumbing ------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock.now()

    def push(self, t: float, kind: int, payload: object) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), kind, payload))

    def run(self) -> None:
        self.push(START, TICK, None)
        while self._heap:
            t, _, kind, payload = heapq.heappop(self._heap)
            if t > self.end:
                break
            self.clock.set(t)
            self.events += 1
            if kind == TICK:
                if self._done():
                    break
                self._tick()
            elif kind == ARRIVE:
                self._arrive(str(payload))
            elif kind == BOOTED:
                self._booted(str(payload))
            elif kind == FINISH:
                self._finish(payload)  # type: ignore[arg-type]
            elif kind == LAPSE:  # a lease ran out (the queue sees it by itself): workers may take it
                self.dispatch()
            elif kind == NOTICE:
                self._notice(str(payload))
            elif kind == RECLAIM:
                self._reclaim(str(payload))
            elif kind == CALL:
                payload()  # type: ignore[operator]
        self.clock.set(min(max(self.now, START), self.end))
        for inst in list(self.live_instances.values()):
            if inst.price_per_hour > 0:
                self.end_instance(inst)

    def _done(self) -> bool:
        """Every job settled and nothing paid is left running."""
        s = self.queue.stats()
        if s.visible or s.in_flight or s.delayed:
            return False
        return self.unsettled == 0 and self.paid_live == 0

    def new_id(self) -> int:
        return next(self._ids)

    def _quiet(self) -> bool:
        """Nothing waits, nothing paid runs, every lease is held by a live worker: no policy has
        anything to decide until the next event, so ticks until then would all be no-ops."""
        s = self.queue.stats()
        if s.visible or s.delayed or self._launched_since_tick or self.paid_live:
            return False
        held = sum(1 for w in self.live.values() if w.attempt is not None)
        return held >= s.in_flight

    def _tick(self) -> None:
        self.ticks += 1
        self._launched_since_tick = 0
        self.tick_fn()
        self._sample()
        step = self.setup.interval
        nxt = self.now + step
        if not self.skip or not self._heap:
            self.push(nxt, TICK, None)
            return
        # Skip ticks that provably repeat this one: until the next event of any kind (no tick is
        # queued now), and no later than the controller's promise that only the clock moves.
        # (the real controller gives its own promise; AWS's actuation only the idle-fleet one)
        until = self.quiet_fn() if self.controlled else (math.inf if self._quiet() else None)
        if until is not None and until > self.now:
            first = min(self._heap[0][0], until)
            nxt = max(nxt, START + math.ceil((first - START) / step - 1e-9) * step)
        self.push(nxt, TICK, None)

    def _sample(self) -> None:
        counts: dict[str, int] = {}
        for w in self.live.values():
            counts[w.pool] = counts.get(w.pool, 0) + 1
        q = self.queue.stats()
        s = Sample(self.now - START, q.visible, q.in_flight, tuple(sorted(counts.items())))
        if not self.samples or (s.visible, s.in_flight, s.workers) != (
            self.samples[-1].visible,
            self.samples[-1].in_flight,
            self.samples[-1].workers,
        ):
            self.samples.append(s)

    # --- jobs ----------------------------------------------------------------------------------
    def _arrive(self, job_id: str) -> None:
        self._send(job_id)
        self._arrivals.append(self.now)
        self.dispatch()

    def _queue_parts(self, job: W.JobRun, parts: Sequence[JobSpec]) -> None:
        """The split finished: its parts become jobs (once; a re-run split finds them there)."""
        if job.parts or job.dead:
            return
        job.parts = len(parts)
        self.unsettled += len(parts)  # each part settles; the upload settles at its stitch
        for p in parts:
            self.jobs[p.id] = W.JobRun(p)
            self._send(p.id)

    def capacity(self, splitter: W.Worker | None = None) -> list[PoolCapacity]:
        """What the fleet offers a source being split now: idle workers (not the one splitting,
        which the planner counts itself), and launchable ones, at the speeds the policy plans with."""
        out = []
        for pool in self.fleet.pools:
            mine = [w for w in self.live.values() if w.pool == pool.name]
            idle = sum(1 for w in mine if w.state == WorkerState.IDLE and not w.drain and w is not splitter)
            launchable = 0 if pool.config.provider == "static" else max(0, pool.config.max - len(mine))
            price = 0.0 if pool.config.provider == "static" else pool.config.price_per_hour
            speed = self._planned_speed(pool)
            out.append(PoolCapacity(idle, launchable, pool.config.boot_time, speed, price))
        return out

    def _planned_speed(self, pool: SimPool) -> float:
        """Measured (median of the recent winners) else configured, as `Observation.speed`."""
        recent = self._speed.get(pool.name)
        return statistics.median(recent) if recent else pool.config.speed

    def _part_ready(self, part: W.JobRun) -> None:
        parent = self.jobs[str(part.spec.parent)]
        parent.parts_ready.add(part.spec.id)
        first = {f"{parent.spec.id}{PART}c000", f"{parent.spec.id}{PART}aud"}
        if parent.playable_at is None and first <= parent.parts_ready:
            parent.playable_at = self.now
        if len(parent.parts_ready) == parent.parts and self.chunks is not None:

            def stitched() -> None:
                if parent.ready_at is None and not parent.dead:
                    parent.ready_at = self.now
                    self.unsettled -= 1

            self.push(self.now + self.chunks.stitch_seconds, CALL, stitched)

    def uploads(self) -> list[W.JobRun]:
        """The uploads (a chunked one's parts are not uploads of their own)."""
        return [j for j in self.jobs.values() if j.spec.parent is None]

    def duration(self, spec: JobSpec, pool: SimPool) -> float:
        """Wall seconds on this pool: download + media ÷ speed + upload of the ladder (+ a part's
        start-up overhead; a chunk downloads only its range)."""
        return job_seconds(spec, pool, self._out_bps)

    def dispatch(self) -> None:
        """Idle workers receive visible messages; the first pool in the config's order goes first
        (the seed's Jetson "grabs jobs first")."""
        if not self.queue.stats().visible:
            return
        order = {p.name: i for i, p in enumerate(self.fleet.pools)}
        idle = [w for w in self.live.values() if w.state == WorkerState.IDLE and not w.drain]
        idle.sort(key=lambda w: (order[w.pool], w.idle_since or 0.0, w.id))
        for w in idle:
            if not self._take(w):
                break

    def _send(self, job_id: str) -> None:
        self._queued_at.setdefault(job_id, self.now)  # the catalog's created_at, as production reads it
        self.queue.send({"job_id": job_id, "kind": self.jobs[job_id].spec.kind})

    def _take(self, w: W.Worker) -> bool:
        """`w` receives one message; False when there was none to lease."""
        dead_before = self.queue.stats().dead
        got = self.queue.receive(wait=0, lease=self.setup.lease)
        if self.queue.stats().dead > dead_before:
            self._settle_dead()
        if not got:
            return False
        msg = got[0]
        job = self.jobs[str(msg.body["job_id"])]
        pool = self.fleet.pool(w.pool)
        skipped = job.ready_at is not None and self.setup.ledger
        parts: list[JobSpec] = []
        if not skipped and self.chunks is not None and job.spec.parent is None:
            # the upload's transcode job probes the source and, when it is long, queues its parts
            price = 0.0 if pool.config.provider == "static" else pool.config.price_per_hour
            age = self.now - self._queued_at[job.spec.id]
            goal = split_goal(self.setup.policy, self._media, age, self._planned_speed(pool), price)
            parts = split(job.spec, self.capacity(splitter=w), self.chunks, goal)
        if skipped:
            dur, dup = SKIP_SECONDS, False
        elif parts:
            dur = self.duration(split_step(job.spec, self.chunks), pool)  # type: ignore[arg-type]
            dup = job.running > 0
            job.running += 1
            self._splits[msg.receipt, job.spec.id] = parts
        else:
            dur = self.duration(job.spec, pool)
            dup = job.running > 0 or job.ready_at is not None
            job.running += 1
        a = W.Attempt(job.spec.id, w.id, w.pool, msg.receipt, self.now, self.now + dur, duplicate=dup,
                      delivery=msg)
        if skipped:
            a.outcome = W.SKIPPED
        job.attempts.append(a)
        self.attempts.append(a)
        self._set_idle(w, False)
        w.state = WorkerState.BUSY
        w.attempt = a
        self.push(a.planned_end, FINISH, a)
        if self.setup.heartbeat:
            # the worker's heartbeat extends the lease every lease/3 while it works: in effect,
            # it holds the message until its planned end (and one lease more if it stops, below)
            self.queue.extend(msg, dur + self.setup.lease)
        elif dur > self.setup.lease:
            self.push(msg.leased_until, LAPSE, None)
        return True


    def _settle_dead(self) -> None:
        """Messages the queue dead-lettered (received max_receives times): their jobs fail."""
        for d in self.queue.dead_letters(limit=len(self.jobs) + 1):
            if d.message_id in self._dead_seen:
                continue
            self._dead_seen.add(d.message_id)
            for job_id in job_ids_of([d.body]):
                job = self.jobs[job_id]
                if not job.dead and job.ready_at is None:
                    self.unsettled -= 1
                job.dead = True
                parent = self.jobs[job.spec.parent] if job.spec.parent else None
                if parent is not None and not parent.dead and parent.ready_at is None:
                    parent.dead = True  # one chunk dead: the upload fails
                    self.unsettled -= 1

    def _finish(self, a: W.Attempt) -> None:
        if a.end is not None:  # killed or interrupted before it could finish
            return
        w = self.workers[a.worker_id]
        job = self.jobs[a.job_id]
        a.end = self.now
        parts = self._splits.pop((a.receipt, a.job_id), None)
        if parts is not None:  # a split: its parts are queued, the upload is ready at its stitch
            job.running -= 1
            a.outcome = W.WON if not job.parts else W.DUPLICATE
            self._queue_parts(job, parts)
        elif a.outcome != W.SKIPPED:
            job.running -= 1
            if job.ready_at is None:
                job.ready_at = self.now
                if not job.dead:
                    self.unsettled -= 1
                a.outcome = W.WON
                if job.spec.parent is not None:
                    self._part_ready(job)
                # audio is no measure of the video ladder's speed (nor is a split: not here)
                if job.spec.kind != "transcode-audio" and self.now > a.start:
                    recent = self._speed.setdefault(a.pool, deque(maxlen=RECENT_SPEEDS))
                    recent.append(job.spec.media_seconds / (self.now - a.start))
            else:
                a.outcome = W.DUPLICATE
                a.duplicate = True
        assert a.delivery is not None
        self.queue.ack(a.delivery)  # False when the lease lapsed: SQS's expired receipt
        inst = self.instances[w.instance_id]
        inst.busy_seconds += self.now - a.start
        w.attempt = None
        w.jobs_done += 1
        pool = self.fleet.pool(w.pool)
        if w.drain or w.noticed or pool.single_run:
            self.stop_worker(w)
        else:
            w.state = WorkerState.IDLE
            self._set_idle(w, True)
        self.dispatch()

    def _end_attempt(self, w: W.Worker, outcome: str, release: bool) -> None:
        a = w.attempt
        if a is None:
            return
        job = self.jobs[a.job_id]
        a.end = self.now
        self._splits.pop((a.receipt, a.job_id), None)  # a split cut short queues nothing
        if a.outcome != W.SKIPPED:
            a.outcome = outcome
            job.running -= 1
        self.instances[w.instance_id].busy_seconds += self.now - a.start
        w.attempt = None
        d = a.delivery
        assert d is not None
        if release:
            if self.queue.release(d):
                self.dispatch()
        elif self.setup.heartbeat:
            # the heartbeat stops with the worker; the last extension runs out within one lease
            if self.queue.extend(d, self.setup.lease):
                self.push(self.now + self.setup.lease, LAPSE, None)
        elif d.leased_until > self.now:
            self.push(d.leased_until, LAPSE, None)

    # --- workers and instances -----------------------------------------------------------------
    def start_worker(
        self, pool: SimPool, boot: float | None = None, instance: W.Instance | None = None
    ) -> W.Worker:
        n = next(self._ids)
        if instance is None:
            instance = W.Instance(f"i-{n:06d}", pool.name, pool.config.price_per_hour, self.now)
            self.instances[instance.id] = instance
            self.live_instances[instance.id] = instance
            self.paid_live += instance.price_per_hour > 0
        w = W.Worker(f"w-{pool.name}-{n}", pool.name, instance.id, self.now, last_seen=self.now)
        instance.worker_id = w.id
        self.workers[w.id] = w
        self.live[w.id] = w
        if boot is None:
            base = pool.config.boot_time
            boot = max(0.0, base * (1 + self.rng.uniform(-pool.boot_jitter, pool.boot_jitter)))
        self.push(self.now + boot, BOOTED, w.id)
        self._launched_since_tick += 1
        if pool.config.spot and pool.interruptions_per_hour > 0:
            at = self.now + self.rng.expovariate(pool.interruptions_per_hour / 3600.0)
            if at < self.end:
                self.push(at, NOTICE, w.id)
        return w

    def _booted(self, worker_id: str) -> None:
        w = self.workers[worker_id]
        if w.state != WorkerState.BOOTING:
            return
        inst = self.instances[w.instance_id]
        if inst.ready_at is None:
            inst.ready_at = self.now
        w.state = WorkerState.IDLE
        w.last_seen = self.now
        self._set_idle(w, True)
        if w.drain:
            self.stop_worker(w)
            return
        self.dispatch()

    def _set_idle(self, w: W.Worker, idle: bool) -> None:
        if idle:
            w.idle_since = self.now
        elif w.idle_since is not None:
            w.idle_seconds += self.now - w.idle_since
            w.idle_since = None

    def stop_worker(
        self, w: W.Worker, outcome: str = W.KILLED, release: bool = False, end_instance: bool = True
    ) -> None:
        """The worker goes; a job it still held ends with `outcome`."""
        if w.state == WorkerState.GONE:
            return
        if w.attempt is not None:
            self._end_attempt(w, outcome, release)
        self._set_idle(w, False)
        w.state = WorkerState.GONE
        self.live.pop(w.id, None)
        inst = self.instances[w.instance_id]
        if end_instance:
            self.end_instance(inst)
        inst.worker_id = None
        self.on_worker_gone(w)

    def end_instance(self, inst: W.Instance) -> None:
        if inst.ended_at is None:
            inst.ended_at = self.now
            self.live_instances.pop(inst.id, None)
            self.paid_live -= inst.price_per_hour > 0

    def _notice(self, worker_id: str) -> None:
        w = self.workers[worker_id]
        if w.state == WorkerState.GONE:
            return
        w.noticed = True
        self.push(self.now + SPOT_NOTICE, RECLAIM, worker_id)
        # ebbtide's worker acts on the notice: it gives back a job it cannot finish in time
        if self.setup.actuation == "ebbtide" and w.attempt is not None:
            if w.attempt.planned_end - self.now > SPOT_NOTICE - 10:
                self._end_attempt(w, W.INTERRUPTED, release=True)
                w.state = WorkerState.DRAINING
        elif self.setup.actuation == "ebbtide" and w.state == WorkerState.IDLE:
            w.state = WorkerState.DRAINING
            self._set_idle(w, False)

    def _reclaim(self, worker_id: str) -> None:
        self.stop_worker(self.workers[worker_id], outcome=W.INTERRUPTED)

    # --- what the controller sees ----------------------------------------------------------------
    def worker_view(self, w: W.Worker) -> WorkerView:
        a = w.attempt
        progress, work = 0.0, None
        if a is not None:
            span = a.planned_end - a.start
            progress = min(1.0, (self.now - a.start) / span) if span > 0 else 1.0
            work = self.jobs[a.job_id].spec.media_seconds
        return WorkerView(
            w.id,
            w.pool,
            w.state,
            w.started_at,
            self.now,
            job_id=a.job_id if a else None,
            progress=progress,
            job_work_seconds=work,
            drain=w.drain,
            provider_id=w.instance_id,
        )

    def queue_view(self) -> QueueView:
        now = self.now
        while self._arrivals and self._arrivals[0] < now - ARRIVAL_WINDOW:
            self._arrivals.popleft()
        visible = [self.jobs[j].spec for j in self.queue.visible_job_ids()]
        waiting = sum(spec.media_seconds for spec in visible)
        plan = tuple(WaitingJob(spec.media_seconds, spec.parent or spec.id, now - self._queued_at[spec.id])
                     for spec in visible[:MAX_PLAN_JOBS])  # fmt: skip
        running = 0.0
        for w in self.live.values():
            a = w.attempt
            if a is not None and a.outcome == W.RUNNING:
                span = a.planned_end - a.start
                left = 1.0 - min(1.0, (now - a.start) / span) if span > 0 else 0.0
                running += self.jobs[a.job_id].spec.media_seconds * left
        return QueueView.from_stats(
            self.queue.stats(),
            waiting_work_seconds=waiting,
            running_work_seconds=running,
            arrival_rate=len(self._arrivals) / ARRIVAL_WINDOW,
            waiting_uploads=len({spec.parent or spec.id for spec in visible}),
            waiting_jobs=plan,
        )

    def speeds(self) -> dict[str, float]:
        """The median of each pool's recent speeds, as production's `CatalogFleetState.speeds`."""
        return {p: statistics.median(v) for p, v in self._speed.items() if v}
