import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments.standing import Standing, ensure_may_rate
from pickwise.core.clock import utcnow
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.core.metrics import JUDGMENTS_STORED
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.models import (
    Assignment,
    Judgment,
    Pair,
    PairFlag,
    PairSlot,
    Project,
    ProjectMember,
    User,
)

LATE_MESSAGE = (
    "Your time on this pair ran out and another rater took it, so this choice was not "
    "stored. Ask for the next pair to continue."
)
NOT_NEEDED_MESSAGE = (
    "This pair no longer needs your judgment (the project changed), so this choice was not "
    "stored. Ask for the next pair to continue."
)


@dataclass(frozen=True)
class Stored:
    judgment: Judgment
    gold_feedback: str | None


# Built once: every submit, skip and flag starts here, once the slot is locked. The row is
# locked, so what the session may hold of it is replaced by what the lock saw; the rater's
# standing is read in the same statement.
_MEMBER = (
    select(ProjectMember.user_id)
    .where(
        ProjectMember.project_id == Assignment.project_id,
        ProjectMember.user_id == Assignment.rater_id,
    )
    .exists()
)
_LOCKED_ASSIGNMENT = (
    select(Assignment, Project, User.is_active, (User.role == "admin") | _MEMBER)
    .join(Project, Project.id == Assignment.project_id)
    .join(User, User.id == Assignment.rater_id)
    .where(
        Assignment.id == bindparam("assignment_id"),
        Assignment.rater_id == bindparam("rater_id"),
    )
    .with_for_update(of=Assignment)
    .execution_options(populate_existing=True)
)


async def _locked_assignment(
    session: AsyncSession, assignment_id: int, rater: User
) -> tuple[Assignment, Project]:
    """The rater's assignment and its slot, locked (the slot first, as every writer does);
    refused unless it is still an open lease of a rater who may still work in the project.

    The standing is read after the slot's lock: a removal, deactivation or closing that
    committed before is seen, and one made later needs the slot, so it waits for this
    request. (A gold lease has no slot: a removal racing it shows as a revoked lease.)
    """
    params = {"assignment_id": assignment_id, "rater_id": rater.id}
    await assignments_repository.lock_slot_of(session, assignment_id, rater.id)
    row = (await session.execute(_LOCKED_ASSIGNMENT, params)).first()
    if row is None:
        raise NotFound(f"assignment {assignment_id}: no such assignment of yours")
    assignment, project, active, member_or_admin = row
    ensure_may_rate(Standing(bool(active), project.is_archived, bool(member_or_admin)))
    if assignment.status == "expired":
        raise Conflict(LATE_MESSAGE)
    if assignment.status == "revoked":
        raise Conflict(NOT_NEEDED_MESSAGE)
    if assignment.status != "leased":
        raise Conflict(
            f"assignment {assignment_id} is already {assignment.status}; ask for the next pair."
        )
    return assignment, project


def _to_canonical(side: str, left_side: str) -> str:
    """'left'/'right' as shown → 'a'/'b' of the pair's canonical order."""
    right_side = "b" if left_side == "a" else "a"
    return {"left": left_side, "right": right_side}.get(side, side)


def validate_judgment(project: Project, body: JudgmentIn) -> None:
    if body.choice == "tie" and not project.allow_tie:
        raise InvalidInput("choice: this project does not allow ties")
    if body.choice == "both_bad" and not project.allow_both_bad:
        raise InvalidInput("choice: this project does not allow 'both bad'")
    scale = list(project.strength_scale)
    if body.strength is not None:
        if not scale:
            raise InvalidInput("strength: this project has no strength scale")
        if body.strength >= len(scale):
            raise InvalidInput(f"strength: must be between 0 and {len(scale) - 1}")
        if body.choice not in ("left", "right"):
            raise InvalidInput("strength: only a choice of left or right has a strength")
    elif scale and body.choice in ("left", "right"):
        raise InvalidInput(f"strength: required; one of 0..{len(scale) - 1} ({', '.join(scale)})")
    rationale = (body.rationale or "").strip()
    if project.rationale_mode == "off" and rationale:
        raise InvalidInput("rationale: this project does not collect rationales")
    if project.rationale_mode == "required" and not rationale:
        raise InvalidInput("rationale: required in this project; say briefly why")
    unknown = set(body.criteria) - set(project.criteria)
    if unknown:
        raise InvalidInput(
            f"criteria: unknown criteria {sorted(unknown)}; known: {project.criteria}"
        )


