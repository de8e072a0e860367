from fastapi import APIRouter, Request

from pickwise.auth import service
from pickwise.auth.deps import AdminUser, CurrentUser
from pickwise.auth.schemas import (
    InviteCreate,
    InviteCreated,
    PendingInvite,
    TokenCreate,
    TokenCreated,
    TokenRead,
)
from pickwise.core.deps import SessionDep
from pickwise.models import Invite

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenCreate, user: CurrentUser, session: SessionDep) -> TokenCreated:
    token, api_token = await service.create_api_token(session, user, body.name, body.expires_days)
    return TokenCreated(
        id=api_token.id, name=api_token.name, token=token, expires_at=api_token.expires_at
    )


@router.get("/tokens", response_model=list[TokenRead])
async def list_tokens(user: CurrentUser, session: SessionDep) -> list[TokenRead]:
    tokens = await service.list_api_tokens(session, user)
    return [TokenRead.model_validate(token) for token in tokens]


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: int, user: CurrentUser, session: SessionDep) -> None:
    await service.revoke_api_token(session, user, token_id)


@router.post("/invites", response_model=InviteCreated, status_code=201)
async def create_invite(
    body: InviteCreate, request: Request, admin: AdminUser, session: SessionDep
) -> InviteCreated:
    token, invite = await service.create_invite(session, admin=admin, **body.model_dump())
    url = str(request.url_for("invite_page", token=token))
    return InviteCreated(id=invite.id, email=invite.email, url=url, expires_at=invite.expires_at)


@router.get("/invites", response_model=list[PendingInvite])
async def pending_invites(
    request: Request, admin: AdminUser, session: SessionDep
) -> list[PendingInvite]:
    """Invites not yet used, withdrawn or expired, with their links to send again."""
    invites = await service.pending_invites(session)
    return [
        PendingInvite(
            id=invite.id,
            email=invite.email,
            role=invite.role,
            project_id=invite.project_id,
            expires_at=invite.expires_at,
            url=invite_url(request, invite),
        )
        for invite in invites
    ]


@router.delete("/invites/{invite_id}", status_code=204)
async def revoke_invite(invite_id: int, admin: AdminUser, session: SessionDep) -> None:
    """Withdraw a pending invite: its link stops working at once."""
    await service.revoke_invite(session, invite_id)


def invite_url(request: Request, invite: Invite) -> str | None:
    token = service.invite_token(invite)
    return None if token is None else str(request.url_for("invite_page", token=token))
