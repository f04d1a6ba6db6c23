"""Pure decisions of the runtime: backoff, when to dead-letter, what to tell a person."""

from __future__ import annotations

from ebbtide.errors import EbbtideError


def backoff(receive_count: int, base: float, cap: float) -> float:
    """Delay before the next try: base * 2^(n-1), at most `cap` (n = receives so far, ≥ 1)."""
    n = max(1, receive_count)
    return float(min(cap, base * (2 ** min(n - 1, 60))))


def is_last_receive(receive_count: int, max_receives: int) -> bool:
    return receive_count >= max_receives


def tail(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def describe_failure(exc: BaseException, kind: str) -> str:
    """The error a person reads on a failed job or media: what went wrong and what to do."""
    if kind == "transcode" and _is_media_error(exc):
        msg = exc.message if isinstance(exc, EbbtideError) else str(exc)
        if _is_a(exc, "LimitExceeded"):
            hint = exc.hint if isinstance(exc, EbbtideError) else None
            return f"the video is over a limit: {msg}" + (f" — {hint}" if hint else "")
        low = msg.lower()
        if any(w in low for w in ("not a video", "no video", "invalid data", "could not open", "probe")):
            return f"the upload is not a video file: {msg} — upload an MP4, MOV or MKV"
        return f"the video could not be transcoded: {msg} — check the file plays, or upload an MP4/MOV/MKV"
    if isinstance(exc, EbbtideError):
        return exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_media_error(exc: BaseException) -> bool:
    return _is_a(exc, "MediaError")


def _is_a(exc: BaseException, name: str) -> bool:
    return any(c.__name__ == name for c in type(exc).__mro__)
