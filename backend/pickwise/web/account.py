"""Pages every logged-in user has: their own API tokens."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import service as auth_service
from pickwise.auth.deps import PrincipalDep
from pickwise.auth.schemas import TokenCreate
from pickwise.core.clock import utcnow
from pickwise.core.deps import SessionDep
from pickwise.core.errors import NotFound
from pickwise.web.forms import field_errors, redirect_to
from pickwise.web.templating import render

router = APIRouter(prefix="/account", include_in_schema=False)

TOKEN_LABELS = {"name": "Name", "expires_days": "Expires after (days)"}


async def _render_tokens(
    request: Request,
    principal: PrincipalDep,
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    new_token: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "account/tokens.html",
        {
            "principal": principal,
            "tokens": await auth_service.list_api_tokens(session, principal.user),
            "now": utcnow(),
            "values": values or {"name": "", "expires_days": ""},
            "errors": errors or {},
            "labels": TOKEN_LABELS,
            "new_token": new_token,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get("/tokens", response_class=HTMLResponse, name="account_tokens")
async def tokens_page(
    request: Request, principal: PrincipalDep, session: SessionDep, done: str | None = None
) -> HTMLResponse:
    notice = "Token revoked." if done == "revoked" else None
    return await _render_tokens(request, principal, session, notice=notice)


@router.post("/tokens", response_class=HTMLResponse, name="account_create_token")
async def create_token(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "",
) -> HTMLResponse:
    values = {"name": name.strip(), "expires_days": expires_days.strip()}
    try:
        data = TokenCreate.model_validate(
            {"name": values["name"], "expires_days": values["expires_days"] or None}
        )
    except ValidationError as exc:
        return await _render_tokens(
            request, principal, session, values=values, errors=field_errors(exc), status_code=422
        )
    token, _ = await auth_service.create_api_token(
        session, principal.user, data.name, data.expires_days
    )
    # Shown on this response only: the database keeps just the token's hash.
    return await _render_tokens(request, principal, session, new_token=token)


@router.post("/tokens/{token_id}/revoke", name="account_revoke_token")
async def revoke_token(
    request: Request, principal: PrincipalDep, session: SessionDep, token_id: int
) -> Response:
    # Only your own tokens here, even for admins (the service lets admins revoke any token).
    own = await auth_service.list_api_tokens(session, principal.user)
    if not any(token.id == token_id and token.revoked_at is None for token in own):
        raise NotFound(f"token {token_id}: no such active token")
    await auth_service.revoke_api_token(session, principal.user, token_id)
    return redirect_to(request, "account_tokens", {"done": "revoked"})