# Store a judgment in one statement, all or nothing: the slot must still be leased to this
# assignment (gold pairs have no slot); then the judgment goes in, the slot is done and the
# assignment submitted. Returns whether the slot was still ours and the new judgment's id
# (None when nothing was stored).
_STORE_JUDGMENT = text(
    """
    WITH slot AS (
        SELECT id FROM pair_slots
        WHERE id = :slot_id AND assignment_id = :assignment_id AND state = 'leased'
        FOR UPDATE
    ), stored AS (
        INSERT INTO judgments (project_id, pair_id, assignment_id, rater_id, slot_id, is_gold,
                               choice, strength, rationale, criteria, left_side, shown_at,
                               submitted_at)
        SELECT :project_id, :pair_id, :assignment_id, :rater_id, slot.id, :is_gold,
               :choice, CAST(:strength AS integer), CAST(:rationale AS text),
               CAST(:criteria AS jsonb), :left_side, :shown_at, :submitted_at
        FROM (SELECT) AS one
        LEFT JOIN slot ON true
        WHERE slot.id IS NOT NULL OR :is_gold
        -- Cannot happen while the assignment is leased (one per pair and rater); if the data
        -- says otherwise, nothing is written and the rater gets a 409.
        ON CONFLICT DO NOTHING
        RETURNING id, slot_id
    ), done AS (
        UPDATE pair_slots s SET state = 'done', lease_expires_at = NULL
        FROM stored
        WHERE s.id = stored.slot_id
    ), closed AS (
        UPDATE assignments SET status = 'submitted', completed_at = :now
        WHERE id = :assignment_id AND EXISTS (SELECT FROM stored)
    )
    SELECT EXISTS (SELECT FROM slot), (SELECT id FROM stored)
    """
)


async def submit(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: JudgmentIn,
    now: datetime | None = None,
) -> Stored:
    now = now or utcnow()
    assignment, project = await _locked_assignment(session, assignment_id, rater)
    validate_judgment(project, body)
    if not assignment.is_gold and assignment.slot_id is None:
        assignment.status, assignment.completed_at = "revoked", now
        raise Conflict(NOT_NEEDED_MESSAGE)
    judgment = Judgment(
        project_id=project.id,
        pair_id=assignment.pair_id,
        assignment_id=assignment.id,
        rater_id=rater.id,
        slot_id=assignment.slot_id,
        is_gold=assignment.is_gold,
        choice=_to_canonical(body.choice, assignment.left_side),
        strength=body.strength,
        rationale=(body.rationale or "").strip() or None,
        criteria={
            name: _to_canonical(side, assignment.left_side) for name, side in body.criteria.items()
        },
        left_side=assignment.left_side,
        shown_at=assignment.shown_at,
        submitted_at=max(now, assignment.shown_at),
    )
    slot_was_ours, judgment_id = (
        await session.execute(
            _STORE_JUDGMENT,
            {
                "slot_id": None if assignment.is_gold else assignment.slot_id,
                "assignment_id": assignment.id,
                "project_id": judgment.project_id,
                "pair_id": judgment.pair_id,
                "rater_id": judgment.rater_id,
                "is_gold": judgment.is_gold,
                "choice": judgment.choice,
                "strength": judgment.strength,
                "rationale": judgment.rationale,
                "criteria": json.dumps(judgment.criteria),
                "left_side": judgment.left_side,
                "shown_at": judgment.shown_at,
                "submitted_at": judgment.submitted_at,
                "now": now,
            },
        )
    ).one()
    if not (assignment.is_gold or slot_was_ours):
        # The lease ran out and another rater took the slot (or k was lowered).
        assignment.status, assignment.completed_at = "expired", now
        raise Conflict(LATE_MESSAGE)
    if judgment_id is None:
        raise Conflict("This pair already has your judgment.")
    # The statement changed the assignment row; the loaded object follows without a write.
    set_committed_value(assignment, "status", "submitted")
    set_committed_value(assignment, "completed_at", now)
    judgment.id = judgment_id
    # The row exists: the object stands for it and is never inserted again.
    make_transient_to_detached(judgment)
    JUDGMENTS_STORED.inc()
    return Stored(judgment, await _gold_feedback(session, project, assignment, judgment))


