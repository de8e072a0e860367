# One route per line in ACCESS, however long: the table is read and grepped by route.
# ruff: noqa: E501
"""Who may call what: every route of the app against six callers, from one table.

`ACCESS` has one line per (method, path template). `test_every_route_has_an_access_entry`
reads the routes from the app itself, so a route added without a line here fails, naming
it. Each request runs in a savepoint that is rolled back, so every caller meets the same
data, and each response is also checked for leaked secrets, its security headers and its
cookies' flags.

Callers use a bearer token on /api/ paths and a session cookie (with its CSRF token in the
X-CSRF-Token header) on pages, as a browser would. Statuses: numbers, or LOGIN for "303 to
/login?next=…" (what a page answers to someone not logged in).
"""

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.routing import Mount

from pickwise.analytics import router as analytics_router
from pickwise.auth.deps import CSRF_HEADER, SESSION_COOKIE
from pickwise.core.config import get_settings
from tests.security.world import NEW_PASSWORD, Caller, World, seed_world

LOGIN = "login"
Status = int | str
CALLERS = ("anonymous", "rater", "other_rater", "admin", "revoked_token", "expired_session")
NON_ADMINS = ("anonymous", "rater", "other_rater", "revoked_token", "expired_session")

# Request bodies that pass validation, so an allowed caller reaches the route's work.
IMPORT_JSONL = b'{"id": "new-1", "prompt": "Hi?", "responses": [{"model": "m", "content": "a"},'
IMPORT_JSONL += b' {"model": "n", "content": "b"}]}\n'
NEW_USER = {"email": "new@example.org", "display_name": "New", "password": NEW_PASSWORD}
NEW_PROJECT = {"slug": "new-project", "name": "New project"}
NEW_WEBHOOK = {"url": "https://hooks.example.org/new", "events": ["batch.imported"]}
NEW_ENDPOINT = {"base_url": "https://llm.example.org/v1", "model": "m-2"}
INVITE = {"email": "someone@example.org", "role": "rater"}
ACCEPT = {"display_name": "Invited", "password": NEW_PASSWORD}
WRONG_LOGIN = {"email": "nobody@example.org", "password": "not the password"}
PREVIEW = {"format": "votes", "action": "preview"}
DECISION = {"decision": "a", "note": "B is wrong."}


def ACT_ON_PAIR(world: World) -> dict[str, Any]:
    return {"action": "exclude", "pair_ids": [world.pair_id]}


def EXCLUDE_PAIR_FORM(world: World) -> dict[str, str]:
    return {"action": "exclude", "pair_id": str(world.pair_id)}


POOL = {"name": "p", "quota": "3"}
CONVERSATIONS = {"project_id": "conversation_project_id"}


def CONVERSATION_SETTINGS(world: World) -> dict[str, object]:
    return {"endpoint_ids": list(world.conversation_endpoint_ids)}


def ADD_OTHER_RATER(world: World) -> dict[str, int]:
    return {"user_id": world.other_rater_id}


def PICK_OTHER_RATER(world: World) -> dict[str, str]:
    return {"user_id": str(world.other_rater_id)}


@dataclass(frozen=True)
class Expect:
    """Expected status per caller; the revoked token and the expired session default to the
    anonymous caller's (neither may ever count as a login)."""

    anonymous: Status
    rater: Status
    other_rater: Status
    admin: Status
    revoked_token: Status | None = None
    expired_session: Status | None = None
    # Path parameters that are not the default World attribute (see PATH_VALUES).
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None
    # A body, or a function of the World that returns one.
    json: Any = None
    data: Any = None
    content: bytes | None = None

    def status_for(self, caller: str) -> Status:
        value = getattr(self, caller)
        return self.anonymous if value is None else value


def row(
    method: str, template: str, *statuses: Status, **options: Any
) -> tuple[tuple[str, str], Expect]:
    # The statuses fill Expect's caller fields in order (anonymous, rater, ...).
    return (method, template), Expect(*statuses, **options)  # type: ignore[arg-type]


