"""Rater pools: entry links that turn crowd-platform participants into raters of a project.

A participant opens `/join/{token}?PROLIFIC_PID=…` (or `participant_id=…`). The first visit
makes a rater account for that id (synthetic e-mail, no password, a member of the project);
later visits with the same id find it again. The participant rates until they have given the
pool's quota of judgments (`quota.quota_reached` stops the rater loop), then sees the
completion code.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from pickwise.core.security import new_token, token_digest
from pickwise.models import PoolParticipant, Project, RaterPool, User
from pickwise.models.base import apply_changes
from pickwise.models.pools import PARTICIPANT_ID_PATTERN
from pickwise.pools import repository
from pickwise.pools.quota import QuotaState, quota_state
from pickwise.pools.schemas import PoolCreate, PoolUpdate
from pickwise.projects import repository as projects_repository
from pickwise.users import repository as users_repository
from pickwise.users import service as users_service
from pickwise.vocabulary import AccountRole

_PARTICIPANT_ID = re.compile(PARTICIPANT_ID_PATTERN)
# Fields of PoolUpdate that may not be cleared (null means "leave as is" for them).
_REQUIRED_FIELDS = frozenset({"name", "quota", "is_active"})


def participant_email(pool_id: int, external_id: str) -> str:
    """A synthetic address that can never receive mail (.invalid is reserved, RFC 2606)."""
    return f"{external_id}@pool-{pool_id}.participants.pickwise.invalid"


async def create_pool(
    session: AsyncSession, project: Project, data: PoolCreate, admin: User | None
) -> tuple[str, RaterPool]:
    """Returns the link's token in the clear: it is shown once and only its hash is kept."""
    token = new_token()
    pool = RaterPool(
        project_id=project.id,
        name=data.name,
        token_hash=token_digest(token),
        token_prefix=token[:8],
        quota=data.quota,
        completion_code=data.completion_code,
        completion_url=data.completion_url,
        max_participants=data.max_participants,
        created_by_id=admin.id if admin else None,
    )
    session.add(pool)
    await session.flush()
    return token, pool


async def rotate_token(session: AsyncSession, pool: RaterPool) -> str:
    """A new link for the same pool; the old one stops working, participants stay."""
    token = new_token()
    pool.token_hash, pool.token_prefix = token_digest(token), token[:8]
    await session.flush()
    return token


async def update_pool(session: AsyncSession, pool: RaterPool, data: PoolUpdate) -> RaterPool:
    apply_changes(pool, data.model_dump(exclude_unset=True), required=_REQUIRED_FIELDS)
    await session.flush()
    return pool


async def get_pool_or_404(session: AsyncSession, project: Project, pool_id: int) -> RaterPool:
    pool = await projects_repository.in_project(session, RaterPool, project.id, pool_id)
    if pool is None:
        raise NotFound(f"pool {pool_id}: no such pool in this project")
    return pool


def check_participant_id(participant_id: str | None) -> str:
    if participant_id is None or not participant_id.strip():
        raise InvalidInput(
            "this link needs your participant id "
            "(…?PROLIFIC_PID=… or …?participant_id=…); open it from your study page",
            field="participant_id",
        )
    participant_id = participant_id.strip()
    if not _PARTICIPANT_ID.fullmatch(participant_id):
        raise InvalidInput(
            "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="participant_id",
        )
    return participant_id


@dataclass(frozen=True)
class Joined:
    pool: RaterPool
    participant: PoolParticipant
    user: User
    created: bool


async def join(session: AsyncSession, token: str, participant_id: str | None) -> Joined:
    """Find or make the participant's rater account; the caller starts their web session."""
    external_id = check_participant_id(participant_id)
    # Locking the pool serializes joins to it: the participant limit holds, and two clicks
    # of the same participant cannot make two accounts.
    pool = await repository.pool_by_token_hash(session, token_digest(token), lock=True)
    if pool is None:
        raise NotFound("This study link is not valid; check that it was copied whole.")
    if not pool.is_active:
        raise Forbidden("This study is closed and takes no more participants.")
    participant = await repository.find_participant(session, pool.id, external_id)
    if participant is not None:
        user = await users_repository.get(session, participant.user_id)
        if user is None or not user.is_active:
            raise Forbidden("This participant id has been blocked from the study.")
        return Joined(pool, participant, user, created=False)
    if (
        pool.max_participants is not None
        and await repository.participant_count(session, pool.id) >= pool.max_participants
    ):
        raise Forbidden("This study has all the participants it needs.")
    try:
        user = await users_service.create_user(
            session,
            email=participant_email(pool.id, external_id),
            display_name=external_id,
            role=AccountRole.RATER,
            project_ids=[pool.project_id],
        )
    except Conflict as exc:
        # Only ids that differ in letter case alone can get here (e-mails ignore case).
        raise Conflict(
            "an id that differs only in upper/lower case already joined", field="participant_id"
        ) from exc
    participant = PoolParticipant(pool_id=pool.id, user_id=user.id, external_id=external_id)
    session.add(participant)
    await session.flush()
    return Joined(pool, participant, user, created=True)


@dataclass(frozen=True)
class Completion:
    pool: RaterPool
    participant: PoolParticipant
    state: QuotaState


async def completion(
    session: AsyncSession, project: Project, user: User, now: datetime | None = None
) -> Completion:
    """Where a participant stands; marks them complete the first time the quota is met."""
    found = await repository.participant_in_project(session, project.id, user.id)
    state = await quota_state(session, project.id, user.id)
    if found is None or state is None:
        raise NotFound("You did not join this project through a study link.")
    participant, pool = found
    if state.reached and participant.completed_at is None:
        participant.completed_at = now or utcnow()
        await session.flush()
    return Completion(pool, participant, state)