async def _gold_feedback(
    session: AsyncSession, project: Project, assignment: Assignment, judgment: Judgment
) -> str | None:
    if not (assignment.is_gold and project.gold_feedback):
        return None
    pair = await session.get(Pair, assignment.pair_id)
    assert pair is not None
    winner = "a" if pair.gold_winner_id == pair.response_a_id else "b"
    if judgment.choice == winner:
        return None
    shown = "left" if winner == assignment.left_side else "right"
    return f"This was a check pair: the expected answer was the {shown} one."


async def _release_slot(session: AsyncSession, assignment: Assignment) -> None:
    """Gives the assignment's slot back to the pool (the slot is already locked)."""
    if assignment.slot_id is None:
        return
    slot = await session.scalar(
        select(PairSlot)
        .where(PairSlot.id == assignment.slot_id)
        .execution_options(populate_existing=True)
    )
    if slot is not None and slot.assignment_id == assignment.id and slot.state == "leased":
        slot.state, slot.assignment_id, slot.lease_expires_at = "open", None, None


async def skip(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: SkipIn,
    now: datetime | None = None,
) -> Assignment:
    assignment, _ = await _locked_assignment(session, assignment_id, rater)
    assignment.status, assignment.skip_reason = "skipped", body.reason
    assignment.completed_at = now or utcnow()
    await _release_slot(session, assignment)
    await session.flush()
    return assignment


async def flag(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: FlagIn,
    now: datetime | None = None,
) -> Assignment:
    """The pair leaves everyone's queue until an admin restores or removes it."""
    assignment, _ = await _locked_assignment(session, assignment_id, rater)
    assignment.status, assignment.completed_at = "flagged", now or utcnow()
    await _release_slot(session, assignment)
    # FOR NO KEY UPDATE: a claim inserting an assignment for this pair (which takes a key-share
    # lock on it through the foreign key) is not held up.
    pair = await session.scalar(
        select(Pair).where(Pair.id == assignment.pair_id).with_for_update(key_share=True)
    )
    assert pair is not None
    if pair.status == "active":
        pair.status = "flagged"
    session.add(
        PairFlag(
            project_id=assignment.project_id,
            pair_id=assignment.pair_id,
            rater_id=rater.id,
            reason=body.reason,
            note=body.note.strip(),
        )
    )
    await session.flush()
    return assignment


async def resolve_flags(
    session: AsyncSession, project: Project, pair_id: int, resolution: str
) -> None:
    """An admin's decision: 'restored' puts the pair back in the queue, 'removed' drops it."""
    if resolution not in ("restored", "removed"):
        raise InvalidInput("resolution: must be 'restored' or 'removed'")
    pair = await session.scalar(
        select(Pair)
        .where(Pair.id == pair_id, Pair.project_id == project.id)
        .with_for_update(key_share=True)
    )
    if pair is None:
        raise NotFound(f"pair {pair_id}: no such pair in this project")
    pair.status = "active" if resolution == "restored" else "removed"
    flags = await session.scalars(
        select(PairFlag).where(PairFlag.pair_id == pair_id, PairFlag.resolution.is_(None))
    )
    for open_flag in flags:
        open_flag.resolution, open_flag.resolved_at = resolution, utcnow()
    await session.flush()
