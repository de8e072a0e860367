"""CPU-heavy work (argon2, zipping an export) runs off the event loop: while it is under way,
the same app answers /healthz. Proved by order, not by timing: the heavy call is replaced by
one that holds until the test releases it, after /healthz has answered. Had the call run on
the event loop, /healthz could only answer after it finished."""

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import security
from pickwise.web import exports_page
from tests.factories import PASSWORD, bearer_headers, make_pairs, make_project, make_user

# Only ends a test whose heavy call blocked the event loop (it would wait for itself forever).
GUARD_SECONDS = 30


class Gate:
    """A stand-in for a heavy call: it starts, then holds until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.events: list[str] = []

    def hold(self) -> None:
        self.events.append("heavy call started")
        self.entered.set()
        self.released.wait(GUARD_SECONDS)
        self.events.append("heavy call finished")

    async def answered_meanwhile(self, client: AsyncClient, request: Any) -> Any:
        """Start `request`, ask /healthz while its heavy call holds, then let it finish."""
        pending = asyncio.ensure_future(request)
        await asyncio.to_thread(self.entered.wait, GUARD_SECONDS)
        assert (await client.get("/healthz")).status_code == 200
        self.events.append("healthz answered")
        self.released.set()
        response = await pending
        assert self.events == ["heavy call started", "healthz answered", "heavy call finished"]
        return response


class SlowHasher:
    """The real hasher, held at the gate before each hash or check."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.real = security._password_hash

    def hash(self, password: str) -> str:
        self.gate.hold()
        return self.real.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        self.gate.hold()
        return self.real.verify(password, hashed)


@pytest.fixture
def gate() -> Gate:
    return Gate()


def slow_hashing(gate: Gate, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on (after the test's own accounts are made), hashes hold at the gate."""
    monkeypatch.setattr(security, "_password_hash", SlowHasher(gate))


async def test_a_login_is_checked_off_the_event_loop(
    client: AsyncClient, session: AsyncSession, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session, password=PASSWORD)
    slow_hashing(gate, monkeypatch)
    form = {"email": user.email, "password": PASSWORD}
    response = await gate.answered_meanwhile(client, client.post("/login", data=form))
    assert response.status_code == 303


async def test_an_unknown_account_is_checked_off_the_event_loop(
    client: AsyncClient, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_hashing(gate, monkeypatch)
    form = {"email": "nobody@example.org", "password": PASSWORD}
    response = await gate.answered_meanwhile(client, client.post("/login", data=form))
    assert response.status_code == 401


async def test_a_new_password_is_hashed_off_the_event_loop(
    client: AsyncClient, session: AsyncSession, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await bearer_headers(session, await make_user(session, role="admin"))
    slow_hashing(gate, monkeypatch)
    body = {"email": "new@example.org", "display_name": "New", "password": PASSWORD}
    response = await gate.answered_meanwhile(
        client, client.post("/api/v1/users", json=body, headers=admin)
    )
    assert response.status_code == 201


async def test_the_export_zip_is_built_off_the_event_loop(
    client: AsyncClient,
    session: AsyncSession,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 3)
    admin = await make_user(session, role="admin", password=PASSWORD)
    assert await client.post("/login", data={"email": admin.email, "password": PASSWORD})
    page = await client.get(f"/admin/projects/{project.id}/export")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text

    def held_zip(folder: Path) -> Path:
        gate.hold()
        return real_zip(folder)

    real_zip = exports_page.zip_export
    monkeypatch.setattr(exports_page, "zip_export", held_zip)
    monkeypatch.setenv("EXPORTS_DIR", str(tmp_path))
    form = {"csrf_token": match.group(1), "format": "votes"}
    download = client.post(f"/admin/projects/{project.id}/export", data=form)
    response = await gate.answered_meanwhile(client, download)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