# fmt: off
ACCESS_ROWS = [
    # ------------------------------------------- method, path: anonymous, rater, other rater, admin
    # Open to all: schema, docs, static files, health, metrics (kept private by the proxy).
    row("GET", "/api/openapi.json", 200, 200, 200, 200),
    row("GET", "/api/docs", 200, 200, 200, 200),
    row("GET", "/docs/oauth2-redirect", 200, 200, 200, 200),
    row("GET", "/static/{path:path}", 200, 200, 200, 200),
    row("GET", "/healthz", 200, 200, 200, 200),
    row("GET", "/readyz", 200, 200, 200, 200),
    row("GET", "/metrics", 200, 200, 200, 200),
    # API tokens and invites.
    row("POST", "/api/v1/tokens", 401, 201, 201, 201, json={"name": "t"}),
    row("GET", "/api/v1/tokens", 401, 200, 200, 200),
    row("DELETE", "/api/v1/tokens/{token_id}", 401, 404, 404, 204),
    row("POST", "/api/v1/invites", 401, 403, 403, 201, json=INVITE),
    row("GET", "/api/v1/invites", 401, 403, 403, 200),
    row("DELETE", "/api/v1/invites/{invite_id}", 401, 403, 403, 204),
    # Users and projects.
    row("GET", "/api/v1/me", 401, 200, 200, 200),
    row("GET", "/api/v1/users", 401, 403, 403, 200),
    row("POST", "/api/v1/users", 401, 403, 403, 201, json=NEW_USER),
    row("PATCH", "/api/v1/users/{user_id}", 401, 403, 403, 200, json={"is_active": True}),
    row("GET", "/api/v1/projects", 401, 200, 200, 200),
    row("POST", "/api/v1/projects", 401, 403, 403, 201, json=NEW_PROJECT),
    row("GET", "/api/v1/projects/{project_id}", 401, 200, 404, 200),
    row("PATCH", "/api/v1/projects/{project_id}", 401, 403, 403, 200, json={"name": "Renamed"}),
    row("GET", "/api/v1/projects/{project_id}/members", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/members", 401, 403, 403, 204, json=ADD_OTHER_RATER),
    row("DELETE", "/api/v1/projects/{project_id}/members/{user_id}", 401, 403, 403, 204),
    row("POST", "/api/v1/projects/{project_id}/members/{user_id}/exclude", 401, 403, 403, 204),
    row("POST", "/api/v1/projects/{project_id}/members/{user_id}/include", 401, 403, 403, 204),
    # Imports, exports, analytics: admins only.
    row("GET", "/api/v1/projects/{project_id}/batches", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/batches", 401, 403, 403, 201, content=IMPORT_JSONL),
    row("GET", "/api/v1/projects/{project_id}/export", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/export/preview", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/progress", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/timeline", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/raters", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/agreement", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/leaderboard", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/analytics/preferences", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/analytics/refresh", 401, 403, 403, 200),
    # Rating over the API: members (and admins) of the project; an assignment is its rater's.
    row("GET", "/api/v1/projects/{project_id}/next", 401, 200, 404, 200),
    row("POST", "/api/v1/assignments/{assignment_id}/judgment", 401, 201, 404, 404, json={"choice": "left"}),
    row("POST", "/api/v1/assignments/{assignment_id}/skip", 401, 200, 404, 404, json={"reason": "cant_judge"}),
    row("POST", "/api/v1/assignments/{assignment_id}/flag", 401, 200, 404, 404, json={"reason": "harmful"}),
    # Changing the last choice: the rater's assignment is still leased, so not a decision to change.
    row("PUT", "/api/v1/assignments/{assignment_id}/judgment", 401, 409, 404, 404, json={"choice": "left"}),
    row("PUT", "/api/v1/assignments/{assignment_id}/skip", 401, 409, 404, 404, json={"reason": "cant_judge"}),
    row("GET", "/api/v1/projects/{project_id}/last-decision", 401, 200, 404, 200),
    row("GET", "/api/v1/projects/{project_id}/pairs/{pair_id}/history", 401, 403, 403, 200),
    # Login, logout, invites, home.
    row("GET", "/login", 200, 200, 200, 200),
    row("POST", "/login", 401, 401, 401, 401, data=WRONG_LOGIN),
    row("POST", "/logout", LOGIN, 303, 303, 303),
    row("GET", "/", 303, 200, 200, 200, revoked_token=LOGIN),
    row("GET", "/invite/{token}", 200, 200, 200, 200),
    row("POST", "/invite/{token}", 303, 303, 303, 303, data=ACCEPT),
    # The rating pages. A form's answer is the rater's current pair, rendered directly (no
    # redirect); someone else's assignment is refused inside the form handler, which answers
    # with that page and a message.
    row("GET", "/rate/{project_id}", LOGIN, 200, 404, 200),
    row("POST", "/rate/{project_id}/next", LOGIN, 303, 404, 303),
    row("POST", "/rate/{project_id}/assignments/{assignment_id}/judgment", LOGIN, 200, 404, 200, data={"choice": "left"}),
    row("POST", "/rate/{project_id}/assignments/{assignment_id}/skip", LOGIN, 200, 404, 200, data={"reason": "cant_judge"}),
    row("POST", "/rate/{project_id}/assignments/{assignment_id}/flag", LOGIN, 200, 404, 200, data={"reason": "harmful"}),
    row("GET", "/rate/{project_id}/change", LOGIN, 409, 404, 409),
    row("POST", "/rate/{project_id}/assignments/{assignment_id}/change", LOGIN, 200, 404, 200, data={"choice": "left"}),
    row("POST", "/rate/{project_id}/assignments/{assignment_id}/change-to-skip", LOGIN, 200, 404, 200, data={"reason": "cant_judge"}),
    row("GET", "/rate/{project_id}/summary", LOGIN, 200, 404, 200),
    row("GET", "/rate/{project_id}/guidelines", LOGIN, 200, 404, 200),
    # Admin pages.
    row("GET", "/admin/projects/{project_id}/export", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/export", LOGIN, 403, 403, 200, data=PREVIEW),
    row("GET", "/admin/projects/{project_id}/dashboard", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/dashboard/raters/{user_id}/exclusion", LOGIN, 403, 403, 303, data={"excluded": "true"}),
    row("POST", "/admin/projects/{project_id}/dashboard/refresh", LOGIN, 403, 403, 303),
    row("GET", "/admin/projects/new", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects", LOGIN, 403, 403, 422),
    row("GET", "/admin/projects/{project_id}", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/settings", LOGIN, 403, 403, 422),
    row("POST", "/admin/projects/{project_id}/members", LOGIN, 403, 403, 303, data=PICK_OTHER_RATER),
    row("POST", "/admin/projects/{project_id}/members/{user_id}/remove", LOGIN, 403, 403, 303),
    row("POST", "/admin/projects/{project_id}/closed", LOGIN, 403, 403, 303, data={"closed": "false"}),
    row("POST", "/admin/projects/{project_id}/members/{user_id}/exclude", LOGIN, 403, 403, 303),
    row("POST", "/admin/projects/{project_id}/members/{user_id}/include", LOGIN, 403, 403, 303),
    row("POST", "/admin/projects/{project_id}/flags/{pair_id}", LOGIN, 403, 403, 303, data={"resolution": "restored"}),
    row("POST", "/admin/projects/{project_id}/import", LOGIN, 403, 403, 422),
    row("GET", "/admin/users", LOGIN, 403, 403, 200),
    row("POST", "/admin/users", LOGIN, 403, 403, 422),
    row("POST", "/admin/users/invites", LOGIN, 403, 403, 422),
    row("POST", "/admin/users/invites/{invite_id}/revoke", LOGIN, 403, 403, 303),
    row("POST", "/admin/users/{user_id}/active", LOGIN, 403, 403, 303, data={"active": "true"}),
    # Every user's own API tokens (only your own, even for admins).
    row("GET", "/account/tokens", LOGIN, 200, 200, 200),
    row("POST", "/account/tokens", LOGIN, 200, 200, 200, data={"name": "t"}),
    row("POST", "/account/tokens/{token_id}/revoke", LOGIN, 303, 404, 404, path={"token_id": "rater_spare_token_id"}),
    # Rater pools (study links).
    row("GET", "/api/v1/projects/{project_id}/pools", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/pools", 401, 403, 403, 201, json={"name": "p", "quota": 3}),
    row("PATCH", "/api/v1/projects/{project_id}/pools/{pool_id}", 401, 403, 403, 200, json={"name": "q"}),
    row("POST", "/api/v1/projects/{project_id}/pools/{pool_id}/rotate", 401, 403, 403, 200),
    row("GET", "/api/v1/projects/{project_id}/pools/{pool_id}/participants", 401, 403, 403, 200),
    # The link logs a newcomer in; someone logged in as another user is stopped (409).
    row("GET", "/join/{token}", 303, 409, 409, 409, revoked_token=LOGIN, path={"token": "pool_token"}, query={"participant_id": "p-1"}),
    row("GET", "/participants/{project_id}/done", LOGIN, 404, 404, 404),
    # The integrations page.
    row("GET", "/admin/projects/{project_id}/integrations", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/integrations/pools", LOGIN, 403, 403, 200, data=POOL),
    row("POST", "/admin/projects/{project_id}/integrations/pools/{pool_id}/rotate", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/integrations/pools/{pool_id}/active", LOGIN, 403, 403, 303, data={"is_active": "false"}),
    row("POST", "/admin/projects/{project_id}/integrations/webhooks", LOGIN, 403, 403, 200, data={"url": "https://hooks.example.org/x", "events": "batch.imported"}),
    row("POST", "/admin/projects/{project_id}/integrations/webhooks/{webhook_id}/rotate-secret", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/integrations/webhooks/{webhook_id}/ping", LOGIN, 403, 403, 303),
    row("POST", "/admin/projects/{project_id}/integrations/webhooks/{webhook_id}/active", LOGIN, 403, 403, 303, data={"is_active": "false"}),
    row("POST", "/admin/projects/{project_id}/integrations/webhooks/{webhook_id}/delete", LOGIN, 403, 403, 303),
    row("POST", "/admin/projects/{project_id}/integrations/endpoints", LOGIN, 403, 403, 303, data=NEW_ENDPOINT),
    row("POST", "/admin/projects/{project_id}/integrations/endpoints/{endpoint_id}/active", LOGIN, 403, 403, 303, data={"is_active": "false"}),
    row("POST", "/admin/projects/{project_id}/integrations/endpoints/{endpoint_id}/delete", LOGIN, 403, 403, 303),
    # Generation endpoints and webhooks over the API.
    row("GET", "/api/v1/projects/{project_id}/generation-endpoints", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/generation-endpoints", 401, 403, 403, 201, json=NEW_ENDPOINT),
    row("PATCH", "/api/v1/projects/{project_id}/generation-endpoints/{endpoint_id}", 401, 403, 403, 200, json={"model": "m-3"}),
    row("DELETE", "/api/v1/projects/{project_id}/generation-endpoints/{endpoint_id}", 401, 403, 403, 204),
    row("GET", "/api/v1/projects/{project_id}/webhooks", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/webhooks", 401, 403, 403, 201, json=NEW_WEBHOOK),
    row("PATCH", "/api/v1/projects/{project_id}/webhooks/{webhook_id}", 401, 403, 403, 200, json={"description": "d"}),
    row("DELETE", "/api/v1/projects/{project_id}/webhooks/{webhook_id}", 401, 403, 403, 204),
    row("POST", "/api/v1/projects/{project_id}/webhooks/{webhook_id}/rotate-secret", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/webhooks/{webhook_id}/ping", 401, 403, 403, 202),
    row("GET", "/api/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/resend", 401, 403, 403, 200),
    # Review and curation (issue 17): admins only; a rater meets the same 403 whether or not
    # the project exists or they are a member (tests/review/test_access_review.py).
    row("GET", "/api/v1/projects/{project_id}/pairs", 401, 403, 403, 200),
    row("POST", "/api/v1/projects/{project_id}/pairs/actions", 401, 403, 403, 200, json=ACT_ON_PAIR),
    row("GET", "/api/v1/projects/{project_id}/pairs/{pair_id}", 401, 403, 403, 200),
    row("PUT", "/api/v1/projects/{project_id}/pairs/{pair_id}/adjudication", 401, 403, 403, 201, json=DECISION),
    row("DELETE", "/api/v1/projects/{project_id}/pairs/{pair_id}/adjudication", 401, 403, 403, 204),
    row("GET", "/admin/projects/{project_id}/pairs", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/pairs/actions", LOGIN, 403, 403, 303, data=EXCLUDE_PAIR_FORM),
    row("GET", "/admin/projects/{project_id}/pairs/{pair_id}", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/pairs/{pair_id}/adjudication", LOGIN, 403, 403, 303, data=DECISION),
    row("POST", "/admin/projects/{project_id}/pairs/{pair_id}/adjudication/withdraw", LOGIN, 403, 403, 303),
    row("GET", "/admin/projects/{project_id}/raters/{user_id}", LOGIN, 403, 403, 200),
    row("POST", "/admin/projects/{project_id}/raters/{user_id}/exclusion", LOGIN, 403, 403, 303, data={"excluded": "true"}),
    # Live conversations: the project's settings, usage and export are the admin's; a
    # conversation is its rater's alone (an admin gets 404 too). Starting or sending is
    # refused with 409 here (the project's endpoints are switched off, or the turn waits
    # for its vote), after the caller was let in.
    row("GET", "/api/v1/projects/{project_id}/conversation-settings", 401, 403, 403, 200, path=CONVERSATIONS),
    row("PUT", "/api/v1/projects/{project_id}/conversation-settings", 401, 403, 403, 200, path=CONVERSATIONS, json=CONVERSATION_SETTINGS),
    row("GET", "/api/v1/projects/{project_id}/conversation-usage", 401, 403, 403, 200, path=CONVERSATIONS),
    row("GET", "/api/v1/projects/{project_id}/conversation-stats", 401, 403, 403, 200, path=CONVERSATIONS),
    row("GET", "/api/v1/projects/{project_id}/conversation-export", 401, 403, 403, 200, path=CONVERSATIONS),
    row("GET", "/api/v1/projects/{project_id}/conversations", 401, 200, 404, 200, path=CONVERSATIONS),
    row("POST", "/api/v1/projects/{project_id}/conversations", 401, 409, 404, 409, path=CONVERSATIONS, json={"message": "Hi"}),
    row("GET", "/api/v1/conversations/{conversation_id}", 401, 200, 404, 404),
    row("POST", "/api/v1/conversations/{conversation_id}/messages", 401, 409, 404, 404, json={"content": "Next"}),
    row("GET", "/api/v1/conversations/{conversation_id}/turns/{turn_id}/events", 401, 200, 404, 404),
    row("POST", "/api/v1/conversations/{conversation_id}/turns/{turn_id}/retry", 401, 409, 404, 404, json={"side": "left"}),
    row("POST", "/api/v1/conversations/{conversation_id}/turns/{turn_id}/stop", 401, 200, 404, 404),
    row("POST", "/api/v1/conversations/{conversation_id}/turns/{turn_id}/judgment", 401, 200, 404, 404, json={"choice": "left"}),
    row("PUT", "/api/v1/conversations/{conversation_id}/turns/{turn_id}/edit", 401, 409, 404, 404, json={"content": "Edited"}),
    row("POST", "/api/v1/conversations/{conversation_id}/end", 401, 200, 404, 404),
    row("GET", "/converse/{project_id}", LOGIN, 200, 404, 200, path=CONVERSATIONS),
    row("POST", "/converse/{project_id}/start", LOGIN, 409, 404, 409, path=CONVERSATIONS, data={"message": "Hi"}),
    row("GET", "/converse/{project_id}/c/{conversation_id}", LOGIN, 200, 404, 404, path=CONVERSATIONS),
    row("POST", "/converse/{project_id}/c/{conversation_id}/messages", LOGIN, 409, 404, 404, path=CONVERSATIONS, data={"content": "Next"}),
    row("GET", "/converse/{project_id}/c/{conversation_id}/turns/{turn_id}/stream", LOGIN, 200, 404, 404, path=CONVERSATIONS),
    row("POST", "/converse/{project_id}/c/{conversation_id}/turns/{turn_id}/retry", LOGIN, 409, 404, 404, path=CONVERSATIONS, data={"side": "left"}),
    row("POST", "/converse/{project_id}/c/{conversation_id}/turns/{turn_id}/stop", LOGIN, 303, 404, 404, path=CONVERSATIONS),
    row("POST", "/converse/{project_id}/c/{conversation_id}/turns/{turn_id}/judgment", LOGIN, 303, 404, 404, path=CONVERSATIONS, data={"choice": "left"}),
    row("POST", "/converse/{project_id}/c/{conversation_id}/turns/{turn_id}/edit", LOGIN, 409, 404, 404, path=CONVERSATIONS, data={"content": "Edited"}),
    row("POST", "/converse/{project_id}/c/{conversation_id}/end", LOGIN, 303, 404, 404, path=CONVERSATIONS),
    row("GET", "/admin/projects/{project_id}/conversations", LOGIN, 403, 403, 200, path=CONVERSATIONS),
    row("POST", "/admin/projects/{project_id}/conversations", LOGIN, 403, 403, 422, path=CONVERSATIONS),
]
# fmt: on
ACCESS: dict[tuple[str, str], Expect] = dict(ACCESS_ROWS)

# Which World attribute fills each path parameter, unless a row says otherwise.
PATH_VALUES = {
    "project_id": "project_id",
    "assignment_id": "assignment_id",
    "pair_id": "pair_id",
    "user_id": "rater_id",
    "token_id": "admin_spare_token_id",
    "token": "invite_token",
    "invite_id": "invite_id",
    "pool_id": "pool_id",
    "webhook_id": "webhook_id",
    "delivery_id": "delivery_id",
    "endpoint_id": "endpoint_id",
    "conversation_id": "conversation_id",
    "turn_id": "turn_id",
    "path:path": "static_file",
}
STATIC_FILE = "css/app.css"
# Unsafe routes that need no session, so a CSRF token has nothing to protect: the login form
# (a password is the credential) and the invite form (the link's token is).
NO_SESSION_NEEDED = {("POST", "/login"), ("POST", "/invite/{token}")}


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, mounts as GET of their whole subtree."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            yield "GET", f"{route.path}/{{path:path}}"
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield method, str(route.path)


def fill_path(template: str, world: World, overrides: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        attribute = overrides.get(name) or PATH_VALUES.get(name)
        assert attribute, f"{template}: say which World object {{{name}}} is (PATH_VALUES or path=)"
        return STATIC_FILE if attribute == "static_file" else str(getattr(world, attribute))

    return re.sub(r"\{([^}]+)\}", value, template)


def auth_headers(caller: Caller, path: str, *, csrf: str | None = None) -> dict[str, str]:
    """A bearer token on the API, the session cookie (and CSRF header) on pages."""
    if caller.bearer and (path.startswith("/api/") or caller.cookie is None):
        return {"Authorization": f"Bearer {caller.bearer}"}
    if caller.cookie is None:
        return {}
    headers = {"Cookie": f"{SESSION_COOKIE}={caller.cookie}"}
    token = caller.csrf if csrf is None else csrf
    if token:
        headers[CSRF_HEADER] = token
    return headers


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


def joined_session(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def world(connection: AsyncConnection) -> World:
    session = joined_session(connection)
    try:
        seeded = await seed_world(session)
        await session.commit()
    finally:
        await session.close()
    return seeded


@pytest.fixture
def isolated_app(connection: AsyncConnection) -> FastAPI:
    """The app with one session per request on the test's connection."""
    from pickwise.app import create_app
    from pickwise.core.db import get_session, get_units

    application = create_app()

    @asynccontextmanager
    async def request_unit() -> AsyncIterator[AsyncSession]:
        session = joined_session(connection)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
        finally:
            await session.close()

    async def request_session() -> AsyncIterator[AsyncSession]:
        async with request_unit() as session:
            yield session

    async def analytics_connection() -> AsyncIterator[AsyncConnection]:
        # The analytics read the world too (they would otherwise see an empty database).
        yield connection

    application.dependency_overrides[get_session] = request_session
    application.dependency_overrides[get_units] = lambda: request_unit
    application.dependency_overrides[analytics_router.analytics_connection] = analytics_connection
    return application


@pytest.fixture
async def raw_client(isolated_app: FastAPI) -> AsyncIterator[AsyncClient]:
    # Errors come back as 500 responses, so one broken route does not hide the others.
    transport = ASGITransport(app=isolated_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def send_isolated(
    client: AsyncClient,
    connection: AsyncConnection,
    world: World,
    method: str,
    url: str,
    expect: Expect,
    headers: dict[str, str],
) -> Response:
    """One request whose writes are undone afterwards: every caller meets the same data."""
    savepoint = await connection.begin_nested()
    try:
        json = expect.json(world) if callable(expect.json) else expect.json
        data = expect.data(world) if callable(expect.data) else expect.data
        return await client.request(
            method,
            url,
            params=expect.query,
            json=json,
            data=data,
            content=expect.content,
            headers=headers,
        )
    finally:
        client.cookies.clear()
        await savepoint.rollback()


def status_matches(response: Response, expected: Status) -> bool:
    if expected == LOGIN:
        location = response.headers.get("location", "")
        return response.status_code == 303 and location.startswith("/login?next=")
    return response.status_code == expected


def header_problems(response: Response) -> list[str]:
    """An HTML page must carry a strict CSP whose nonce its inline scripts and styles use;
    every cookie set must be HttpOnly, SameSite and (settings here demand https) Secure."""
    problems = []
    if response.headers.get("content-type", "").startswith("text/html"):
        problems += csp_problems(response)
    for cookie in response.headers.get_list("set-cookie"):
        name, _, rest = cookie.partition("=")
        value = rest.split(";", 1)[0]
        if not value or value == '""' or "Max-Age=0" in cookie:
            continue  # deleting a cookie
        flags = cookie.lower()
        for flag in ("httponly", "samesite=lax", "secure"):
            if flag not in flags:
                problems.append(f"cookie {name} lacks {flag}")
    return problems


INLINE_TAG = re.compile(r"<(script|style)\b([^>]*)>", re.IGNORECASE)


# FastAPI's Swagger UI pages load their script from a CDN and start it with an inline script
# that has no nonce: the CSP blocks both (the pages stay blank; see docs/security.md).
def csp_problems(response: Response) -> list[str]:
    policy = response.headers.get("content-security-policy", "")
    directives = {
        part.strip().split(" ", 1)[0]: part.strip() for part in policy.split(";") if part.strip()
    }
    problems = [
        f"CSP lacks {wanted!r}"
        for wanted in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'")
        if wanted not in directives.values()
    ]
    nonce = re.search(r"'nonce-([A-Za-z0-9_\-+/=]+)'", directives.get("script-src", ""))
    if nonce is None:
        return [*problems, "CSP script-src has no nonce"]
    if "'unsafe-inline'" in policy or "'unsafe-eval'" in policy:
        problems.append("CSP allows unsafe-inline or unsafe-eval")
    for tag, attributes in INLINE_TAG.findall(response.text):
        if "src=" in attributes.lower():
            continue
        if f'nonce="{nonce.group(1)}"' not in attributes:
            problems.append(f"inline <{tag}> without the response's nonce")
    return problems


def test_every_route_has_an_access_entry(isolated_app: FastAPI) -> None:
    routes = set(app_routes(isolated_app))
    missing = sorted(routes - ACCESS.keys())
    stale = sorted(ACCESS.keys() - routes)
    assert not missing, (
        "routes without a line in tests/security/test_access.py ACCESS (add one saying who "
        f"may call them): {missing}"
    )
    assert not stale, f"ACCESS lines for routes that no longer exist: {stale}"
    twice = sorted({key for key, _ in ACCESS_ROWS if [k for k, _ in ACCESS_ROWS].count(key) > 1})
    assert not twice, f"routes with two lines in ACCESS: {twice}"


@pytest.fixture
def https_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings as behind https: every cookie must then be Secure."""
    monkeypatch.setattr(get_settings(), "cookie_secure", True)


@pytest.mark.usefixtures("https_cookies")
async def test_every_route_answers_each_caller_as_the_table_says(
    raw_client: AsyncClient, connection: AsyncConnection, world: World, isolated_app: FastAPI
) -> None:
    failures = []
    routes = set(app_routes(isolated_app))
    for (method, template), expect in sorted(ACCESS.items()):
        if (method, template) not in routes:
            continue  # reported by test_every_route_has_an_access_entry
        url = fill_path(template, world, expect.path)
        for caller_name in CALLERS:
            caller = world.callers[caller_name]
            response = await send_isolated(
                raw_client, connection, world, method, url, expect, auth_headers(caller, url)
            )
            where = f"{method} {template} as {caller_name}"
            expected = expect.status_for(caller_name)
            if not status_matches(response, expected):
                location = response.headers.get("location", "")
                failures.append(
                    f"{where}: expected {expected}, got {response.status_code} {location}".strip()
                )
            failures += [f"{where}: {problem}" for problem in header_problems(response)]
            if caller_name in NON_ADMINS:
                leaked = [secret for secret in world.secrets() if secret in response.text]
                if leaked:
                    failures.append(f"{where}: the response shows {leaked}")
    assert not failures, "\n".join(failures)


def unsafe_routes_behind_a_session(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        key
        for key in set(app_routes(app)) & ACCESS.keys()
        if key[0] in {"POST", "PUT", "PATCH", "DELETE"} and key not in NO_SESSION_NEEDED
    )


async def test_cookie_requests_without_the_sessions_csrf_token_are_refused(
    raw_client: AsyncClient, connection: AsyncConnection, world: World, isolated_app: FastAPI
) -> None:
    """A cross-site form carries the victim's cookie but cannot know the CSRF token: every
    state-changing route refuses a cookie request without the session's own token, whether
    the token is missing or belongs to another session, and whatever the body's type."""
    admin, rater = world.callers["admin"], world.callers["rater"]
    attempts: list[tuple[str, str | None, dict[str, str]]] = [
        ("no token, form body", "", {"content-type": "application/x-www-form-urlencoded"}),
        ("another session's token", rater.csrf, {}),
    ]
    failures = []
    for method, template in unsafe_routes_behind_a_session(isolated_app):
        expect = ACCESS[(method, template)]
        url = fill_path(template, world, expect.path)
        for label, csrf, extra in attempts:
            headers = {**auth_headers(admin, "", csrf=csrf), **extra}
            headers["Origin"] = "https://attacker.example"
            response = await send_isolated(
                raw_client, connection, world, method, url, expect, headers
            )
            if response.status_code != 403:
                failures.append(f"{method} {template} ({label}): {response.status_code}")
    assert not failures, "\n".join(failures)


async def test_a_cross_site_form_post_is_refused_and_changes_nothing(
    raw_client: AsyncClient, connection: AsyncConnection, world: World
) -> None:
    """What an attacker's page can send: a urlencoded or text/plain form with the cookie,
    with a guessed, empty or foreign csrf_token field."""
    rater = world.callers["rater"]
    cookie = {"Cookie": f"{SESSION_COOKIE}={rater.cookie}", "Origin": "https://attacker.example"}
    url = "/account/tokens"
    bodies = [
        ({"name": "stolen"}, "application/x-www-form-urlencoded"),
        ({"name": "stolen", "csrf_token": ""}, "application/x-www-form-urlencoded"),
        ({"name": "stolen", "csrf_token": world.callers["admin"].csrf or ""}, None),
        ({"name": "stolen", "csrf_token": "x" * 43}, None),
    ]
    for data, content_type in bodies:
        headers = dict(cookie)
        if content_type:
            headers["content-type"] = content_type
        response = await raw_client.post(url, data=data, headers=headers)
        assert response.status_code == 403, data
        assert "security token" in response.text
    plain = await raw_client.post(
        url,
        content=f"name=stolen&csrf_token={rater.csrf}",
        headers={**cookie, "content-type": "text/plain"},
    )
    assert plain.status_code == 403
    # And the same form with the page's own token works, so the refusals above mean something.
    own = await raw_client.post(
        url, data={"name": "mine", "csrf_token": rater.csrf}, headers=cookie
    )
    assert own.status_code == 200
    tokens = await raw_client.get(
        "/api/v1/tokens", headers={"Authorization": f"Bearer {rater.bearer}"}
    )
    names = [token["name"] for token in tokens.json()]
    assert "stolen" not in names and "mine" in names


async def test_raters_see_the_pair_but_not_its_models_or_other_raters_votes(
    raw_client: AsyncClient, world: World
) -> None:
    """The positive side of the leak check in the table test: the rater is shown the pair's
    texts (so that check had something to find), and only those."""
    rater = world.callers["rater"]
    bearer = auth_headers(rater, "/api/")
    pair = (
        await raw_client.get(f"/api/v1/projects/{world.project_id}/next", headers=bearer)
    ).json()
    assert pair["assignment_id"] == world.assignment_id
    assert set(pair) == {
        *("assignment_id", "pair_id", "lease_expires_at", "system", "turns", "left", "right"),
    }
    for side in ("left", "right"):
        assert set(pair[side]) == {"side", "content"}
        assert pair[side]["content"].startswith("Answer")
    page = await raw_client.get(f"/rate/{world.project_id}", headers=auth_headers(rater, "/"))
    assert pair["left"]["content"] in page.text and pair["right"]["content"] in page.text
    for response in (page, await raw_client.get("/api/v1/projects", headers=bearer)):
        assert not [secret for secret in world.secrets() if secret in response.text]
