"""Errors a person reads: what is wrong, and a hint on what to do."""

from __future__ import annotations

import errno

# errno values meaning "no room left to write": a full disk, a user quota, a file-size limit
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class EbbtideError(Exception):
    """Base error; `hint` is printed on its own line by the CLI."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(EbbtideError):
    """A config file, key or value is wrong; raised at start, never mid-run."""


class NotFound(EbbtideError):
    """A thing named by id or key does not exist (or belongs to someone else)."""


class IllegalTransition(EbbtideError):
    """A lifecycle state change that the state machine does not allow."""


class InvalidKey(EbbtideError):
    """An object-store key that could escape its prefix or is otherwise unsafe."""


class Permanent(EbbtideError):
    """Fails again however often it is tried (bad media, a limit, a validation that will fail again).

    Retry rules are declared by type, never guessed from message text: a job whose handler raises
    a `Permanent` goes dead on its first attempt with this message for a person.
    """


class Transient(EbbtideError):
    """May succeed on another try (network, spot reclaim, a lost lease, a server restarting)."""


class BackendUnavailable(Transient):
    """A queue, catalog or store server did not answer; callers reconnect and retry with backoff.

    Each backend module maps its driver's connection errors to this type (never by message text);
    `part` names which dependency is down ("queue", "catalog", "store") for /health and the logs;
    `retry_in`, when the backend knows it, is when its backoff allows the next reconnect, so a
    caller that retries (`worker.riding.ride_out`) waits exactly that and not a backoff of its own.
    """

    def __init__(
        self, message: str, hint: str | None = None, part: str = "", retry_in: float | None = None
    ) -> None:
        super().__init__(message, hint)
        self.part = part
        self.retry_in = retry_in  # seconds until the backend will try the server again, if known


class StorageFull(EbbtideError):
    """The disk (or quota) ran out while writing; nothing half-written is kept."""


def disk_full(error: BaseException) -> StorageFull | None:
    """The StorageFull a person should read for an OSError that means "out of space", else None."""
    if isinstance(error, StorageFull):
        return error
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        where = f" writing {error.filename}" if error.filename else ""
        return StorageFull(
            f"no space left{where} ({error.strerror or 'disk full'})",
            hint="free disk space (or raise the quota) and try again; nothing half-written was kept",
        )
    return None
