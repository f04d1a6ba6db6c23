"""The worker: long-poll, lease, run the handler, heartbeat, finish — and stop safely.

Threads: the main thread polls and supervises; the handler runs on a job thread (so a stop signal
or a lost lease is acted on even while the handler is stuck); the heartbeat and the spot watcher
each have their own. The catalog's ledger decides which finished attempt counts, so a job that
was delivered twice is still done once.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import signal
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ebbtide.catalog.records import Attempt, Job
from ebbtide.catalog.states import TERMINAL_JOB_STATES, JobState, WorkerState
from ebbtide.errors import NotFound
from ebbtide.events.outbox import ProgressThrottle
from ebbtide.queue.base import Delivery
from ebbtide.reconcile import reconcile_dead_letters
from ebbtide.services import Services
from ebbtide.worker.context import Cancelled, JobContext
from ebbtide.worker.decisions import backoff, describe_failure
from ebbtide.worker.ecs_protection import EcsProtection, ecs_protection_for
from ebbtide.worker.foreign import Unadoptable, adopt, is_foreign
from ebbtide.worker.handlers import Outcome, resolve
from ebbtide.worker.heartbeat import CurrentJob, Heartbeat
from ebbtide.worker.identity import ENV_PROVIDER_ID, discover_provider_id
from ebbtide.worker.messages import JobMessage
from ebbtide.worker.orphan import launcher_gone
from ebbtide.worker.riding import lease_taken_over, riding_services
from ebbtide.worker.spot import ImdsClient, SpotNotice, SpotWatcher, spot_enabled
from ebbtide.worker.status import StatusWriter
from ebbtide.worker.tempdirs import TempRoot
from ebbtide.worker.verdict import Verdict, verdict
from ebbtide.worker.withdrawn import is_withdrawn

log = logging.getLogger(__name__)

ENV_JOB_ID = "EBBTIDE_JOB_ID"
ENV_WORKER_ID = "EBBTIDE_WORKER_ID"
CANCEL_WAIT = 5.0  # how long a cancelled handler gets to unwind before the worker moves on


class Result(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # will be retried, or dead-lettered
    RELEASED = "released"  # the worker stopped; the message is visible again
    LOST = "lost"  # the lease went to another worker
    SKIPPED = "skipped"  # the job was already finished or deleted


@dataclass
class _Run:
    outcome: Outcome | None = None
    error: BaseException | None = None


def default_worker_id() -> str:
    return os.environ.get(ENV_WORKER_ID) or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        services: Services,
        pool: str = "default",
        once: bool = False,
        idle_exit: float | None = None,
        job_id: str | None = None,
        heartbeat: bool | None = None,
        worker_id: str | None = None,
        install_signals: bool = True,
    ) -> None:
        self.services = services
        cfg = services.settings.worker
        self.cfg = cfg
        self.pool = pool
        self.once = once or job_id is not None
        self.idle_exit = idle_exit if idle_exit is not None else cfg.idle_exit
        self.job_id = job_id
        self.extend_leases = cfg.heartbeat if heartbeat is None else heartbeat
        self.worker_id = worker_id or default_worker_id()
        self.lease = services.settings.queue.lease
        self.clock = services.clock
        self.host = socket.gethostname()
        self.provider_id: str | None = os.environ.get(ENV_PROVIDER_ID)
        self.price = next((p.price_per_hour for p in services.settings.fleet.pools if p.name == pool), 0.0)
        self._install_signals = install_signals
        self._stop = threading.Event()
        # queue and catalog calls ride out backend outages for up to outage_budget (riding.py)
        self.services = riding_services(services, cfg.outage_budget, self._stop)
        self._stop_now = False
        self._stop_at = 0.0
        self._stop_reason = ""
        self._drain = False
        self._state = WorkerState.BOOTING
        self._current: CurrentJob | None = None
        self._lock = threading.Lock()
        self._temp = TempRoot(cfg.temp_dir, self.worker_id)
        # the heartbeat ticks at the progress cadence; leases are extended and idle beats sent every
        # lease/3 (progress is one cheap catalog write; a lease extension is a queue call)
        self._beat_every = self.lease / 3
        self._beat = Heartbeat(min(self._beat_every, cfg.progress_every), self._tick)
        self._last_beat: tuple[float, WorkerState] | None = None
        self._ecs: EcsProtection | None = ecs_protection_for(cfg.ecs_protection, clock=self.clock)
        self._spot: SpotWatcher | None = None
        self._progress = ProgressThrottle(services.settings.events.progress_every)
        self.jobs_done = 0
        self.last_result: Result | None = None

    # public controls ----------------------------------------------------------------------------
    def request_stop(self, immediate: bool = False, reason: str = "stop requested") -> None:
        """Stop taking work. `immediate` (a spot notice) skips the grace period for the current job."""
        if not self._stop.is_set():
            self._stop_at = self.clock.monotonic()
            self._stop_reason = reason
        self._stop_now = self._stop_now or immediate
        self._stop.set()
        log.info(
            "worker stopping", extra={"worker_id": self.worker_id, "reason": reason, "immediate": immediate}
        )

    @property
    def state(self) -> WorkerState:
        return self._state

    # main loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Returns the process exit code: 0, or in single-run mode 1 when the job failed."""
        previous = self._signals_on()
        try:
            self._start()
            if self.job_id is not None:
                return self._run_named(self.job_id)
            return self._loop()
        finally:
            self._shutdown()
            self._signals_off(previous)

    def _loop(self) -> int:
        queue = self.services.queue
        idle_since = self.clock.monotonic()
        while not self._stop.is_set():
            if self._drain:
                log.info("drain flag set; exiting", extra={"worker_id": self.worker_id})
                return 0
            # The configured wait, whole: one SQS long poll per `queue.wait` while idle (a stop
            # signal is acted on when the poll returns, at most `queue.wait` later).
            wait = self.services.settings.queue.wait
            idle_exit = self.idle_exit
            if idle_exit is None and launcher_gone():  # `up` died: do not run on forever
                idle_exit = self.cfg.orphan_idle_exit
            if idle_exit is not None:
                left = idle_exit - (self.clock.monotonic() - idle_since)
                if left <= 0:
                    log.info("idle exit", extra={"worker_id": self.worker_id, "idle_exit": idle_exit})
                    return 0
                wait = min(wait, left)
            deliveries = queue.receive(wait=max(0.0, wait), lease=self.lease, max_messages=1)
            if not deliveries:
                continue
            delivery = deliveries[0]
            if self._stop.is_set():
                queue.release(delivery, 0)
                break
            result = self._handle(delivery)
            idle_since = self.clock.monotonic()
            if self.once and result is not Result.SKIPPED:
                return 0 if result is Result.SUCCEEDED else 1
        return 0

    def _run_named(self, job_id: str) -> int:
        """Single-run mode for one job: lease its message (releasing others at once); if it is not
        found within the queue's wait, run the job straight from its catalog record."""
        catalog, queue = self.services.catalog, self.services.queue
        job = catalog.get_job(job_id)
        if job.state in TERMINAL_JOB_STATES:
            log.info("job already finished", extra={"job_id": job_id, "state": str(job.state)})
            return 0 if job.state == JobState.SUCCEEDED else 1
        deadline = self.clock.monotonic() + self.services.settings.queue.wait
        while not self._stop.is_set() and self.clock.monotonic() < deadline:
            wait = max(0.0, deadline - self.clock.monotonic())
            found: Delivery | None = None
            for d in queue.receive(wait=wait, lease=self.lease, max_messages=10):
                if found is None and d.body.get("job_id") == job_id:
                    found = d
                else:
                    queue.release(d, 0)
            if found is not None:
                result = self._handle(found)
                return self._exit_code(job_id, result)
        if self._stop.is_set():
            return 0
        log.info("message not found; running from the catalog", extra={"job_id": job_id})
        attempt = catalog.start_attempt(job_id, self.worker_id, job.attempts + 1)
        if attempt is None:
            return self._exit_code(job_id, Result.SKIPPED)
        result = self._execute(catalog.get_job(job_id), attempt, None)
        return self._exit_code(job_id, result)

    def _exit_code(self, job_id: str, result: Result) -> int:
        if result is Result.SUCCEEDED:
            return 0
        if result is Result.SKIPPED:
            try:
                return 0 if self.services.catalog.get_job(job_id).state == JobState.SUCCEEDED else 1
            except NotFound:
                return 1
        return 1

    # one delivery -------------------------------------------------------------------------------
    def _handle(self, delivery: Delivery) -> Result:
        catalog, queue = self.services.catalog, self.services.queue
        try:
            msg = adopt(self.services, delivery.body) if is_foreign(delivery.body) else None
        except Unadoptable as e:
            queue.dead_letter(delivery, e.message)
            return Result.FAILED
        except Exception as e:  # the source's endpoint or the catalog is unreachable: try again later
            log.warning("could not adopt a foreign message; retrying: %s", e, extra={"error": str(e)})
            qcfg = self.services.settings.queue
            queue.release(delivery, backoff(delivery.receive_count, qcfg.backoff_base, qcfg.backoff_max))
            return Result.FAILED
        msg = msg or JobMessage.from_body(delivery.body)
        try:
            job = catalog.get_job(msg.job_id)
        except NotFound:
            # Never delete what we do not know: during a migration it is another system's job.
            reason = f"job {msg.job_id} is not in this catalog (another system's job, or a reset catalog)"
            log.warning("unknown job; dead-lettering its message", extra={"job_id": msg.job_id})
            queue.dead_letter(delivery, reason)
            return Result.SKIPPED
        if delivery.receive_count > queue.max_receives:  # a backend that delivers past the limit
            reason = f"received {delivery.receive_count} times (max_receives={queue.max_receives})"
            queue.dead_letter(delivery, reason)
            catalog.mark_dead(job.id, job.error or reason)
            return Result.FAILED
        attempt = catalog.start_attempt(job.id, self.worker_id, delivery.receive_count)
        if attempt is None:
            log.info("job already finished; acking", extra={"job_id": job.id})
            queue.ack(delivery)
            return Result.SKIPPED
        return self._execute(catalog.get_job(job.id), attempt, delivery)

    def _execute(self, job: Job, attempt: Attempt, delivery: Delivery | None) -> Result:
        extra = {"job_id": job.id, "attempt_id": attempt.id, "kind": job.kind, "worker_id": self.worker_id}
        log.info("job started", extra={**extra, "receive_count": attempt.number})
        current = CurrentJob(job.id, attempt.id, job.media_id, delivery)
        status = None if job.media_id else StatusWriter(self.services.store, self.clock, job.id, job.kind)
        job_dir = self._temp.make(job.id)
        with self._lock:
            self._current = current
            self._state = WorkerState.BUSY
        if self._ecs:
            self._ecs.ensure(busy=True)
        self._beat.poke()
        try:
            if status:
                status.started(attempt.number)
            ctx = JobContext(
                self.services,
                job,
                attempt,
                job_dir,
                current.cancel,
                status,
                current.progress,
                pool=self.pool,
            )
            run, stopped = self._supervise(ctx)
            result = self._conclude(job, attempt, delivery, current, run, stopped, status)
            log.info("job ended", extra={**extra, "result": result.value})
            self.last_result = result
            return result
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
            with self._lock:
                self._current = None
                self._state = WorkerState.DRAINING if self._stop.is_set() else WorkerState.IDLE
            self.jobs_done += 1
            if self._ecs:
                self._ecs.ensure(busy=False)
            self._beat.poke()

    def _supervise(self, ctx: JobContext) -> tuple[_Run, bool]:
        """Run the handler on its own thread; returns (what it did, whether a stop cancelled it)."""
        run = _Run()

        def target() -> None:
            try:
                handler = resolve(ctx.job.kind)
                run.outcome = handler(ctx)
            except BaseException as e:  # the handler's failure is data for _conclude
                run.error = e

        thread = threading.Thread(target=target, name=f"ebbtide-job-{ctx.job.id[:8]}", daemon=True)
        thread.start()
        stopped = False
        while thread.is_alive():
            thread.join(0.1)
            if self._stop.is_set() and not stopped and thread.is_alive():
                over = self.clock.monotonic() - self._stop_at >= self.cfg.grace
                if self._stop_now or over:
                    log.warning("cancelling the job to stop", extra={"job_id": ctx.job.id})
                    stopped = True
                    ctx.cancel.set()
                    thread.join(CANCEL_WAIT)  # give it a moment; then move on regardless
                    break
            if ctx.cancel.is_set() and not stopped:  # the lease was lost
                thread.join(CANCEL_WAIT)
                break
        return run, stopped

    def _conclude(
        self,
        job: Job,
        attempt: Attempt,
        delivery: Delivery | None,
        current: CurrentJob,
        run: _Run,
        stopped: bool,
        status: StatusWriter | None,
    ) -> Result:
        catalog, queue = self.services.catalog, self.services.queue
        if run.outcome is not None and run.error is None and not stopped:
            outcome = run.outcome
            won = outcome.won
            if not outcome.recorded:
                won = catalog.finish_attempt(job.id, attempt.id, JobState.SUCCEEDED, result=outcome.result)
            if delivery is not None:
                queue.ack(delivery)
            if status and won:
                status.finished("succeeded", outputs=list(outcome.outputs), result=outcome.result)
            return Result.SUCCEEDED
        if stopped:
            reason = f"worker stopped ({self._stop_reason}); released for another worker"
            catalog.finish_attempt(job.id, attempt.id, JobState.QUEUED, error=reason)
            if delivery is not None:
                queue.release(delivery, 0)
            if status:
                status.retrying(reason)
            return Result.RELEASED
        if current.withdrawn.is_set():  # deleted while running: nothing to retry
            catalog.finish_attempt(job.id, attempt.id, JobState.FAILED, error="withdrawn: video deleted")
            if delivery is not None:
                queue.ack(delivery)
            return Result.SKIPPED
        if current.lost.is_set():
            # Another worker holds the message now; its attempt is the live one.
            catalog.finish_attempt(job.id, attempt.id, JobState.QUEUED, error="lease lost to another worker")
            return Result.LOST
        error = run.error or Cancelled("the handler ended without a result")
        text = describe_failure(error, job.kind)
        log.warning("job attempt failed", extra={"job_id": job.id, "attempt_id": attempt.id, "error": text})
        if delivery is None:
            catalog.finish_attempt(job.id, attempt.id, JobState.QUEUED, error=text)
            if status:
                status.retrying(text)
            return Result.FAILED
        n = delivery.receive_count
        if verdict(error, n, queue.max_receives) is Verdict.DEAD:
            queue.dead_letter(delivery, text)
            catalog.finish_attempt(job.id, attempt.id, JobState.DEAD, error=text)
            if status:
                status.finished("dead", error=text)
            return Result.FAILED
        catalog.finish_attempt(job.id, attempt.id, JobState.QUEUED, error=text)
        qcfg = self.services.settings.queue
        queue.release(delivery, backoff(n, qcfg.backoff_base, qcfg.backoff_max))
        if status:
            status.retrying(text)
        return Result.FAILED

    # heartbeat ----------------------------------------------------------------------------------
    def _tick(self) -> None:
        with self._lock:
            current, state = self._current, self._state
        catalog = self.services.catalog
        now = self.clock.monotonic()
        last = self._last_beat
        due = last is None or last[1] != state or now - last[0] >= self._beat_every - 0.05
        if current is None and not due:
            return  # idle: nothing new to say before the next lease/3 beat
        if due:
            self._last_beat = (now, state)
        if current is not None:
            renew = due and self.extend_leases and current.delivery is not None and not current.lost.is_set()
            if renew and current.delivery and not self.services.queue.extend(current.delivery, self.lease):
                if lease_taken_over(catalog, self.services.queue, current.job_id, current.attempt_id):
                    log.warning("lease lost to another attempt; cancelling", extra={"job_id": current.job_id})
                    current.lost.set()
                    current.cancel.set()
                elif not current.forgotten.is_set():
                    current.forgotten.set()
                    log.warning("the queue forgot this job's lease; the ledger says it is still ours,"
                                " working on", extra={"job_id": current.job_id})
            if not current.withdrawn.is_set() and is_withdrawn(catalog, current.job_id, current.media_id):
                log.info("job withdrawn (deleted or finished); cancelling", extra={"job_id": current.job_id})
                current.withdrawn.set()
                current.cancel.set()
            p = current.progress
            catalog.report_progress(current.job_id, current.attempt_id, p.fraction, p.speed, p.eta)
            if current.media_id and not current.withdrawn.is_set():
                catalog.set_media_progress(current.media_id, p.fraction)
                self._progress_event(current.media_id, current.job_id, p.fraction)
        if state == WorkerState.GONE:
            return
        rec = catalog.heartbeat(
            self.worker_id,
            self.pool,
            state,
            job_id=current.job_id if current else None,
            progress=current.progress.fraction if current else 0.0,
            host=self.host,
            pid=os.getpid(),
            provider_id=self.provider_id,
            price_per_hour=self.price,
        )
        if rec.drain and not self._drain:
            log.info("drain requested", extra={"worker_id": self.worker_id})
            self._drain = True
        if self._ecs and current is not None:
            self._ecs.ensure(busy=True)  # refreshes protection on long jobs

    def _progress_event(self, media_id: str, job_id: str, fraction: float) -> None:
        """A throttled `media.progress` webhook event (only when webhooks are configured)."""
        if not self.services.settings.events.webhook_urls:
            return
        from ebbtide.catalog.sql import SqlCatalog
        from ebbtide.events.outbox import record_progress

        if isinstance(self.services.catalog, SqlCatalog) and self._progress.due(media_id, self.clock.now()):
            record_progress(self.services.catalog, media_id, job_id, fraction)

    # start and stop -----------------------------------------------------------------------------
    def _start(self) -> None:
        self._temp.sweep_stale()
        try:  # jobs whose every worker died: tell the catalog (cheap, once per start)
            reconcile_dead_letters(self.services.queue, self.services.catalog)
        except Exception:
            log.exception("could not reconcile dead letters")
        client = ImdsClient(self.cfg.imds_url)
        on_ec2 = spot_enabled(self.cfg.spot_watch, client)
        if self.provider_id is None:
            self.provider_id = discover_provider_id(os.environ, client if on_ec2 else None)
        self._tick()  # registers the worker as booting
        with self._lock:
            self._state = WorkerState.IDLE
        self._tick()  # ready now, not a heartbeat period later: the fleet counts it from here
        self._beat.start()
        if self._ecs:
            self._ecs.ensure(busy=False)
        if on_ec2:
            self._spot = SpotWatcher(client, self.cfg.spot_poll, self._on_spot)
            self._spot.start()
        log.info("worker started", extra={"worker_id": self.worker_id, "pool": self.pool, "pid": os.getpid()})

    def _on_spot(self, notice: SpotNotice) -> None:
        reason = f"spot interruption notice ({notice.action} at {notice.time})"
        self.request_stop(immediate=True, reason=reason)

    def _shutdown(self) -> None:
        if self._spot:
            self._spot.stop()
        self._beat.stop()
        with self._lock:
            self._state = WorkerState.DRAINING
        try:
            self._tick()
            self.services.catalog.mark_worker_gone(self.worker_id)
        except Exception:
            log.exception("could not record the worker as gone", extra={"worker_id": self.worker_id})
        with self._lock:
            self._state = WorkerState.GONE
        self._temp.remove_own()
        self._temp.sweep_stale()
        log.info("worker gone", extra={"worker_id": self.worker_id, "jobs": self.jobs_done})

    # signals ------------------------------------------------------------------------------------
    def _signals_on(self) -> dict[int, Any]:
        if not self._install_signals or threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _signals_off(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop(immediate=False, reason=signal.Signals(signum).name)


def run_worker(services: Services, **kwargs: Any) -> int:
    return Worker(services, **kwargs).run()


def temp_root_for(temp_dir: str | None) -> Path:
    """Where workers keep per-attempt files (tests check that nothing is left there)."""
    return TempRoot.root_for(temp_dir)


__all__ = ["ENV_JOB_ID", "Result", "Worker", "run_worker", "temp_root_for"]
