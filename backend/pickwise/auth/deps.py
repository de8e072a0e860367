"""Who is asking: API token (Authorization: Bearer) or session cookie, plus CSRF for forms."""

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import service
from pickwise.auth.repository import SessionRater
from pickwise.core.db import DriverSql, OpenUnit
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Forbidden, NotAuthenticated
from pickwise.models import User, UserSession

SESSION_COOKIE = "pickwise_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
INVALID_API_TOKEN = "The API token is invalid, expired or revoked."


# API tokens as the OpenAPI document describes them, which gives Swagger UI (/api/docs) its
# Authorize button. The header is read below as before: a malformed "Bearer" header is refused
# rather than passed over for a session cookie.
api_token = HTTPBearer(
    auto_error=False,
    scheme_name="API token",
    bearerFormat="pw_…",
    description=(
        "An API token (the web app's *API tokens* page, or `pickwise users token`), sent as "
        "`Authorization: Bearer <token>`. It acts as its user: raters rate, admins manage."
    ),
)
ApiTokenHeader = Annotated[HTTPAuthorizationCredentials | None, Depends(api_token)]
# The same in a route's `openapi_extra`, for a route whose dependencies read the header
# themselves: a dependency is called (and solved by FastAPI) on every request, only to be
# documented (~25 µs a request on the rater loop's answers; docs/benchmarks.md, "i33b").
API_TOKEN_SECURITY: dict[str, Any] = {"security": [{api_token.scheme_name: []}]}


@dataclass
class Principal:
    user: User
    # None when the request came with an API token (no cookie, so no CSRF risk).
    web_session: UserSession | None


async def get_principal(
    request: Request, session: SessionDep, _documented: ApiTokenHeader
) -> Principal | None:
    """The dependency; `_documented` only puts the bearer scheme in the OpenAPI document."""
    return await principal_of(request, session)


def bearer_token(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def principal_of(request: Request, session: AsyncSession) -> Principal | None:
    """Who asks: an API token's user, a web session's, or None."""
    token = bearer_token(request)
    if token is not None:
        user = await service.user_from_api_token(session, token)
        if user is None:
            raise NotAuthenticated(INVALID_API_TOKEN)
        return Principal(user=user, web_session=None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = await service.user_from_session_token(session, cookie)
    if found is None:
        return None
    user, web_session = found
    if request.method in UNSAFE_METHODS:
        await check_csrf(request, web_session)
    return Principal(user=user, web_session=web_session)


async def session_rater_in_project(
    request: Request,
    session: AsyncSession,
    project_id: int,
    since: datetime,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]] = (),
) -> tuple[Principal, SessionRater, list[list[tuple[Any, ...]]]] | None:
    """For a browser's request (a session cookie, no API token): who asks (CSRF checked as by
    `principal_of`), the project when they may rate in it, and their judgments there (all, and
    since `since`), from one statement; and the rows of `calls`, sent in the same round trip
    (see `SESSION_HOLDER`: they get the CSRF token the request sent). None otherwise: then
    `principal_of` says who asks."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or bearer_token(request) is not None:
        return None
    if calls:
        sent = {"csrf_token": await sent_csrf_token(request) or ""}
        calls = [(sql, {**params, **sent}) for sql, params in calls]
    found, answers = await service.rater_from_session_token(
        session, cookie, project_id, since, calls
    )
    if found is None:
        return None
    if request.method in UNSAFE_METHODS:
        await check_csrf(request, found.web_session)
    return Principal(user=found.user, web_session=found.web_session), found, answers


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token a request sent: in its header, or else in its form."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent


async def check_csrf(request: Request, web_session: UserSession) -> None:
    sent = await sent_csrf_token(request)
    if not sent or not hmac.compare_digest(sent, web_session.csrf_token):
        raise Forbidden("The form's security token is missing or stale; reload the page.")


def from_this_site(request: Request) -> bool:
    """Whether a browser request may have come from a page of another site.

    Sec-Fetch-Site, sent by every current browser, says where a request was started: only
    "same-origin" (a link or redirect of ours) and "none" (a typed URL, a bookmark) count
    as ours. Without it (an older browser), a Referer of another origin is refused too. A
    request with neither is taken as ours: a site cannot strip the header from a browser
    that sends it.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    referer = request.headers.get("referer")
    if not referer:
        return True
    origin = urlsplit(referer)
    return (origin.scheme, origin.netloc) == (request.url.scheme, request.url.netloc)


def may_act_on_get(request: Request, principal: "Principal") -> bool:
    """A GET that changes something (leasing a pair) for a session cookie: only when the
    request came from this site. A cookie rides along on a top-level cross-site link (it is
    SameSite=Lax), an API token never does."""
    return principal.web_session is None or from_this_site(request)


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]


async def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise NotAuthenticated()
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Only admins can do this.")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
# Admins may rate too; what a rater may rate is checked per project (see projects.deps).
CurrentRater = CurrentUser


async def rater_in_open_unit(request: Request, unit: OpenUnit) -> User:
    """Who asks, found in the route's first unit of work (before its body is read, as for
    every route: a request without a login or a CSRF token is refused first), for routes
    that commit before they answer and then go on in another unit (judgments.deps)."""
    principal = await principal_of(request, unit.session)
    if principal is None:
        raise NotAuthenticated()
    return principal.user
