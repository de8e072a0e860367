"""Votes written straight into the tables (a slot taken, an assignment submitted, the
judgment stored), the way the rater loop leaves them, without its HTTP round trips."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.models import Assignment, Judgment, Pair, PairSlot, User


async def vote(
    session: AsyncSession,
    pair: Pair,
    rater: User,
    choice: str,
    *,
    rationale: str | None = None,
    left_side: str = "a",
    seconds: float = 12.0,
    strength: int | None = None,
    criteria: dict[str, str] | None = None,
) -> Judgment:
    """One judgment on `pair` by `rater`, filling the pair's first open slot (gold pairs
    have none)."""
    slot = None
    if not pair.is_gold:
        slot = await session.scalar(
            select(PairSlot)
            .where(PairSlot.pair_id == pair.id, PairSlot.state == "open")
            .order_by(PairSlot.slot_no)
            .limit(1)
        )
        assert slot is not None, f"pair {pair.id} has no open slot"
    submitted = utcnow()
    shown = submitted - timedelta(seconds=seconds)
    assignment = Assignment(
        project_id=pair.project_id,
        pair_id=pair.id,
        rater_id=rater.id,
        slot_id=slot.id if slot else None,
        status="submitted",
        left_side=left_side,
        is_gold=pair.is_gold,
        shown_at=shown,
        lease_expires_at=submitted,
        completed_at=submitted,
    )
    session.add(assignment)
    await session.flush()
    if slot is not None:
        slot.state, slot.assignment_id = "done", assignment.id
    judgment = Judgment(
        project_id=pair.project_id,
        pair_id=pair.id,
        assignment_id=assignment.id,
        rater_id=rater.id,
        slot_id=slot.id if slot else None,
        is_gold=pair.is_gold,
        choice=choice,
        strength=strength,
        rationale=rationale,
        criteria=criteria or {},
        left_side=left_side,
        shown_at=shown,
        submitted_at=submitted,
    )
    session.add(judgment)
    await session.flush()
    return judgment
