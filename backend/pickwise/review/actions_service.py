"""Curation actions on one pair, a list of pairs, or every pair a filter selects.

Each action runs in the request's one transaction, so it is all or nothing, and asks for a
state rather than a change ("exclude", "at least 5 votes", "gold with answer A"), so sending
it again changes nothing: `changed` is then 0.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import drop_unfinished_slots
from pickwise.assignments.slots_service import create_slots
from pickwise.core.clock import utcnow
from pickwise.models import Project
from pickwise.review import actions_repository as repository
from pickwise.review.schemas import ActionIn, ActionResult, PairFilter
from pickwise.review.service import EVERY_VOTE, select_pairs
from pickwise.review.sql_filters import Conditions
from pickwise.vocabulary import CurationAction


async def run_action(
    session: AsyncSession, project: Project, action: ActionIn, now: datetime | None = None
) -> ActionResult:
    now = now or utcnow()
    await repository.lock_project(session, project.id)
    selected = await _select(session, project, action)
    match action.action:
        case CurationAction.EXCLUDE | CurationAction.INCLUDE:
            excluded = action.action is CurationAction.EXCLUDE
            changed = await repository.set_excluded(session, excluded)
            detail = f"{changed:,} pairs {'excluded from' if excluded else 'included in'} exports"
        case CurationAction.REQUEST_VOTES:
            assert action.votes is not None
            changed = await repository.raise_votes_wanted(session, action.votes)
            slots = await create_slots(session, project, raised_only=True)
            detail = f"{changed:,} pairs now want {action.votes} votes; {slots:,} slots opened"
        case CurationAction.MAKE_GOLD:
            assert action.answer is not None
            pair_ids = await repository.pairs_to_make_gold(session, action.answer)
            dropped = await drop_unfinished_slots(session, pair_ids, now)
            await repository.make_gold(session, pair_ids, action.answer)
            changed = len(pair_ids)
            detail = (
                f"{changed:,} pairs made gold with answer {action.answer.upper()}; "
                f"{dropped:,} unfilled slots closed"
            )
        case CurationAction.RESOLVE_FLAGS:
            assert action.resolution is not None
            changed = await repository.resolve_flags(session, action.resolution, now)
            detail = f"flags of {changed:,} pairs resolved: {action.resolution}"
    await session.flush()
    return ActionResult(action=action.action, selected=selected, changed=changed, detail=detail)


async def _select(session: AsyncSession, project: Project, action: ActionIn) -> int:
    if action.pair_ids is not None:
        where = Conditions()
        where.add("s.pair_id = ANY(:pair_ids)", pair_ids=sorted(set(action.pair_ids)))
        params: dict[str, object] = {}
    else:
        selection = await select_pairs(
            session, project, action.filter or PairFilter(), as_of=EVERY_VOTE, whole=True
        )
        where, params = selection.where, selection.params
    return await repository.select(session, project.id, where, params)
