"""Whether a pool participant has given all the judgments their entry link asked for.

Kept apart from the rest of `pools` (models only) because the rater loop calls it on every
"next pair": it must stay one indexed query and must not pull the web layer in.
"""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Project, User

# pool_participants.user_id is unique and judgments are indexed by (rater_id, submitted_at):
# one row for a participant, none for everybody else.
_QUOTA_STATE = text(
    """
    SELECT rp.quota,
           (SELECT count(*) FROM judgments j
            WHERE j.rater_id = pp.user_id AND j.project_id = rp.project_id) AS judged
    FROM pool_participants pp
    JOIN rater_pools rp ON rp.id = pp.pool_id
    WHERE pp.user_id = :user_id AND rp.project_id = :project_id
    """
)


# The same test inside another statement (the slot claim): true for a participant of one of
# the project's pools who has given their quota of judgments. Parameters :rater_id, :project_id.
QUOTA_REACHED_SQL = """
    EXISTS (
        SELECT 1 FROM pool_participants pp
        JOIN rater_pools rp ON rp.id = pp.pool_id
        WHERE pp.user_id = :rater_id AND rp.project_id = :project_id
          AND rp.quota <= (SELECT count(*) FROM judgments j
                           WHERE j.rater_id = pp.user_id AND j.project_id = rp.project_id)
    )
"""


@dataclass(frozen=True)
class QuotaState:
    quota: int
    judged: int

    @property
    def reached(self) -> bool:
        return self.judged >= self.quota

    @property
    def remaining(self) -> int:
        return max(self.quota - self.judged, 0)


async def quota_state(session: AsyncSession, project_id: int, user_id: int) -> QuotaState | None:
    """The quota and judgments given of a participant of one of the project's pools; None for
    raters who did not come through a pool."""
    row = (
        await session.execute(_QUOTA_STATE, {"user_id": user_id, "project_id": project_id})
    ).first()
    return None if row is None else QuotaState(quota=int(row[0]), judged=int(row[1]))


async def quota_reached(session: AsyncSession, project: Project, user: User) -> bool:
    """True once a pool participant has judged their quota of pairs (gold pairs count: they
    took the participant's time too). Raters who did not come through a pool have no quota."""
    state = await quota_state(session, project.id, user.id)
    return state is not None and state.reached
