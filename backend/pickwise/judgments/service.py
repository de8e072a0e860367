"""A rater's answer to a leased pair: a choice (stored once), a skip, or a flag; and an
admin's decision on a flagged pair. Lock order: assignments.repository."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments.standing import Standing, ensure_may_rate
from pickwise.core.clock import utcnow
from pickwise.core.db import DriverSql, as_written
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.core.metrics import JUDGMENTS_STORED
from pickwise.core.security import token_digest
from pickwise.judgments import repository
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.models import Assignment, PairFlag, Project, User
from pickwise.overlap import service as overlap
from pickwise.vocabulary import (
    AssignmentStatus,
    CanonicalSide,
    Choice,
    FlagResolution,
    OverlapMode,
    PairStatus,
    RationaleMode,
    ShownChoice,
    canonical_of,
    shown_side_of,
)

LATE_MESSAGE = (
    "Your time on this pair ran out and another rater took it, so this choice was not "
    "stored. Ask for the next pair to continue."
)
NOT_NEEDED_MESSAGE = (
    "This pair no longer needs your judgment (the project changed), so this choice was not "
    "stored. Ask for the next pair to continue."
)
LOST_MESSAGE = (
    "This pair's lease was lost (the database restarted right after it was given), so this "
    "choice was not stored. Ask for the next pair to continue."
)
DECISIVE = (ShownChoice.LEFT, ShownChoice.RIGHT)


@dataclass(frozen=True)
class StoredJudgment:
    judgment_id: int
    pair_id: int
    choice: Choice  # relative to the pair's canonical A / B
    submitted_at: datetime
    gold_feedback: str | None
    project: Project  # as locked with the assignment: what the next lease needs
    next_assignment_id: int | None = None  # taken for the next lease, when asked for


@dataclass
class KeyedAnswer:
    """A choice's answer under its idempotency key (claimed by `user_id`), written by the
    statement that stores the judgment rather than in a round trip of its own afterwards:
    `body_of` makes the answer to a stored judgment (`status_code`), from all but its
    gold feedback, which is read later. `written` is what the statement wrote, for
    `idempotency.run_once` to write the answer again only when it came out otherwise."""

    user_id: int
    key: str
    body_of: Callable[[StoredJudgment], dict[str, Any]]
    status_code: int = 201
    written: tuple[int, dict[str, Any]] | None = None


@dataclass(frozen=True)
class SetAside:
    """A skipped or flagged assignment, and its project as locked with it."""

    assignment: Assignment
    project: Project


@dataclass(frozen=True)
class LeaseLocks:
    """The locks a submit, skip or flag starts with, taken already (`api_rater_and_locks`),
    and what they found: the rater's assignment, or None when they have no such one."""

    found: repository.LockedAssignment | None


async def api_rater_and_locks(
    session: AsyncSession, token: str, assignment_id: int
) -> tuple[User | None, LeaseLocks]:
    """Who an API token names and, for them, the locks of an answer to the assignment, in
    one round trip; a token that names nobody takes no lock (None)."""
    rater, found = await repository.token_holder_and_lock(
        session, token_digest(token), utcnow(), assignment_id
    )
    return rater, LeaseLocks(found)


@dataclass(frozen=True)
class ClaimedWithLocks:
    """An Idempotency-Key claimed in the round trip of the lease's locks: `locks` when the
    claim took effect, None for a replay (the key was taken before), which locks nothing."""

    claimed: bool
    locks: LeaseLocks | None


def _claimed_with_locks(claim: repository.KeyClaim) -> ClaimedWithLocks:
    return ClaimedWithLocks(claim.claimed, LeaseLocks(claim.found) if claim.claimed else None)


async def claim_key_and_locks(
    session: AsyncSession, rater: User, key: str, fingerprint: str, assignment_id: int
) -> ClaimedWithLocks:
    """The key claimed for the rater and, if that took effect, the answer's locks, in one
    round trip (judgments.idempotency checks the key's length first)."""
    claim = await repository.claim_key_and_lock(session, rater.id, key, fingerprint, assignment_id)
    return _claimed_with_locks(claim)


