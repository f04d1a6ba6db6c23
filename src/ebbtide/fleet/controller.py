"""The reconcile loop: observe → decide (a pure policy) → act (providers, drains) → record why.

Whatever the policy says, the controller keeps the fleet's safety rules: a busy worker is never
retired (it is asked to drain and finishes its job), min/max/quota and the per-tick launch
budget hold, static pools are never launched or retired, a pool whose launch fell short passes
the shortfall to the next pool in the same tick (spot shortage → on-demand), instances found by
the providers are adopted after a restart, workers that never report within their pool's boot
timeout, or stop reporting for longer than its hung timeout, are reaped.

A provider's failure is data about its pool (as Ray's autoscaler keeps `poll_errors`): every
provider call is guarded, the failing pool holds what it has and backs off (the interval,
doubling per failed call, at most `BACKOFF_MAX`), the policy sees it as not growable so the next
pool takes its share, and the error is recorded with the pool's decision for `status`, the
dashboard and `/metrics`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.fleet.causes import Cause, DecisionRecord, Note, PoolError, render
from ebbtide.fleet.model import (
    Decision,
    LaunchFailure,
    Observation,
    PoolDecision,
    PoolView,
    WorkerView,
)
from ebbtide.fleet.policies import Policy
from ebbtide.fleet.policies.common import LAUNCH_FAILURE_WINDOW, clamp, growable
from ebbtide.fleet.ports import DecisionRecorder, QueueSource, WorkerSource
from ebbtide.fleet.providers.base import Instance, ProtectsBusy, Provider, worker_id_for

log = logging.getLogger("ebbtide.fleet")

BACKOFF_MAX = 300.0  # longest pause between calls to a failing provider
T = TypeVar("T")


@dataclass(frozen=True)
class PoolOutcome:
    """What one tick did to one pool (the decision after the controller's rules)."""

    pool: str
    desired: int
    running: int
    busy: int
    launched: int = 0
    retired: int = 0
    drained: int = 0
    reaped: int = 0
    cause: Cause = Cause.STEADY
    notes: tuple[tuple[Note, int], ...] = ()
    detail: str = ""  # the policy's figures
    error: PoolError | None = None
    launch_error: str = ""

    def record(self, policy: str, at: float) -> DecisionRecord:
        return DecisionRecord(self.pool, policy, at, self.desired, self.running, self.busy, self.cause,
                              self.notes, self.detail, self.launched, self.retired, self.drained,
                              self.reaped, self.error, self.launch_error)

    @property
    def reason(self) -> str:
        return render(self.record("", 0.0))


@dataclass
class _PoolState:
    failures: deque[LaunchFailure] = field(default_factory=deque)
    last_launch_at: float | None = None
    last_retire_at: float | None = None
    last_recorded: tuple[Any, ...] | None = None
    error: PoolError | None = None


class Controller:
    def __init__(
        self,
        pools: Sequence[PoolConfig],
        providers: Mapping[str, Provider],
        policy: Policy,
        queue_source: QueueSource,
        workers: WorkerSource,
        recorder: DecisionRecorder,
        clock: Clock,
        launch_budget: int = 4,
        interval: float = 5.0,
        policy_name: str = "deadline",
        idle_grace: float = 60.0,
        stale_after: float = 90.0,
        record_all: bool = False,
    ) -> None:
        """`idle_grace`: an idle worker is retired only after idling this long (fleet.drain_idle_after).

        `stale_after`: a worker silent this long no longer counts as capacity.
        """
        missing = [p.name for p in pools if p.name not in providers]
        if missing:
            from ebbtide.errors import ConfigError

            raise ConfigError(f"no provider for pool(s) {', '.join(missing)}", hint="check fleet.pools")
        self.pools = tuple(pools)
        self.providers = dict(providers)
        self.policy = policy
        self.queue_source = queue_source
        self.workers = workers
        self.recorder = recorder
        self.clock = clock
        self.launch_budget = launch_budget
        self.interval = interval
        self.policy_name = policy_name
        self.idle_grace = idle_grace
        self.stale_after = stale_after
        self.record_all = record_all
        self.memory: Mapping[str, Any] = {}
        self.last_outcomes: list[PoolOutcome] = []
        self._state = {p.name: _PoolState() for p in pools}
        self._idle_since: dict[str, float] = {}
        self._failed_now: set[str] = set()  # pools whose provider failed in this tick
        # until when the next ticks would only repeat this one (None: no promise); see _quiet_until
        self.quiet_until: float | None = None

    # one tick ------------------------------------------------------------------------------------
    def tick(self) -> list[PoolDecision]:
        now = self.clock.now()
        self._failed_now = set()
        queue = self.queue_source.observe_queue()
        by_pool = self._reconcile(now)
        reaped = self._reap(now, by_pool)
        views = tuple(self._view(p, by_pool.get(p.name, []), now) for p in self.pools)
        obs = Observation(now, queue, views, self.workers.speeds(), self.memory)
        decision = self.policy(obs)
        self.memory = decision.memory
        outcomes = self._act(now, obs, {d.pool: d for d in decision.pools}, reaped)
        self._protect_busy(views, now)
        self._settle_errors(now)
        outcomes = [o if self._state[o.pool].error is None or o.error is not None
                    else replace(o, error=self._state[o.pool].error) for o in outcomes]
        self.last_outcomes = outcomes
        self.quiet_until = self._quiet_until(obs, decision, outcomes)
        for o in outcomes:
            self._record(now, o)
        return [PoolDecision(o.pool, o.desired, o.reason, o.cause) for o in outcomes]

    # provider errors -----------------------------------------------------------------------------
    def pool_errors(self) -> dict[str, PoolError]:
        """Pools whose provider is failing now, with the last error (Ray's `poll_errors`)."""
        return {name: st.error for name, st in self._state.items() if st.error is not None}

    def _paused(self, pool: str, now: float) -> bool:
        err = self._state[pool].error
        return err is not None and now < err.retry_at

    def _call(self, pool: str, op: str, now: float, fn: Callable[[], T]) -> tuple[bool, T | None]:
        """Run one provider call; a failure becomes the pool's error and starts its backoff."""
        if self._paused(pool, now) or pool in self._failed_now:
            return False, None
        try:
            return True, fn()
        except Exception as e:  # any provider failure is data about its pool, never a crashed tick
            st = self._state[pool]
            streak = (st.error.streak if st.error else 0) + 1
            pause = min(BACKOFF_MAX, self.interval * 2 ** (streak - 1))
            st.error = PoolError(op, f"{e.__class__.__name__}: {e}"[:300], now, streak, now + pause)
            self._failed_now.add(pool)
            log.warning("provider call failed; pool backs off",
                        extra={"pool": pool, "op": op, "error": st.error.message, "retry_in": pause})
            return False, None

    def _settle_errors(self, now: float) -> None:
        """A pool whose provider calls all succeeded this tick has recovered."""
        for name, st in self._state.items():
            if st.error is not None and name not in self._failed_now and not self._paused(name, now):
                log.info("provider recovered", extra={"pool": name, "after": st.error.streak})
                st.error = None

    # observe -------------------------------------------------------------------------------------
    def _reconcile(self, now: float) -> dict[str, list[WorkerView]]:
        """Match catalog workers with provider inventory: adopt strangers, bury the vanished."""
        by_pool: dict[str, list[WorkerView]] = {p.name: [] for p in self.pools}
        for w in self.workers.workers():
            if w.pool in by_pool and w.state != WorkerState.GONE:
                by_pool[w.pool].append(w)
        grace = max(2 * self.interval, 10.0)
        for pool in self.pools:
            if pool.provider == "static":
                by_pool[pool.name] = [w for w in by_pool[pool.name] if now - w.last_seen <= self.stale_after]
                continue
            ok, found = self._call(pool.name, "inventory", now, self.providers[pool.name].inventory)
            if not ok or found is None:  # hold what the catalog knows until the provider answers
                continue
            inventory = found
            known = by_pool[pool.name]
            kept: list[WorkerView] = []
            matched: set[str] = set()
            for inst in inventory:
                mine = [w for w in known if _matches(w, inst)]
                if not mine:
                    wid = worker_id_for(inst)
                    self.workers.register(wid, pool.name, inst.id, pool.price_per_hour)
                    log.info("adopted worker", extra={"pool": pool.name, "worker": wid, "instance": inst.id})
                    t0 = inst.launched_at
                    mine = [WorkerView(wid, pool.name, WorkerState.BOOTING, t0, t0, provider_id=inst.id,
                                       pid=inst.pid)]
                elif len(mine) > 1:  # a placeholder and the worker's own record: keep the reporting one
                    mine.sort(key=lambda w: (w.state == WorkerState.BOOTING, -w.last_seen))
                    for extra in mine[1:]:
                        self.workers.mark_gone(extra.id)
                        matched.add(extra.id)
                    mine = mine[:1]
                w = mine[0]
                if w.provider_id is None:
                    w = _with(w, provider_id=inst.id)
                matched.add(w.id)
                kept.append(w)
            for w in known:
                if w.id not in matched and now - w.started_at > grace:
                    self.workers.mark_gone(w.id)
                    log.info("worker vanished", extra={"pool": pool.name, "worker": w.id})
                elif w.id not in matched:
                    kept.append(w)
            by_pool[pool.name] = kept
        return by_pool

    def _reap(self, now: float, by_pool: dict[str, list[WorkerView]]) -> dict[str, dict[Note, int]]:
        """Retire workers that never reported healthy within the pool's boot timeout (seed 002),
        and workers that stopped reporting, busy or not, for longer than its hung timeout."""
        reaped: dict[str, dict[Note, int]] = {}
        for pool in self.pools:
            if pool.provider == "static":
                continue
            never = [w for w in by_pool[pool.name]
                     if w.state == WorkerState.BOOTING and now - w.started_at > pool.boot_timeout]
            hung = [w for w in by_pool[pool.name]
                    if w.state not in (WorkerState.BOOTING, WorkerState.GONE)
                    and now - w.last_seen > pool.hung_timeout]
            late = never + hung
            if not late:
                continue
            provider = self.providers[pool.name]
            # a hung worker is stopped hard where the provider can (`kill`): it would not drain
            kill = getattr(provider, "kill", provider.retire)
            failed = False
            for stop, group in ((provider.retire, never), (kill, hung)):
                ids = [w.provider_id for w in group if w.provider_id]
                if ids and not self._call(pool.name, "retire", now, partial(stop, ids))[0]:
                    failed = True
            if failed:
                continue  # still there; reaped once the provider answers
            for w in late:
                self.workers.mark_gone(w.id)
                what = "never reported" if w in never else "stopped reporting"
                log.warning(f"reaped worker that {what}", extra={"pool": pool.name, "worker": w.id,
                                                                 "job": w.job_id})
            gone = {w.id for w in late}
            by_pool[pool.name] = [w for w in by_pool[pool.name] if w.id not in gone]
            counts = {Note.REAP_UNHEALTHY: len(never), Note.REAP_HUNG: len(hung)}
            reaped[pool.name] = {k: v for k, v in counts.items() if v}
        return reaped

    def _view(self, pool: PoolConfig, workers: list[WorkerView], now: float) -> PoolView:
        st = self._state[pool.name]
        while st.failures and st.failures[0].at < now - LAUNCH_FAILURE_WINDOW:
            st.failures.popleft()
        for w in workers:
            if w.state == WorkerState.IDLE and not w.busy:
                self._idle_since.setdefault(w.id, now)
            else:
                self._idle_since.pop(w.id, None)
        err = st.error.message if st.error is not None else None
        return PoolView(pool, tuple(workers), tuple(st.failures), st.last_launch_at, st.last_retire_at, err)

    # act -----------------------------------------------------------------------------------------
    def _act(
        self, now: float, obs: Observation, wanted: dict[str, PoolDecision],
        reaped: dict[str, dict[Note, int]],
    ) -> list[PoolOutcome]:
        budget = self.launch_budget
        carry = 0
        out: list[PoolOutcome] = []
        for view in obs.pools:
            dec = wanted.get(view.name) or PoolDecision(view.name, view.running, "policy said nothing")
            live = list(view.live)
            busy = view.busy
            notes: list[tuple[Note, int]] = list(reaped.get(view.name, {}).items())
            n_reaped = sum(n for _, n in notes)
            if view.static:
                out.append(PoolOutcome(view.name, len(live), len(live), busy, reaped=n_reaped,
                                       cause=Cause.STATIC, notes=tuple(notes), detail=dec.reason))
                continue
            if view.name in self._failed_now or self._paused(view.name, now):
                # hold: no provider calls until the backoff is over; the next pool takes the growth
                err = self._state[view.name].error
                notes += [(Note.PROVIDER_ERROR, 1), (Note.BACKOFF, 1)]
                if carry:
                    notes.append((Note.FALLBACK, carry))
                out.append(PoolOutcome(view.name, len(live), len(live), busy, reaped=n_reaped,
                                       cause=Cause.PROVIDER_ERROR, notes=tuple(notes), detail=dec.reason,
                                       error=err))
                continue
            cfg = view.config
            desired = clamp(view, dec.desired + carry)
            if carry:
                notes.append((Note.FALLBACK, carry))
            carry = 0
            if not growable(view, now):
                notes.append((Note.POOL_FAILING, 1))
            launched = retired = drained = 0
            if desired > len(live):
                need = desired - len(live)
                undrained = self._undrain(view, need)
                need -= undrained
                if undrained:
                    notes.append((Note.UNDRAIN, undrained))
                not_gone = sum(1 for w in view.workers if w.state != WorkerState.GONE)
                room = (cfg.quota - not_gone) if cfg.quota is not None else need
                n = max(0, min(need, budget, room))
                if n < need:
                    notes.append((Note.DEFERRED_BUDGET if n == budget else Note.DEFERRED_QUOTA, need - n))
                if n:
                    launched, short = self._launch(view, n, now)
                    budget -= launched
                    if launched:
                        notes.append((Note.LAUNCH, launched))
                    if short:
                        carry = short
                        notes.append((Note.LAUNCH_SHORT, short))
            elif desired < len(live):
                retired, drained, held, protected, kept = self._shrink(view, len(live) - desired, now)
                if retired:
                    notes.append((Note.RETIRE_IDLE, retired))
                if protected:
                    notes.append((Note.PROTECT_BUSY, protected))
                if kept:
                    notes.append((Note.KEEP_BUSY, kept))
                if held:
                    notes.append((Note.IDLE_GRACE, held))
            running = len(live) + launched - retired
            err = self._state[view.name].error if view.name in self._failed_now else None
            if err is not None:
                notes.append((Note.PROVIDER_ERROR, 1))
            launch_error = self._state[view.name].failures[-1].message if carry else ""
            out.append(PoolOutcome(view.name, desired, running, busy, launched, retired, drained, n_reaped,
                                   dec.cause, tuple(notes), dec.reason, err, launch_error))
        return out

    def _protect_busy(self, views: Sequence[PoolView], now: float) -> None:
        """Providers whose platform may pick victims itself (an ASG) protect exactly the busy ones."""
        for view in views:
            provider = self.providers[view.name]
            if isinstance(provider, ProtectsBusy):
                busy = {w.provider_id for w in view.live if w.busy and w.provider_id}
                self._call(view.name, "protect", now, partial(provider.sync_protection, busy))

    def _undrain(self, view: PoolView, need: int) -> int:
        """A worker asked to drain that is still working is cheaper to keep than a new launch."""
        back = [w for w in view.workers if w.drain and w.state in (WorkerState.IDLE, WorkerState.BUSY)][:need]
        for w in back:
            self.workers.set_drain(w.id, False)
        return len(back)

    def _launch(self, view: PoolView, n: int, now: float) -> tuple[int, int]:
        """(launched, short). A raised error is the pool's provider error; a short launch (spot
        shortage, quota) is a launch failure the policy steers around."""
        provider = self.providers[view.name]
        ok, res = self._call(view.name, "launch", now, lambda: provider.launch(n))
        if not ok or res is None:
            err = self._state[view.name].error
            self._state[view.name].failures.append(LaunchFailure(now, err.message if err else "failed", n, 0))
            return 0, n
        for inst in res.instances:
            self.workers.register(worker_id_for(inst), view.name, inst.id, view.config.price_per_hour)
        st = self._state[view.name]
        if res.launched:
            st.last_launch_at = now
        if res.short:
            err_text = res.error or "provider launched fewer than asked"
            st.failures.append(LaunchFailure(now, err_text, n, res.launched))
            log.warning("launch fell short", extra={"pool": view.name, "asked": n, "got": res.launched,
                                                     "error": err_text})
            return res.launched, res.short
        log.info("launched", extra={"pool": view.name, "count": res.launched})
        return res.launched, 0

    def _shrink(self, view: PoolView, surplus: int, now: float) -> tuple[int, int, int, int, int]:
        """Remove `surplus` workers: idle ones are retired, busy ones only asked to drain.

        Returns (retired, drained, idle held by their grace, busy asked to drain, busy kept: a
        count-based pool's busy workers, which cannot be named to the platform)."""
        provider = self.providers[view.name]
        idle = [w for w in view.live if not w.busy and w.state == WorkerState.IDLE]
        idle.sort(key=lambda w: self._idle_since.get(w.id, now))
        ripe = [w for w in idle if now - self._idle_since.get(w.id, now) >= self.idle_grace]
        busy = sorted((w for w in view.live if w.busy), key=lambda w: w.progress)
        held = min(surplus, len(idle)) - min(surplus, len(ripe))
        pick_idle = ripe[:surplus]
        # busy workers are drained only when idle ones cannot make up the surplus
        pick_busy = busy[: max(0, surplus - len(idle))]
        retired = drained = protected = 0
        if pick_idle and not provider.retires_specific:
            # An ECS service picks which task stops: lower its count and it stops unprotected (idle)
            # tasks. Draining instead would make the service start a replacement for each exit.
            still_idle = self._still_idle({w.id for w in pick_idle})
            ids = [w.provider_id for w in pick_idle if w.provider_id and w.id in still_idle]
            if ids:
                _, gone = self._call(view.name, "retire", now, lambda: provider.retire(ids))
                retired = len(gone or [])
        elif pick_idle:
            still_idle = self._still_idle({w.id for w in pick_idle})
            by_instance = {w.provider_id: w for w in pick_idle if w.provider_id and w.id in still_idle}
            done: list[str] = []
            if by_instance:
                _, gone = self._call(view.name, "retire", now, lambda: provider.retire(list(by_instance)))
                done = list(gone or [])
            for pid in done:
                self.workers.mark_gone(by_instance[pid].id)
                self._idle_since.pop(by_instance[pid].id, None)
            retired = len(done)
            for w in pick_idle:
                if w.provider_id not in done:
                    self.workers.set_drain(w.id, True)
                    drained += 1
        for w in pick_busy if provider.retires_specific else ():
            self.workers.set_drain(w.id, True)
            drained += 1
            protected += 1
        kept = 0 if provider.retires_specific else len(pick_busy)  # (retired once idle)
        if retired:
            self._state[view.name].last_retire_at = now
            log.info("retired idle workers", extra={"pool": view.name, "count": retired})
        return retired, drained, held, protected, kept

    def _still_idle(self, ids: set[str]) -> set[str]:
        """Re-read just before retiring: a worker may have leased a job since the observation."""
        return {w.id for w in self.workers.workers()
                if w.id in ids and w.state == WorkerState.IDLE and not w.busy}

    def _quiet_until(self, obs: Observation, decision: Decision, outcomes: list[PoolOutcome]) -> float | None:
        """Until when, if nothing but the clock changes, a tick would do nothing.

        The policy's own promise (`Decision.stable_until`), cut short by the controller's clocks:
        an idle or booting worker of a scaled pool (idle grace, boot timeout) or a launch failure
        leaving its window. It assumes workers keep reporting (one falling silent is a change). A
        tick that acted promises nothing: the next one records the settled state. A simulator
        uses this to skip ticks; the live loop keeps ticking.
        """
        until = decision.stable_until
        acted = any(o.launched or o.retired or o.drained or o.reaped or o.error for o in outcomes)
        if until is None or acted:
            return None
        for view in obs.pools:
            for w in view.workers:
                if not view.static and w.state in (WorkerState.IDLE, WorkerState.BOOTING) and not w.busy:
                    return None
            for f in view.launch_failures:
                until = min(until, f.at + LAUNCH_FAILURE_WINDOW)
        return until

    # record --------------------------------------------------------------------------------------
    def _record(self, now: float, o: PoolOutcome) -> None:
        st = self._state[o.pool]
        err = (o.error.op, o.error.message) if o.error else None
        key = (o.desired, o.running, o.busy, o.launched, o.retired, o.drained, o.reaped, o.cause, err)
        if not self.record_all and key == st.last_recorded:
            return
        st.last_recorded = key
        rec = o.record(self.policy_name, now)
        self.recorder.record(rec)
        log.info("fleet decision", extra={"pool": o.pool, "desired": o.desired, "running": o.running,
                                          "busy": o.busy, "launched": o.launched, "retired": o.retired,
                                          "cause": str(o.cause), "reason": render(rec)})


def _matches(w: WorkerView, inst: Instance) -> bool:
    return (
        w.id == inst.worker_id
        or (w.provider_id is not None and w.provider_id == inst.id)
        or (inst.pid is not None and w.pid == inst.pid)
    )


def _with(w: WorkerView, **changes: Any) -> WorkerView:
    return replace(w, **changes)
