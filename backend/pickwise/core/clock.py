"""One place that tells the time, so tests can move it (lease expiry, session expiry)."""

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_fixed: datetime | None = None


def utcnow() -> datetime:
    if _fixed is not None:
        return _fixed
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward for every caller in this process (tests only)."""
    global _offset, _fixed
    _offset += delta
    if _fixed is not None:
        _fixed += delta


def freeze() -> datetime:
    """Stop the clock at the current time until reset() (tests only)."""
    global _fixed
    _fixed = utcnow()
    return _fixed


def reset() -> None:
    global _offset, _fixed
    _offset = timedelta(0)
    _fixed = None