def session_claim_and_lock_calls(
    key: str, fingerprint: str, assignment_id: int
) -> list[tuple[DriverSql, dict[str, Any]]]:
    """`claim_key_and_locks` as statements to send with a web session's lookup (the rating
    page's forms); their rows make the claim (`claimed_with_locks_of`)."""
    return repository.session_holder_claim_and_lock_calls(key, fingerprint, assignment_id)


def claimed_with_locks_of(
    session: AsyncSession, answers: list[list[tuple[Any, ...]]]
) -> ClaimedWithLocks:
    return _claimed_with_locks(repository.key_claim(session, answers))


async def api_rater_claim_and_locks(
    session: AsyncSession, token: str, key: str, fingerprint: str, assignment_id: int
) -> tuple[User | None, ClaimedWithLocks]:
    """`api_rater_and_locks` with the key claimed first: one round trip for who asks, the
    key and the locks; a token that names nobody claims and locks nothing."""
    rater, claim = await repository.token_holder_claim_and_lock(
        session, token_digest(token), utcnow(), key, fingerprint, assignment_id
    )
    return rater, _claimed_with_locks(claim)


async def _locked_assignment(
    session: AsyncSession, assignment_id: int, rater: User, locks: LeaseLocks | None = None
) -> tuple[Assignment, Project]:
    """The rater's assignment and its slot, locked (the slot first, as every writer does), or
    as `locks` found them; refused unless it is still an open lease of a rater who may still
    work in the project.

    The standing is read after the slot's lock: a removal, deactivation or closing that
    committed before is seen, and one made later needs the slot, so it waits for this
    request. (A gold lease has no slot: a removal racing it shows as a revoked lease.)
    """
    if locks is None:
        locked = await repository.lock_slot_and_assignment(session, assignment_id, rater.id)
    else:
        locked = locks.found
    if locked is None:
        if await repository.assignment_was_lost(session, assignment_id):
            raise Conflict(LOST_MESSAGE)
        raise NotFound(f"assignment {assignment_id}: no such assignment of yours")
    assignment, project = locked.assignment, locked.project
    ensure_may_rate(Standing(locked.account_active, project.is_archived, locked.member_or_admin))
    if assignment.status == AssignmentStatus.EXPIRED:
        raise Conflict(LATE_MESSAGE)
    if assignment.status == AssignmentStatus.REVOKED:
        raise Conflict(NOT_NEEDED_MESSAGE)
    if assignment.status != AssignmentStatus.LEASED:
        raise Conflict(
            f"assignment {assignment_id} is already {assignment.status}; ask for the next pair."
        )
    return assignment, project


def validate_judgment(project: Project, body: JudgmentIn) -> None:
    if body.choice == ShownChoice.TIE and not project.allow_tie:
        raise InvalidInput("this project does not allow ties", field="choice")
    if body.choice == ShownChoice.BOTH_BAD and not project.allow_both_bad:
        raise InvalidInput("this project does not allow 'both bad'", field="choice")
    scale = list(project.strength_scale)
    if body.strength is not None:
        if not scale:
            raise InvalidInput("this project has no strength scale", field="strength")
        if body.strength >= len(scale):
            raise InvalidInput(f"must be between 0 and {len(scale) - 1}", field="strength")
        if body.choice not in DECISIVE:
            raise InvalidInput("only a choice of left or right has a strength", field="strength")
    elif scale and body.choice in DECISIVE:
        raise InvalidInput(
            f"required; one of 0..{len(scale) - 1} ({', '.join(scale)})", field="strength"
        )
    rationale = (body.rationale or "").strip()
    if project.rationale_mode == RationaleMode.OFF and rationale:
        raise InvalidInput("this project does not collect rationales", field="rationale")
    if project.rationale_mode == RationaleMode.REQUIRED and not rationale:
        raise InvalidInput("required in this project; say briefly why", field="rationale")
    unknown = set(body.criteria) - set(project.criteria)
    if unknown:
        raise InvalidInput(
            f"unknown criteria {sorted(unknown)}; known: {project.criteria}", field="criteria"
        )


