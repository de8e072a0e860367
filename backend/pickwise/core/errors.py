"""One error base class; each subclass carries its HTTP status. Mapped to HTTP once, in app.py."""

from typing import Any


class PickwiseError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class BadRequest(PickwiseError):
    status_code = 400


class NotAuthenticated(PickwiseError):
    status_code = 401

    def __init__(self, detail: str = "Log in or send an API token.") -> None:
        super().__init__(detail)


class Forbidden(PickwiseError):
    status_code = 403

    def __init__(self, detail: str = "You do not have access to this.") -> None:
        super().__init__(detail)


class NotFound(PickwiseError):
    status_code = 404


class Conflict(PickwiseError):
    status_code = 409


class InvalidInput(PickwiseError):
    status_code = 422


class TooManyRequests(PickwiseError):
    status_code = 429


class DatabaseUnavailable(PickwiseError):
    status_code = 503

    def __init__(self, detail: str = "The database is unavailable; try again shortly.") -> None:
        super().__init__(detail)


class TransientConflict(PickwiseError):
    """Postgres undid this transaction so that a concurrent one could finish (a deadlock or a
    serialization failure). Nothing was stored; the same request can simply be sent again."""

    status_code = 503

    def __init__(self, what: str) -> None:
        super().__init__(
            f"This request collided with another one changing the same rows ({what}) and was "
            "undone; nothing was stored. Send it again (with the same Idempotency-Key)."
        )
