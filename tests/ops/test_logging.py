"""JSON log lines with the request id; passwords, tokens and prompt texts never appear."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from pickwise.core import logging as logging_module
from pickwise.core.logging import (
    RedactionFilter,
    RequestContextMiddleware,
    configure_logging,
    redact_text,
    redact_value,
)
from tests.factories import PASSWORD, bearer_headers, make_user

SECRET_PASSWORD = "hunter2-do-not-log"
PROMPT = "Please summarise this confidential memo: " + "lorem ipsum " * 200


def log_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def info_logs(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Production's level (tests default to WARNING), set after the app configured logging."""
    root = logging.getLogger()
    previous = root.level
    configure_logging("INFO")
    yield
    root.setLevel(previous)


async def test_request_logs_carry_the_request_id_and_no_secrets(
    info_logs: None, client: AsyncClient, session: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    user = await make_user(session, password=PASSWORD)
    email = user.email
    headers = await bearer_headers(session, user)
    token = headers["Authorization"].removeprefix("Bearer ")
    capsys.readouterr()

    failed_login = await client.post(
        "/login",
        data={"email": email, "password": SECRET_PASSWORD},
        headers={"X-Request-ID": "req-4f2a.login"},
    )
    with_token = await client.get(
        "/api/v1/tokens?token=" + token, headers={**headers, "X-Request-ID": "bad id\nforged"}
    )
    invite = await client.get("/invite/" + token)
    # What careless code might log: the form, the headers, a prompt, a connection string.
    logging.getLogger("pickwise.test").warning(
        "login failed for %s",
        {"email": email, "password": SECRET_PASSWORD},
        extra={"authorization": headers["Authorization"], "content": PROMPT},
    )
    logging.getLogger("pickwise.test").error(
        "request was Authorization: Bearer %s with body password=%s&csrf_token=%s to %s",
        token,
        SECRET_PASSWORD,
        token,
        f"postgresql://pickwise:{SECRET_PASSWORD}@db/pickwise",
    )
    try:
        raise RuntimeError(f"[parameters: {{'password_hash': '{token}', 'content': '{PROMPT}'}}]")
    except RuntimeError:
        logging.getLogger("pickwise.test").exception("insert failed")

    output = capsys.readouterr().err
    assert SECRET_PASSWORD not in output
    assert token not in output
    assert "lorem ipsum " * 50 not in output
    lines = log_lines(output)
    assert failed_login.headers["X-Request-ID"] == "req-4f2a.login"
    access = [line for line in lines if line["logger"] == "pickwise.access"]
    login_line = next(line for line in access if line.get("request_id") == "req-4f2a.login")
    assert login_line["route"] == "/login" and login_line["status"] == failed_login.status_code
    # A malformed incoming id is replaced, not echoed into the logs.
    replaced = with_token.headers["X-Request-ID"]
    assert replaced != "bad id\nforged" and "forged" not in output
    assert any(line.get("request_id") == replaced for line in access)
    assert any(line.get("route") == "/invite/{token}" for line in access)
    assert invite.status_code < 500


def test_redaction_of_common_shapes() -> None:
    assert redact_text("password=abc&next=/") == "password=[redacted]&next=/"
    assert redact_text('{"password": "abc", "email": "a@b.c"}') == (
        '{"password": "[redacted]", "email": "a@b.c"}'
    )
    assert redact_text("Authorization: Bearer pw_abc.def") == "Authorization: Bearer [redacted]"
    assert redact_text("postgresql://u:pw@h/db") == "postgresql://u:[redacted]@h/db"
    assert redact_text("Cookie: pickwise_session=xyz; other=1").count("xyz") == 0
    assert redact_text("3 passes, 2 tokens left") == "3 passes, 2 tokens left"
    assert redact_text("GET /invite/" + "aB3" * 15) == "GET /invite/[redacted]"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert redact_text(sha256) == sha256
    long = redact_text("x" * 5000)
    assert len(long) < 600 and long.endswith("[5000 chars]")


def test_filter_scrubs_records_for_any_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "secret=%s", ("s3",), None)
    record.api_key = "k-123"
    record.turns = [{"role": "user", "content": PROMPT}]
    assert RedactionFilter().filter(record)
    assert record.getMessage() == "secret=[redacted]"
    assert record.api_key == "[redacted]"
    assert "lorem" not in str(record.turns)


def test_configure_logging_installs_one_handler() -> None:
    configure_logging()
    configure_logging()
    root = logging.getLogger()
    assert sum(type(handler).__name__ == "StderrHandler" for handler in root.handlers) == 1


async def test_the_access_line_is_scrubbed_once_as_the_filter_would(
    info_logs: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access line is built from scrubbed parts and marked so, so `RedactionFilter` does
    not go over its fields again (a third of the line's CPU, on every request); it reads as
    the filter would have made it."""
    token = "aB3" * 15

    class Route:
        path = "/invite/{token}"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"], scope["path_params"] = Route(), {"token": token}
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fields_redacted: list[str] = []

    def counted(name: str, value: object) -> object:
        fields_redacted.append(name)
        return redact_value(name, value)

    monkeypatch.setattr(logging_module, "redact_value", counted)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": f"/invite/{token}", "headers": []}
    capsys.readouterr()
    await RequestContextMiddleware(app)(scope, receive, send)
    (line,) = log_lines(capsys.readouterr().err)
    assert line["message"] == "GET /invite/[redacted] 404"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/invite/{token}", 404)
    assert isinstance(line["duration_ms"], float)
    assert token not in json.dumps(line)
    assert fields_redacted == []


def test_route_templates_are_as_the_filter_would_log_them(app) -> None:  # type: ignore[no-untyped-def]
    """The access line's route goes out unscrubbed: a template of ours, which scrubbing
    leaves as it is."""
    templates = {getattr(route, "path", "") for route in app.routes} | {
        route.path for route in _api_routes(app.routes)
    }
    assert len(templates) > 100
    assert [path for path in sorted(templates) if redact_text(path) != path] == []


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)