def new_judgment(
    body: JudgmentIn,
    *,
    project_id: int,
    pair_id: int,
    assignment_id: int,
    rater_id: int,
    slot_id: int | None,
    is_gold: bool,
    left_side: str,
    shown_at: datetime,
    submitted_at: datetime,
) -> repository.NewJudgment:
    """The choice as stored: relative to the pair's canonical A / B, the rationale trimmed."""
    return repository.NewJudgment(
        project_id=project_id,
        pair_id=pair_id,
        assignment_id=assignment_id,
        rater_id=rater_id,
        slot_id=slot_id,
        is_gold=is_gold,
        choice=canonical_of(body.choice, left_side),
        strength=body.strength,
        rationale=(body.rationale or "").strip() or None,
        criteria={name: canonical_of(side, left_side) for name, side in body.criteria.items()},
        left_side=left_side,
        shown_at=shown_at,
        submitted_at=submitted_at,
    )


async def submit(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: JudgmentIn,
    now: datetime | None = None,
    *,
    reserve_next: bool = False,
    locks: LeaseLocks | None = None,
    answer: KeyedAnswer | None = None,
) -> StoredJudgment:
    """Stores the choice once, relative to the pair's canonical A / B; refused (409) when the
    lease was lost: it ran out and another rater took the slot, or the slot is gone. With
    ``reserve_next``, an id for the rater's next assignment is taken in the same statement
    (assignments.service.next_lease's ``reserved_id``). ``locks``: the lease's locks, when
    taken already (`api_rater_and_locks`). ``answer``: the request's answer, written under
    its key by the same statement when the judgment goes in."""
    now = now or utcnow()
    assignment, project = await _locked_assignment(session, assignment_id, rater, locks)
    validate_judgment(project, body)
    if not assignment.is_gold and assignment.slot_id is None:
        assignment.status, assignment.completed_at = AssignmentStatus.REVOKED, now
        raise Conflict(NOT_NEEDED_MESSAGE)
    new = new_judgment(
        body,
        project_id=project.id,
        pair_id=assignment.pair_id,
        assignment_id=assignment.id,
        rater_id=rater.id,
        slot_id=None if assignment.is_gold else assignment.slot_id,
        is_gold=assignment.is_gold,
        left_side=assignment.left_side,
        shown_at=assignment.shown_at,
        submitted_at=max(now, assignment.shown_at),
    )
    decides = not assignment.is_gold and project.overlap_mode == OverlapMode.ADAPTIVE
    # Under the counted rule the decision goes out with the store, in its round trip.
    decision = overlap.decision_with_vote(project, new.pair_id, assignment.id) if decides else None
    to_write = None if answer is None else _answer_to_write(answer, new, project)
    stored = await repository.store_judgment(
        session,
        new,
        now,
        lock_pair=decides,
        reserve_next=reserve_next,
        answer=to_write,
        then=decision,
    )
    if not (assignment.is_gold or stored.slot_was_ours):
        # The lease ran out and another rater took the slot (or k was lowered).
        assignment.status, assignment.completed_at = AssignmentStatus.EXPIRED, now
        raise Conflict(LATE_MESSAGE)
    if stored.judgment_id is None:
        raise Conflict("This pair already has your judgment.")
    # The statement changed the assignment row; the loaded object follows without a write.
    as_written(assignment, status=AssignmentStatus.SUBMITTED, completed_at=now)
    if answer is not None and to_write is not None:
        written = {**to_write.body, "judgment_id": stored.judgment_id}
        answer.written = (to_write.status_code, written)
    JUDGMENTS_STORED.inc()
    if decides and decision is None:
        await overlap.after_vote(session, project, new.pair_id)
    return StoredJudgment(
        judgment_id=stored.judgment_id,
        pair_id=new.pair_id,
        choice=Choice(new.choice),
        submitted_at=new.submitted_at,
        gold_feedback=await gold_feedback(session, project, assignment, new.choice),
        project=project,
        next_assignment_id=stored.next_assignment_id,
    )


