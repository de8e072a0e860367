"""Server-rendered pages shared by everyone: login, logout, invites, home."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pickwise.auth import service as auth_service
from pickwise.auth.deps import SESSION_COOKIE, OptionalPrincipal, PrincipalDep
from pickwise.core.config import get_settings
from pickwise.core.deps import SessionDep
from pickwise.core.errors import PickwiseError
from pickwise.projects import repository as projects_repository
from pickwise.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(next_url: str | None) -> str:
    # Only same-site paths: "//evil.example" or "https://…" would be an open redirect.
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return "/"


def set_session_cookie(response: Response, token: str) -> None:
    """Log the browser in: the session cookie, sent back on every same-site request."""
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


@router.get("/login", response_class=HTMLResponse, name="login_page")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        user = await auth_service.authenticate(session, email, password)
    except PickwiseError as exc:
        return render(
            request,
            "login.html",
            {"next": _safe_next(next), "error": exc.detail, "email": email},
            status_code=exc.status_code,
        )
    token, _ = await auth_service.start_session(session, user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, token)
    return response


@router.post("/logout")
async def logout(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await auth_service.end_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse, name="home")
async def home(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    user = principal.user
    if user.is_admin:
        projects = await projects_repository.list_all(session)
    else:
        projects = await projects_repository.list_for_member(session, user.id)
    return render(request, "home.html", {"principal": principal, "projects": projects})


@router.get("/invite/{token}", response_class=HTMLResponse, name="invite_page")
async def invite_page(request: Request, token: str, session: SessionDep) -> Response:
    invite = await auth_service.find_open_invite(session, token)
    return render(request, "invite.html", {"invite": invite, "token": token, "error": None})


@router.post("/invite/{token}", response_class=HTMLResponse)
async def accept_invite(
    request: Request,
    token: str,
    session: SessionDep,
    display_name: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        user = await auth_service.accept_invite(
            session, token, display_name=display_name, password=password
        )
    except PickwiseError as exc:
        invite = await auth_service.find_open_invite(session, token)
        return render(
            request,
            "invite.html",
            {"invite": invite, "token": token, "error": exc.detail},
            status_code=exc.status_code,
        )
    session_token, _ = await auth_service.start_session(session, user)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, session_token)
    return response
