from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import repository
from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.db import DriverSql
from pickwise.core.errors import (
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
)
from pickwise.core.security import (
    keyed_token,
    login_turn,
    new_token,
    token_digest,
    verify_password,
)
from pickwise.models import ApiToken, Invite, LoginFailure, User, UserSession
from pickwise.projects import repository as projects_repository
from pickwise.users import repository as users_repository
from pickwise.users import service as users_service
from pickwise.users.email import checked_email
from pickwise.vocabulary import AccountRole

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
TOKEN_PREFIX = "pw_"


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """Check a password; after repeated failures the account's logins are refused for a while."""
    email_key = email.strip().lower()
    since = utcnow() - FAILURE_WINDOW
    # A burst of logins waits here without holding a database connection (see login_turn).
    async with login_turn():
        if await repository.failures_since(session, email_key, since) >= MAX_FAILURES:
            raise TooManyRequests(
                "Too many failed logins for this account; wait 15 minutes and try again."
            )
        user = await users_repository.get_by_email(session, email_key)
        # Checked for unknown accounts too (against a dummy hash), so the time taken does not
        # tell which accounts exist.
        valid = await verify_password(password, user.password_hash if user else None)
    if user is None or not user.is_active or not valid:
        session.add(LoginFailure(email=email_key, failed_at=utcnow()))
        await session.flush()
        raise NotAuthenticated("Wrong email or password.")
    await repository.forget_failures(session, email_key)
    return user


async def start_session(session: AsyncSession, user: User) -> tuple[str, UserSession]:
    token = new_token()
    user_session = UserSession(
        token_hash=token_digest(token),
        user_id=user.id,
        csrf_token=new_token(),
        expires_at=utcnow() + timedelta(days=get_settings().session_days),
    )
    session.add(user_session)
    await session.flush()
    return token, user_session


async def end_session(session: AsyncSession, token: str) -> None:
    await repository.delete_session(session, token_digest(token))


async def user_from_session_token(
    session: AsyncSession, token: str
) -> tuple[User, UserSession] | None:
    return await repository.user_of_session(session, token_digest(token), utcnow())


async def rater_from_session_token(
    session: AsyncSession,
    token: str,
    project_id: int,
    since: datetime,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]] = (),
) -> tuple[repository.SessionRater | None, list[list[tuple[Any, ...]]]]:
    """`rater_of_session_in_project` for a session cookie, and the rows of `calls`."""
    return await repository.rater_of_session_in_project(
        session, token_digest(token), utcnow(), project_id, since, calls
    )


async def user_from_api_token(session: AsyncSession, token: str) -> User | None:
    return await repository.user_of_api_token(session, token_digest(token), utcnow())


async def create_api_token(
    session: AsyncSession, user: User, name: str, expires_days: int | None = None
) -> tuple[str, ApiToken]:
    """Returns the plaintext token: it is shown once and only its hash is kept."""
    token = new_token(TOKEN_PREFIX)
    api_token = ApiToken(
        token_hash=token_digest(token),
        prefix=token[:10],
        name=name,
        user_id=user.id,
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(api_token)
    await session.flush()
    return token, api_token


async def list_api_tokens(session: AsyncSession, user: User) -> list[ApiToken]:
    return list(await repository.api_tokens_of(session, user.id))


async def revoke_api_token(session: AsyncSession, user: User, token_id: int) -> None:
    """Your own token; admins may revoke anyone's."""
    owner_id = None if user.is_admin else user.id
    if not await repository.revoke_api_token(session, token_id, utcnow(), owner_id=owner_id):
        raise NotFound(f"token {token_id}: no such active token")


async def create_invite(
    session: AsyncSession,
    *,
    admin: User,
    email: str,
    role: AccountRole,
    project_id: int | None,
    valid_days: int = 7,
) -> tuple[str, Invite]:
    if project_id is not None and await projects_repository.get(session, project_id) is None:
        raise NotFound(f"project {project_id} does not exist", field="project_id")
    nonce = new_token()
    token = _invite_token(nonce)
    invite = Invite(
        token_hash=token_digest(token),
        token_nonce=nonce,
        email=checked_email(email),
        role=role,
        project_id=project_id,
        created_by_id=admin.id,
        expires_at=utcnow() + timedelta(days=valid_days),
    )
    session.add(invite)
    await session.flush()
    return token, invite


def _invite_token(nonce: str) -> str:
    return keyed_token(get_settings().secret_key.get_secret_value(), "invite", nonce)


def invite_token(invite: Invite) -> str | None:
    """The invite link's token again, for the admin to copy; None when it cannot be made (an
    invite from before links could be shown again, or the secret key has changed since)."""
    if invite.token_nonce is None:
        return None
    token = _invite_token(invite.token_nonce)
    return token if token_digest(token) == invite.token_hash else None


async def pending_invites(session: AsyncSession) -> Sequence[Invite]:
    return await repository.pending_invites(session, utcnow())


async def revoke_invite(session: AsyncSession, invite_id: int) -> None:
    """The link stops working at once; whoever opens it is told it was withdrawn."""
    if not await repository.revoke_invite(session, invite_id, utcnow()):
        raise NotFound(f"invite {invite_id}: no such pending invite")


async def find_open_invite(session: AsyncSession, token: str) -> Invite:
    invite = await repository.invite_by_token_hash(session, token_digest(token))
    if invite is None:
        raise NotFound("This invite link is not valid.")
    if invite.accepted_at is not None:
        raise Forbidden("This invite link has already been used.")
    if invite.revoked_at is not None:
        raise Forbidden("This invite was withdrawn by an admin; ask them for a new one.")
    if invite.expires_at <= utcnow():
        raise Forbidden("This invite link has expired; ask an admin for a new one.")
    return invite


async def accept_invite(
    session: AsyncSession, token: str, *, display_name: str, password: str
) -> User:
    invite = await find_open_invite(session, token)
    if not display_name.strip():
        raise InvalidInput("must not be empty", field="display_name")
    user = await users_service.create_user(
        session,
        email=invite.email,
        display_name=display_name,
        role=AccountRole(invite.role),
        password=password,
        project_ids=[] if invite.project_id is None else [invite.project_id],
    )
    invite.accepted_at = utcnow()
    await session.flush()
    return user