def _answer_to_write(
    answer: KeyedAnswer, new: repository.NewJudgment, project: Project
) -> repository.AnswerToWrite:
    """The answer to the judgment about to be stored, as far as it is known before: its id
    is set by the statement, and gold feedback, read afterwards, is taken to be none."""
    before = StoredJudgment(
        judgment_id=0,
        pair_id=new.pair_id,
        choice=Choice(new.choice),
        submitted_at=new.submitted_at,
        gold_feedback=None,
        project=project,
    )
    body = answer.body_of(before)
    return repository.AnswerToWrite(answer.user_id, answer.key, answer.status_code, body)


async def gold_feedback(
    session: AsyncSession, project: Project, assignment: Assignment, choice: str
) -> str | None:
    if not (assignment.is_gold and project.gold_feedback):
        return None
    pair = await repository.get_pair(session, assignment.pair_id)
    assert pair is not None
    winner = CanonicalSide.A if pair.gold_winner_id == pair.response_a_id else CanonicalSide.B
    return gold_feedback_given(project, assignment, choice, winner)


def gold_feedback_given(
    project: Project, assignment: Assignment, choice: str, winner: CanonicalSide
) -> str | None:
    """`gold_feedback` when the check pair's expected side (`winner`) is known already."""
    if not (assignment.is_gold and project.gold_feedback) or choice == winner:
        return None
    shown = shown_side_of(winner, assignment.left_side)
    return f"This was a check pair: the expected answer was the {shown} one."


async def _release_slot(session: AsyncSession, assignment: Assignment) -> None:
    """Gives the assignment's slot back to the pool (the slot is already locked)."""
    if assignment.slot_id is not None:
        await assignments_repository.free_slots(session, [assignment.slot_id], [assignment.id])


async def skip(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: SkipIn,
    now: datetime | None = None,
    *,
    locks: LeaseLocks | None = None,
) -> SetAside:
    assignment, project = await _locked_assignment(session, assignment_id, rater, locks)
    assignment.status, assignment.skip_reason = AssignmentStatus.SKIPPED, body.reason
    assignment.completed_at = now or utcnow()
    await _release_slot(session, assignment)
    await session.flush()
    return SetAside(assignment, project)


async def flag(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: FlagIn,
    now: datetime | None = None,
    *,
    locks: LeaseLocks | None = None,
) -> SetAside:
    """The pair leaves everyone's queue until an admin restores or removes it."""
    assignment, project = await _locked_assignment(session, assignment_id, rater, locks)
    assignment.status, assignment.completed_at = AssignmentStatus.FLAGGED, now or utcnow()
    await _release_slot(session, assignment)
    pair = await repository.lock_pair(session, assignment.pair_id)
    assert pair is not None
    if pair.status == PairStatus.ACTIVE:
        pair.status = PairStatus.FLAGGED
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
    return SetAside(assignment, project)


async def resolve_flags(
    session: AsyncSession, project: Project, pair_id: int, resolution: str
) -> None:
    """An admin's decision: 'restored' puts the pair back in the queue, 'removed' drops it."""
    if resolution not in frozenset(FlagResolution):
        raise InvalidInput("must be 'restored' or 'removed'", field="resolution")
    pair = await repository.lock_pair(session, pair_id, project.id)
    if pair is None:
        raise NotFound(f"pair {pair_id}: no such pair in this project")
    restored = resolution == FlagResolution.RESTORED
    pair.status = PairStatus.ACTIVE if restored else PairStatus.REMOVED
    for open_flag in await repository.unresolved_flags(session, pair_id):
        open_flag.resolution, open_flag.resolved_at = resolution, utcnow()
    await session.flush()
