"""One error base class; each subclass carries its HTTP status. Mapped to HTTP once, in
`pickwise.exception_handlers`."""

from typing import Any


class PickwiseError(Exception):
    """`message` says what is wrong; `field`, when set, names the input it is about, so a
    form shows the message beside that input and an API client reads it in the body."""

    status_code = 400
    # What a subclass says when raised without a message.
    default_message = ""

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.field = field
        self.extra = extra or {}
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        """The message as one line, led by the field it is about."""
        return f"{self.field}: {self.message}" if self.field else self.message

    def body(self) -> dict[str, Any]:
        """The JSON error body: the class name, the detail and the field (when there is one)."""
        field = {"field": self.field} if self.field else {}
        return {"error": type(self).__name__, "detail": self.detail, **field, **self.extra}


class BadRequest(PickwiseError):
    status_code = 400


class NotAuthenticated(PickwiseError):
    status_code = 401
    default_message = "Log in or send an API token."


class Forbidden(PickwiseError):
    status_code = 403
    default_message = "You do not have access to this."


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
    default_message = "The database is unavailable; try again shortly."


class TransientConflict(PickwiseError):
    """Postgres undid this transaction so that a concurrent one could finish (a deadlock or a
    serialization failure). Nothing was stored; the same request can simply be sent again."""

    status_code = 503

    def __init__(self, what: str) -> None:
        super().__init__(
            f"This request collided with another one changing the same rows ({what}) and was "
            "undone; nothing was stored. Send it again (with the same Idempotency-Key)."
        )
