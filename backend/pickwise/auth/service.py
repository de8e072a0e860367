from datetime import timedelta

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.errors import (
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
)
from pickwise.core.security import login_turn, new_token, token_digest, verify_password
from pickwise.models import ApiToken, Invite, LoginFailure, ProjectMember, User, UserSession
from pickwise.users import service as users_service
from pickwise.users.email import checked_email

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
TOKEN_PREFIX = "pw_"


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """Check a password; after repeated failures the account's logins are refused for a while."""
    email_key = email.strip().lower()
    since = utcnow() - FAILURE_WINDOW
    # A burst of logins waits here without holding a database connection (see login_turn).
    async with login_turn():
        failures = await session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.email == email_key, LoginFailure.failed_at > since)
        )
        if (failures or 0) >= MAX_FAILURES:
            raise TooManyRequests(
                "Too many failed logins for this account; wait 15 minutes and try again."
            )
        user = await users_service.get_by_email(session, email_key)
        # Checked for unknown accounts too (against a dummy hash), so the time taken does not
        # tell which accounts exist.
        valid = await verify_password(password, user.password_hash if user else None)
    if user is None or not user.is_active or not valid:
        session.add(LoginFailure(email=email_key, failed_at=utcnow()))
        await session.flush()
        raise NotAuthenticated("Wrong email or password.")
    await session.execute(delete(LoginFailure).where(LoginFailure.email == email_key))
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
    await session.execute(delete(UserSession).where(UserSession.token_hash == token_digest(token)))


# Built once: they run on every request, and building a statement costs more CPU than
# running it through SQLAlchemy's compiled cache.
_USER_OF_SESSION = (
    select(User, UserSession)
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        UserSession.token_hash == bindparam("token_hash"),
        UserSession.expires_at > bindparam("now"),
        User.is_active,
    )
)
# Only the user is loaded: an ApiToken object per request is measurable CPU on the rater loop.
_USER_OF_API_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at.is_(None) | (ApiToken.expires_at > bindparam("now")),
        User.is_active,
    )
)


async def user_from_session_token(
    session: AsyncSession, token: str
) -> tuple[User, UserSession] | None:
    row = (
        await session.execute(
            _USER_OF_SESSION, {"token_hash": token_digest(token), "now": utcnow()}
        )
    ).first()
    return (row[0], row[1]) if row else None


async def user_from_api_token(session: AsyncSession, token: str) -> User | None:
    return await session.scalar(
        _USER_OF_API_TOKEN, {"token_hash": token_digest(token), "now": utcnow()}
    )


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
    result = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    )
    return list(result.scalars())


async def revoke_api_token(session: AsyncSession, user: User, token_id: int) -> None:
    statement = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if user.role != "admin":
        statement = statement.where(ApiToken.user_id == user.id)
    result = await session.execute(statement.values(revoked_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"token {token_id}: no such active token")


async def create_invite(
    session: AsyncSession,
    *,
    admin: User,
    email: str,
    role: str,
    project_id: int | None,
    valid_days: int = 7,
) -> tuple[str, Invite]:
    token = new_token()
    invite = Invite(
        token_hash=token_digest(token),
        email=checked_email(email),
        role=role,
        project_id=project_id,
        created_by_id=admin.id,
        expires_at=utcnow() + timedelta(days=valid_days),
    )
    session.add(invite)
    await session.flush()
    return token, invite


async def find_open_invite(session: AsyncSession, token: str) -> Invite:
    invite = await session.scalar(select(Invite).where(Invite.token_hash == token_digest(token)))
    if invite is None:
        raise NotFound("This invite link is not valid.")
    if invite.accepted_at is not None:
        raise Forbidden("This invite link has already been used.")
    if invite.expires_at <= utcnow():
        raise Forbidden("This invite link has expired; ask an admin for a new one.")
    return invite


async def accept_invite(
    session: AsyncSession, token: str, *, display_name: str, password: str
) -> User:
    invite = await find_open_invite(session, token)
    if not display_name.strip():
        raise InvalidInput("display_name: must not be empty")
    user = await users_service.create_user(
        session,
        email=invite.email,
        display_name=display_name,
        role=invite.role,
        password=password,
    )
    invite.accepted_at = utcnow()
    if invite.project_id is not None:
        session.add(ProjectMember(project_id=invite.project_id, user_id=user.id))
    await session.flush()
    return user
