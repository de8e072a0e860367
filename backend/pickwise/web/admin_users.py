"""Admin page of the accounts: every user and their projects, a new account, an invite.

A rejected form re-renders the page with the problems named per field. A new account
redirects (303) back; an invite renders its one-time link in the response.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import service as auth_service
from pickwise.auth.deps import AdminUser, PrincipalDep, get_admin_user
from pickwise.auth.schemas import InviteCreate
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Conflict, NotFound, PickwiseError
from pickwise.projects import repository as projects_repository
from pickwise.users import repository as users_repository
from pickwise.users import service as users_service
from pickwise.users.schemas import UserCreate
from pickwise.vocabulary import AccountRole
from pickwise.web.forms import error_by_field, field_errors, form_text, redirect_to
from pickwise.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(get_admin_user)])

USER_LABELS: dict[str, str] = {
    "email": "Email",
    "display_name": "Name",
    "role": "Role",
    "password": "Password",
    "project_ids": "Projects",
}
INVITE_LABELS: dict[str, str] = {
    "email": "Email",
    "role": "Role",
    "project_id": "Project",
    "valid_days": "Days valid",
}

USERS_NOTICES = {"invite-revoked": "Invite withdrawn: its link no longer works."}


@dataclass
class UsersPage:
    user_values: dict[str, Any] = field(
        default_factory=lambda: {
            "email": "",
            "display_name": "",
            "role": AccountRole.RATER,
            "project_ids": [],
        }
    )
    user_errors: dict[str, str] = field(default_factory=dict)
    invite_values: dict[str, Any] = field(
        default_factory=lambda: {
            "email": "",
            "role": AccountRole.RATER,
            "project_id": "",
            "valid_days": "7",
        }
    )
    invite_errors: dict[str, str] = field(default_factory=dict)
    invite_url: str | None = None
    invite_email: str | None = None
    invite_expires_at: datetime | None = None
    created_user_id: str | None = None
    notice: str | None = None


async def _render_users(
    request: Request,
    principal: PrincipalDep,
    session: AsyncSession,
    page: UsersPage,
    status_code: int = 200,
) -> HTMLResponse:
    users = await users_repository.list_all(session)
    pending = [
        (invite, _invite_url(request, auth_service.invite_token(invite)))
        for invite in await auth_service.pending_invites(session)
    ]
    return render(
        request,
        "admin/users.html",
        {
            "principal": principal,
            "page": page,
            "users": users,
            "created": next((u for u in users if str(u.id) == page.created_user_id), None),
            "projects_by_user": await projects_repository.projects_by_member(session),
            "projects": await projects_repository.list_all(session),
            "user_labels": USER_LABELS,
            "invite_labels": INVITE_LABELS,
            "pending_invites": pending,
        },
        status_code=status_code,
    )


@router.get("/users", response_class=HTMLResponse, name="admin_users")
async def users_page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    created: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    page = UsersPage(created_user_id=created, notice=USERS_NOTICES.get(done or ""))
    return await _render_users(request, principal, session, page)


@router.post("/users", response_class=HTMLResponse, name="admin_create_user")
async def create_user(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "email": form_text(form, "email").strip(),
        "display_name": form_text(form, "display_name").strip(),
        "role": form_text(form, "role"),
        "project_ids": [v for v in form.getlist("project_ids") if isinstance(v, str)],
    }
    page = UsersPage(user_values=values)
    try:
        data = UserCreate.model_validate({**values, "password": form_text(form, "password")})
    except ValidationError as exc:
        page.user_errors = field_errors(exc)
        return await _render_users(request, principal, session, page, 422)
    try:
        user = await users_service.create_user(session, **data.model_dump())
    except PickwiseError as exc:
        page.user_errors = error_by_field(exc, USER_LABELS)
        return await _render_users(request, principal, session, page, exc.status_code)
    return redirect_to(request, "admin_users", {"created": user.id})


@router.post("/users/{user_id}/active", name="admin_set_active")
async def set_active(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    user_id: int,
    active: Annotated[bool, Form()],
) -> Response:
    """Deactivating ends the account's leases at once; reactivating lets it log in again."""
    user = await users_repository.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if user.id == admin.id:
        raise Conflict("You cannot deactivate your own account.")
    await users_service.set_active(session, user, active)
    return redirect_to(request, "admin_users")


@router.post("/users/invites", response_class=HTMLResponse, name="admin_create_invite")
async def create_invite(
    request: Request, principal: PrincipalDep, admin: AdminUser, session: SessionDep
) -> Response:
    form = await request.form()
    values = {name: form_text(form, name).strip() for name in INVITE_LABELS}
    page = UsersPage(invite_values=values)
    try:
        data = InviteCreate.model_validate({**values, "project_id": values["project_id"] or None})
    except ValidationError as exc:
        page.invite_errors = field_errors(exc)
        return await _render_users(request, principal, session, page, 422)
    if await users_repository.get_by_email(session, data.email) is not None:
        page.invite_errors = {"email": f"an account for {data.email} already exists"}
        return await _render_users(request, principal, session, page, 409)
    try:
        token, invite = await auth_service.create_invite(session, admin=admin, **data.model_dump())
    except PickwiseError as exc:
        page.invite_errors = error_by_field(exc, INVITE_LABELS)
        return await _render_users(request, principal, session, page, exc.status_code)
    # The link is shown here and in the list of pending invites; the database keeps only the
    # token's hash and the nonce it is drawn from with the secret key.
    page = UsersPage(
        invite_url=_invite_url(request, token),
        invite_email=invite.email,
        invite_expires_at=invite.expires_at,
    )
    return await _render_users(request, principal, session, page)


@router.post("/users/invites/{invite_id}/revoke", name="admin_revoke_invite")
async def revoke_invite(request: Request, session: SessionDep, invite_id: int) -> Response:
    """Withdraws a pending invite: its link stops working at once."""
    await auth_service.revoke_invite(session, invite_id)
    return redirect_to(request, "admin_users", {"done": "invite-revoked"})


def _invite_url(request: Request, token: str | None) -> str | None:
    return None if token is None else str(request.url_for("invite_page", token=token))
