"""One email check for every way in: the API, the admin page and the CLI accept and refuse
the same addresses, and store them the same way. Issue 13: the CLI stored addresses that
POST /api/v1/users refused."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from pickwise.cli.main import app as cli
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Invite, User
from pickwise.users.email import valid_email
from tests.factories import bearer_headers, make_user
from tests.web.test_admin_pages import admin_client

REFUSED = ["not-an-email", "x@localhost", "a@b", "two@@example.org", "sp ace@example.org", "@x.org"]
# (typed, stored): trimmed, the domain lower-cased, the local part kept as typed.
ACCEPTED = [
    ("Ana.Lima@Example.ORG", "Ana.Lima@example.org"),
    (" bo@example.net ", "bo@example.net"),
]


def test_the_check_itself() -> None:
    for address in REFUSED:
        with pytest.raises(ValueError, match="not a valid email address"):
            valid_email(address)
    for typed, stored in ACCEPTED:
        assert valid_email(typed) == stored


async def test_api_and_page_accept_and_refuse_the_same(
    client: AsyncClient, session: AsyncSession
) -> None:
    for address in REFUSED + [typed for typed, _ in ACCEPTED]:
        # A refused request rolls the test's session back, token included: log in each time.
        headers = await bearer_headers(session, await make_user(session, role="admin"))
        body = {"email": address, "display_name": "Someone", "password": "long enough pw"}
        answer = await client.post("/api/v1/users", json=body, headers=headers)
        if address in REFUSED:
            assert answer.status_code == 422, (address, answer.text)
        else:
            assert answer.status_code == 201, (address, answer.text)
            assert answer.json()["email"] == valid_email(address)

    _, csrf = await admin_client(client, session)
    for number, address in enumerate(REFUSED):
        form = {"csrf_token": csrf, "email": address, "display_name": f"P{number}",
                "role": "rater", "password": "long enough pw"}  # fmt: skip
        page = await client.post("/admin/users", data=form)
        assert page.status_code == 422, address
        assert 'id="user_email-error"' in page.text
        invite = await client.post(
            "/admin/users/invites",
            data={"csrf_token": csrf, "email": address, "role": "rater", "valid_days": "3"},
        )
        assert invite.status_code == 422 and 'id="invite_email-error"' in invite.text
    assert await session.scalar(select(Invite).limit(1)) is None


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


async def test_the_cli_accepts_and_refuses_the_same(live_app: Any) -> None:
    for address in REFUSED:
        result = await asyncio.to_thread(
            invoke, "users", "create", address, "--password", "long enough pw"
        )
        assert result.exit_code == 1, (address, result.output)
        assert "not a valid email address" in result.output
    for typed, _ in ACCEPTED:
        result = await asyncio.to_thread(
            invoke, "users", "create", typed, "--password", "long enough pw"
        )
        assert result.exit_code == 0, result.output
    await get_engine().dispose()  # the CLI ran its own event loop on the same engine
    async with session_factory(get_engine())() as session:
        emails = set(await session.scalars(select(User.email)))
    assert emails == {stored for _, stored in ACCEPTED}
