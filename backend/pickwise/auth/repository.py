from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import DriverSql, adopt, column_count, columns_of, run_pipelined
from pickwise.models import (
    ApiToken,
    Invite,
    LoginFailure,
    Project,
    User,
    UserSession,
)
from pickwise.vocabulary import AccountRole


async def failures_since(session: AsyncSession, email_key: str, since: datetime) -> int:
    """Failed logins for this (lower-cased) email since `since`."""
    failures = await session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.email == email_key, LoginFailure.failed_at > since)
    )
    return int(failures or 0)


async def forget_failures(session: AsyncSession, email_key: str) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.email == email_key))


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))


# Built once: they run on every request, and building a statement costs more CPU than
# running it through SQLAlchemy's compiled cache.
_LIVE_SESSION = (
    UserSession.token_hash == bindparam("token_hash"),
    UserSession.expires_at > bindparam("now"),
    User.is_active,
)
_USER_OF_SESSION = (
    select(User, UserSession)
    .join(UserSession, UserSession.user_id == User.id)
    .where(*_LIVE_SESSION)
)
# An unexpired web session, `s`, of an active user, `u`.
_WEB_SESSION_USER = "FROM user_sessions s JOIN users u ON u.id = s.user_id"
_LIVE_WEB_SESSION = "s.token_hash = :token_hash AND s.expires_at > :now AND u.is_active"
# The rating page's forms: who sends one, the project when they may rate in it (an admin, or a
# member), and their judgments there so far, in one round trip instead of three. Every form of
# the rating page runs it: straight over psycopg (see DriverSql), not as ORM entities.
_RATER_OF_SESSION_IN_PROJECT = DriverSql(
    f"""
    SELECT {columns_of(User, "u")}, {columns_of(UserSession, "s")}, {columns_of(Project, "p")},
           judged.total, judged.today
    {_WEB_SESSION_USER}
    LEFT JOIN projects p ON p.id = :project_id AND (
        u.role = '{AccountRole.ADMIN}'
        OR EXISTS (
            SELECT FROM project_members m WHERE m.project_id = p.id AND m.user_id = u.id
        )
    )
    CROSS JOIN LATERAL (
        SELECT count(*) AS total, count(*) FILTER (WHERE j.submitted_at >= :since) AS today
        FROM judgments j
        WHERE j.project_id = :project_id AND j.rater_id = u.id
    ) AS judged
    WHERE {_LIVE_WEB_SESSION}
    """
)
_USER_END = column_count(User)
_SESSION_END = _USER_END + column_count(UserSession)
_PROJECT_END = _SESSION_END + column_count(Project)
# The id of the web session's user when the form's CSRF token is the session's, else NULL: for
# statements sent in one round trip with the session's lookup (`rater_of_session_in_project`),
# which then act for that user, or for nobody (a forged form claims and locks nothing).
SESSION_HOLDER = (
    f"(SELECT u.id {_WEB_SESSION_USER} WHERE {_LIVE_WEB_SESSION} AND s.csrf_token = :csrf_token)"
)
# An API token that is neither revoked nor expired, `t`, of an active user, `u`.
LIVE_API_TOKEN = """
    FROM api_tokens t
    JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > :now) AND u.is_active
"""
# Only the user is loaded: an ApiToken object per request is measurable CPU on the rater loop,
# and so is SQLAlchemy's execution of the statement (every API request runs it; see DriverSql).
_USER_OF_API_TOKEN = DriverSql(f"SELECT {columns_of(User, 'u')} {LIVE_API_TOKEN}")
# The id of that user, or NULL: for statements sent in one round trip with the token's lookup
# (`user_of_api_token_with`), which then act for the user the token names, or for nobody.
API_TOKEN_HOLDER = f"(SELECT u.id {LIVE_API_TOKEN})"


async def user_of_session(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[User, UserSession] | None:
    """The active user of an unexpired web session."""
    params = {"token_hash": token_hash, "now": now}
    row = (await session.execute(_USER_OF_SESSION, params)).first()
    return (row[0], row[1]) if row else None


class SessionRater(NamedTuple):
    user: User
    web_session: UserSession
    project: Project | None  # None when the project is missing or they may not rate in it
    judged: int  # their judgments in the project
    judged_since: int  # those since the time asked about


async def rater_of_session_in_project(
    session: AsyncSession,
    token_hash: str,
    now: datetime,
    project_id: int,
    since: datetime,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]] = (),
) -> tuple[SessionRater | None, list[list[tuple[Any, ...]]]]:
    """The active user of an unexpired web session, with the project and their judgments in
    it (see `_RATER_OF_SESSION_IN_PROJECT`); and the rows of `calls` sent after it in the same
    round trip (run_pipelined), whose parameters get the session's (`SESSION_HOLDER`)."""
    params = {"token_hash": token_hash, "now": now, "project_id": project_id, "since": since}
    sent = [(_RATER_OF_SESSION_IN_PROJECT, params), *((sql, {**p, **params}) for sql, p in calls)]
    answers = await run_pipelined(session, sent)
    rows = answers[0]
    if not rows:
        return None, answers[1:]
    row = rows[0]
    project_values = row[_SESSION_END:_PROJECT_END]
    found = SessionRater(
        adopt(session, User, row[:_USER_END]),
        adopt(session, UserSession, row[_USER_END:_SESSION_END]),
        None if project_values[0] is None else adopt(session, Project, project_values),
        row[_PROJECT_END],
        row[_PROJECT_END + 1],
    )
    return found, answers[1:]


async def user_of_api_token(session: AsyncSession, token_hash: str, now: datetime) -> User | None:
    """The active user of an API token that is neither revoked nor expired."""
    found, _ = await user_of_api_token_with(session, token_hash, now, [])
    return found


async def user_of_api_token_with(
    session: AsyncSession,
    token_hash: str,
    now: datetime,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]],
) -> tuple[User | None, list[list[tuple[Any, ...]]]]:
    """`user_of_api_token`, and the rows of `calls` sent after it in the same round trip
    (run_pipelined); their parameters get the token's (`API_TOKEN_HOLDER`)."""
    token = {"token_hash": token_hash, "now": now}
    sent = [(_USER_OF_API_TOKEN, token), *((sql, {**params, **token}) for sql, params in calls)]
    answers = await run_pipelined(session, sent)
    rows = answers[0]
    return (adopt(session, User, rows[0]) if rows else None), answers[1:]


async def api_tokens_of(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    statement = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return (await session.scalars(statement)).all()


async def revoke_api_token(
    session: AsyncSession, token_id: int, now: datetime, *, owner_id: int | None
) -> bool:
    """Revokes the active token (of `owner_id`, when given); False when there is none."""
    statement = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
    if owner_id is not None:
        statement = statement.where(ApiToken.user_id == owner_id)
    result = await session.execute(statement.values(revoked_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def invite_by_token_hash(session: AsyncSession, token_hash: str) -> Invite | None:
    return await session.scalar(select(Invite).where(Invite.token_hash == token_hash))


async def pending_invites(session: AsyncSession, now: datetime) -> Sequence[Invite]:
    """Invites not yet used, withdrawn or expired, soonest to expire first."""
    return (
        await session.scalars(
            select(Invite)
            .where(
                Invite.accepted_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
            .order_by(Invite.expires_at, Invite.id)
        )
    ).all()


async def revoke_invite(session: AsyncSession, invite_id: int, now: datetime) -> bool:
    """Withdraws the invite if it is still pending; False when it is not."""
    result = await session.execute(
        update(Invite)
        .where(
            Invite.id == invite_id,
            Invite.accepted_at.is_(None),
            Invite.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
