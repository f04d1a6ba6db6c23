"""Why the fleet acted, as typed data: one cause per pool decision plus the controller's notes.

Policies name the cause of their desired count (`PoolDecision.cause`); the controller adds a note
for each rule it applied on top (a launch deferred by the budget, a busy worker only asked to
drain, a pool whose provider failed). The catalog, `status`, the dashboard and tests read the
enums; `render` turns a record into the sentence people read, at the edge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Cause(enum.StrEnum):
    """Why a pool's desired count is what it is (the policy's reason)."""

    BACKLOG = "backlog"  # waiting jobs need this capacity
    FREE_CAPACITY = "free-capacity"  # free workers cover the backlog in time
    OUT_OF_REACH = "out-of-reach"  # the wait target cannot be kept; cheapest pool only
    KEEP_WARM = "keep-warm"  # an idle paid worker kept for the next expected job
    SCALE_IN = "scale-in"  # less backlog than capacity
    SCALE_TO_ZERO = "scale-to-zero"  # nothing waited long enough
    COOLDOWN = "cooldown"  # a cooldown holds the current capacity
    STEADY = "steady"  # nothing to change
    STATIC = "static"  # a pool the fleet neither starts nor stops
    PROVIDER_ERROR = "provider-error"  # the pool's provider failed; it backs off and holds


class Note(enum.StrEnum):
    """What the controller did on top of the policy's decision (its safety rules)."""

    LAUNCH = "launch"
    RETIRE_IDLE = "retire-idle"
    PROTECT_BUSY = "protect-busy"  # a busy worker asked to drain instead of being retired
    KEEP_BUSY = "keep-busy"  # busy workers of a count-based pool (ECS service) kept until idle
    IDLE_GRACE = "idle-grace"  # idle workers kept until their idle grace is over
    UNDRAIN = "undrain"  # a draining worker kept instead of a new launch
    DEFERRED_BUDGET = "deferred-budget"
    DEFERRED_QUOTA = "deferred-quota"
    LAUNCH_SHORT = "launch-short"  # the provider launched fewer than asked
    FALLBACK = "fallback"  # this pool took a shortfall of an earlier pool
    REAP_UNHEALTHY = "reap-unhealthy"  # never reported within the boot timeout
    REAP_HUNG = "reap-hung"  # stopped reporting (busy or idle) for longer than the hung timeout
    PROVIDER_ERROR = "provider-error"
    BACKOFF = "backoff"  # provider calls skipped until the pool's retry time
    POOL_FAILING = "pool-failing"  # launches failed recently; the next pool takes its share


_CAUSE_TEXT = {
    Cause.BACKLOG: "backlog",
    Cause.FREE_CAPACITY: "free workers keep the target",
    Cause.OUT_OF_REACH: "target out of reach: cheapest pool only",
    Cause.KEEP_WARM: "kept warm for the next job",
    Cause.SCALE_IN: "scale in",
    Cause.SCALE_TO_ZERO: "scale to zero",
    Cause.COOLDOWN: "held by a cooldown",
    Cause.STEADY: "steady",
    Cause.STATIC: "static pool, not scaled",
    Cause.PROVIDER_ERROR: "provider failing, holding",
}


@dataclass(frozen=True)
class PoolError:
    """The last failure of a pool's provider: which call, what it said, and when to try again."""

    op: str  # inventory, launch, retire, protect
    message: str
    at: float
    streak: int  # consecutive failed ticks
    retry_at: float


@dataclass(frozen=True)
class DecisionRecord:
    """One pool's decision in one tick, as the recorder receives it."""

    pool: str
    policy: str
    at: float
    desired: int
    running: int
    busy: int
    cause: Cause
    notes: tuple[tuple[Note, int], ...] = ()  # (what, how many)
    detail: str = ""  # the policy's figures (queue depth, work, target)
    launched: int = 0
    retired: int = 0
    drained: int = 0
    reaped: int = 0
    error: PoolError | None = None
    launch_error: str = ""  # what the provider said when a launch fell short (spot shortage, quota)

    def has(self, note: Note) -> bool:
        return any(n == note for n, _ in self.notes)


def render(rec: DecisionRecord) -> str:
    """The sentence for people: cause, the policy's figures, then the controller's notes."""
    parts = [_CAUSE_TEXT[rec.cause]]
    if rec.detail:
        parts.append(rec.detail)
    for note, n in rec.notes:
        parts.append(_note_text(note, n, rec))
    return "; ".join(parts)


def _note_text(note: Note, n: int, rec: DecisionRecord) -> str:
    err = rec.error
    texts = {
        Note.LAUNCH: f"launched {n}",
        Note.RETIRE_IDLE: f"retired {n} idle",
        Note.PROTECT_BUSY: f"asked {n} busy worker(s) to drain, never stopped",
        Note.KEEP_BUSY: f"kept {n} busy worker(s), retired once idle",
        Note.IDLE_GRACE: f"{n} idle worker(s) kept until their idle grace is over",
        Note.UNDRAIN: f"drain cancelled for {n}",
        Note.DEFERRED_BUDGET: f"{n} launch(es) deferred by the launch budget",
        Note.DEFERRED_QUOTA: f"{n} launch(es) deferred by the quota",
        Note.LAUNCH_SHORT: f"launch fell short by {n}" + (f": {rec.launch_error}" * bool(rec.launch_error)),
        Note.FALLBACK: f"+{n} from a pool whose launch fell short",
        Note.REAP_UNHEALTHY: f"reaped {n} that never reported",
        Note.REAP_HUNG: f"reaped {n} that stopped reporting",
        Note.PROVIDER_ERROR: f"provider {err.op} failed ({err.message})" if err else "provider failed",
        Note.BACKOFF: f"provider calls paused, retry in {max(0.0, err.retry_at - rec.at):.0f}s"
        if err else "provider calls paused",
        Note.POOL_FAILING: "launches failed recently, the next pool takes its share",
    }
    return texts[note]
