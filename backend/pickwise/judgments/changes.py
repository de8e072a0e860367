"""A rater changes their mind: their last choice or skip in a project may be replaced, within
the project's undo window (`undo_seconds`, 5 minutes unless set), by another choice or a skip.

- A judgment changed into another is updated in place: the same row and the same slot, which
  never left the rater, so nobody else is given the pair meanwhile and the pair never holds
  more than k judgments. Exports and analytics read the new one.
- A judgment changed into a skip is withdrawn: the row goes, its slot goes back to the pool
  and the pair to the next rater who asks.
- A skip changed into a judgment needs a slot again (a skip gave its own back): its old slot
  if it is still free, else another free slot of the pair; when other raters have taken all k
  meanwhile, the change is refused with a 409 and the skip stands.
- A skip changed into a skip records the new reason.

Whatever is replaced is kept in `replaced_decisions` for the admins. Only the rater's last
decision in the project can change (decisions come one lease at a time), a flag never (the
admins have the pair), a missed check pair whose expected answer the rater was shown never,
and a vote in a conversation never (the conversation went on from the reply kept). Refusals
are 409s that say why; nothing is written then.

In an adaptive-overlap project a changed or withdrawn vote runs the stopping rule again on
the pair, in the same transaction (overlap.service.reconsider_pair): a pair settled by the
old vote may want another rater, and a slot the new vote makes unnecessary is dropped.

Lock order (assignments.repository): the project's gate (shared), the pair's slots in id
order, the assignment (with the rater's standing), the judgment, then (adaptive) the pair.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments.standing import Standing, ensure_may_rate
from pickwise.core.clock import utcnow
from pickwise.core.db import as_written
from pickwise.core.errors import Conflict, NotFound
from pickwise.judgments import repository
from pickwise.judgments.schemas import JudgmentIn, SkipIn
from pickwise.judgments.service import (
    StoredJudgment,
    gold_feedback,
    gold_feedback_given,
    validate_judgment,
)
from pickwise.models import Assignment, Judgment, Project, ReplacedDecision, User
from pickwise.overlap import service as overlap
from pickwise.vocabulary import (
    AssignmentStatus,
    Choice,
    DecisionKind,
    OverlapMode,
    ProjectKind,
    canonical_of,
    chosen_side,
    shown_side_of,
)

NOT_DECIDED_MESSAGE = "You have not decided on this pair yet: send your choice as usual."
NOT_LAST_MESSAGE = (
    "Only your last choice or skip in this project can be changed, and you have decided on "
    "another pair since."
)
FLAGGED_MESSAGE = "You flagged this pair for the admins; a flag cannot be changed."
NO_UNDO_MESSAGE = "This project does not let raters change a choice once it is made."
CONVERSATION_MESSAGE = (
    "A vote in a conversation is where the conversation went on from, so it cannot be changed "
    "here; edit the reply you kept on the conversation's page instead."
)
GOLD_SEEN_MESSAGE = (
    "This was a check pair and you were shown its expected answer, so your choice on it "
    "cannot be changed."
)
TAKEN_MESSAGE = (
    "Other raters have taken this pair since you skipped it, so it can no longer be judged by "
    "you; your skip stands."
)


class ChangeRefused(Conflict):
    """The decision cannot be changed (any more)."""


class ChangeWindowClosed(ChangeRefused):
    def __init__(self, decided_at: datetime, seconds: int) -> None:
        super().__init__(
            "The time to change this has passed: a choice or skip can be changed for "
            f"{window_words(seconds)} after it is made, and this one was made at "
            f"{decided_at:%H:%M:%S} UTC. It stays as it is."
        )


def window_words(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


@dataclass(frozen=True)
class Changeable:
    """The rater's last decision, while they may still change it."""

    assignment: Assignment
    judgment: Judgment | None  # None for a skip
    until: datetime

    @property
    def kind(self) -> DecisionKind:
        return DecisionKind.SKIP if self.judgment is None else DecisionKind.JUDGMENT


def _check_changeable(
    assignment: Assignment, project: Project, last_decision: int | None, now: datetime
) -> datetime:
    """When the change must come by; refused (409) if it cannot be made."""
    if assignment.status == AssignmentStatus.FLAGGED:
        raise ChangeRefused(FLAGGED_MESSAGE)
    if assignment.status not in (AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED):
        raise ChangeRefused(NOT_DECIDED_MESSAGE)
    if project.undo_seconds <= 0:
        raise ChangeRefused(NO_UNDO_MESSAGE)
    if project.kind == ProjectKind.CONVERSATIONS:
        raise ChangeRefused(CONVERSATION_MESSAGE)
    if last_decision != assignment.id:
        raise ChangeRefused(NOT_LAST_MESSAGE)
    assert assignment.completed_at is not None
    until = assignment.completed_at + timedelta(seconds=project.undo_seconds)
    if now >= until:
        raise ChangeWindowClosed(assignment.completed_at, project.undo_seconds)
    return until


async def _gold_answer_seen(
    session: AsyncSession, project: Project, assignment: Assignment, judgment: Judgment | None
) -> bool:
    if judgment is None or not assignment.is_gold:
        return False
    return await gold_feedback(session, project, assignment, judgment.choice) is not None


def _project_allows_changes(project: Project) -> bool:
    # A conversation went on from its vote, so that vote stays.
    return project.undo_seconds > 0 and project.kind != ProjectKind.CONVERSATIONS


def changeable_just_made(project: Project, gold_answer_shown: bool) -> bool:
    """Whether a choice the rater made just now (so their last decision, in its window) may
    be changed: `changeable`'s rules for it, without reading it back."""
    return _project_allows_changes(project) and not gold_answer_shown


async def changeable(
    session: AsyncSession, project: Project, rater: User, now: datetime | None = None
) -> Changeable | None:
    """The rater's last decision in the project if they may still change it, else None (for
    the page's link and key, and the API). Reads without locks, in one statement (the rating
    page after every summary asks): the change itself checks again."""
    now = now or utcnow()
    if not _project_allows_changes(project):
        return None
    last = await repository.last_decision_with_judgment(session, project.id, rater.id)
    if last is None:
        return None
    assignment = last.assignment
    try:
        until = _check_changeable(assignment, project, assignment.id, now)
    except ChangeRefused:
        return None
    judgment = None
    if assignment.status == AssignmentStatus.SUBMITTED:
        judgment = last.judgment
        if judgment is None:
            return None
        if last.gold_winner is not None and gold_feedback_given(
            project, assignment, judgment.choice, last.gold_winner
        ):
            return None
    return Changeable(assignment, judgment, until)


async def _locked_decision(
    session: AsyncSession, assignment_id: int, rater: User, now: datetime
) -> tuple[Assignment, Project, Judgment | None]:
    seen = await repository.assignment_of(session, assignment_id)
    if seen is None or seen.rater_id != rater.id:
        raise NotFound(f"assignment {assignment_id}: no such assignment of yours")
    await assignments_repository.pass_gate(session, seen.project_id)
    await assignments_repository.lock_pair_slots(session, seen.pair_id)
    locked = await repository.lock_assignment(session, assignment_id, rater.id)
    if locked is None:
        raise NotFound(f"assignment {assignment_id}: no such assignment of yours")
    assignment, project = locked.assignment, locked.project
    ensure_may_rate(Standing(locked.account_active, project.is_archived, locked.member_or_admin))
    last = await repository.last_decision(session, project.id, rater.id)
    _check_changeable(assignment, project, last, now)
    judgment = None
    if assignment.status == AssignmentStatus.SUBMITTED:
        judgment = await repository.judgment_of(session, assignment.id, lock=True)
        if judgment is None:
            raise ChangeRefused(NOT_DECIDED_MESSAGE)
        if await _gold_answer_seen(session, project, assignment, judgment):
            raise ChangeRefused(GOLD_SEEN_MESSAGE)
    return assignment, project, judgment


def _replaced_judgment(judgment: Judgment, now: datetime) -> ReplacedDecision:
    return ReplacedDecision(
        project_id=judgment.project_id,
        pair_id=judgment.pair_id,
        assignment_id=judgment.assignment_id,
        rater_id=judgment.rater_id,
        kind=DecisionKind.JUDGMENT,
        choice=judgment.choice,
        strength=judgment.strength,
        rationale=judgment.rationale,
        criteria=dict(judgment.criteria),
        left_side=judgment.left_side,
        decided_at=judgment.submitted_at,
        replaced_at=max(now, judgment.submitted_at),
    )


def _replaced_skip(assignment: Assignment, now: datetime) -> ReplacedDecision:
    assert assignment.completed_at is not None
    return ReplacedDecision(
        project_id=assignment.project_id,
        pair_id=assignment.pair_id,
        assignment_id=assignment.id,
        rater_id=assignment.rater_id,
        kind=DecisionKind.SKIP,
        skip_reason=assignment.skip_reason,
        criteria={},
        left_side=assignment.left_side,
        decided_at=assignment.completed_at,
        replaced_at=max(now, assignment.completed_at),
    )


async def change_judgment(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: JudgmentIn,
    now: datetime | None = None,
) -> StoredJudgment:
    """Replaces the rater's last judgment or skip with this judgment."""
    now = now or utcnow()
    assignment, project, judgment = await _locked_decision(session, assignment_id, rater, now)
    validate_judgment(project, body)
    left_side = assignment.left_side
    choice = canonical_of(body.choice, left_side)
    rationale = (body.rationale or "").strip() or None
    criteria = {name: canonical_of(side, left_side) for name, side in body.criteria.items()}
    if judgment is not None:
        await repository.keep_replaced(session, _replaced_judgment(judgment, now))
        judgment.choice, judgment.strength = choice, body.strength
        judgment.rationale, judgment.criteria = rationale, criteria
        judgment.submitted_at = max(now, assignment.shown_at)
        assignment.completed_at = now
        await session.flush()
        await _decide_again(session, project, assignment)
        return await _stored(session, project, assignment, judgment.id, choice, now)
    slot_id = None
    if not assignment.is_gold:
        slot_id = await assignments_repository.retake_slot(
            session,
            pair_id=assignment.pair_id,
            slot_id=assignment.slot_id,
            assignment_id=assignment.id,
            now=now,
            expires=now + timedelta(seconds=project.lease_seconds),
        )
        if slot_id is None:
            raise ChangeRefused(TAKEN_MESSAGE)
    await repository.keep_replaced(session, _replaced_skip(assignment, now))
    assignment.status, assignment.slot_id, assignment.skip_reason = (
        AssignmentStatus.LEASED,
        slot_id,
        None,
    )
    await session.flush()
    new = repository.NewJudgment(
        project_id=project.id,
        pair_id=assignment.pair_id,
        assignment_id=assignment.id,
        rater_id=rater.id,
        slot_id=slot_id,
        is_gold=assignment.is_gold,
        choice=choice,
        strength=body.strength,
        rationale=rationale,
        criteria=criteria,
        left_side=left_side,
        shown_at=assignment.shown_at,
        submitted_at=max(now, assignment.shown_at),
    )
    stored = await repository.store_judgment(session, new, now)
    # The slot was leased to this assignment in this transaction, under its lock.
    assert stored.judgment_id is not None
    as_written(assignment, status=AssignmentStatus.SUBMITTED, completed_at=now)
    await _decide_again(session, project, assignment)
    return await _stored(session, project, assignment, stored.judgment_id, choice, now)


async def _decide_again(session: AsyncSession, project: Project, assignment: Assignment) -> None:
    """The pair's votes changed: in an adaptive project its stopping rule runs again."""
    if project.overlap_mode == OverlapMode.ADAPTIVE and not assignment.is_gold:
        await overlap.reconsider_pair(session, project, assignment.pair_id)


async def _stored(
    session: AsyncSession,
    project: Project,
    assignment: Assignment,
    judgment_id: int,
    choice: str,
    now: datetime,
) -> StoredJudgment:
    return StoredJudgment(
        judgment_id=judgment_id,
        pair_id=assignment.pair_id,
        choice=Choice(choice),
        submitted_at=max(now, assignment.shown_at),
        gold_feedback=await gold_feedback(session, project, assignment, choice),
        project=project,
    )


async def change_to_skip(
    session: AsyncSession,
    assignment_id: int,
    rater: User,
    body: SkipIn,
    now: datetime | None = None,
) -> Assignment:
    """Replaces the rater's last judgment (which is withdrawn: its slot goes back to the
    pool) or skip with a skip for this reason."""
    now = now or utcnow()
    assignment, project, judgment = await _locked_decision(session, assignment_id, rater, now)
    if judgment is not None:
        await repository.keep_replaced(session, _replaced_judgment(judgment, now))
        slot_id = judgment.slot_id
        await repository.withdraw_judgment(session, judgment)
        if slot_id is not None:
            await assignments_repository.reopen_slot(session, slot_id)
    else:
        await repository.keep_replaced(session, _replaced_skip(assignment, now))
    assignment.status, assignment.skip_reason = AssignmentStatus.SKIPPED, body.reason
    assignment.completed_at = now
    await session.flush()
    if judgment is not None:
        await _decide_again(session, project, assignment)
    return assignment


def _as_shown(value: str, left_side: str) -> str:
    """A canonical choice (a, b, tie, both_bad) as the rater saw it (left, right, ...)."""
    side = chosen_side(value)
    return value if side is None else shown_side_of(side, left_side)


def shown_choice(judgment: Judgment) -> str:
    """The judgment's choice as the rater saw it: left, right, tie or both_bad."""
    return _as_shown(judgment.choice, judgment.left_side)


def shown_criteria(judgment: Judgment) -> dict[str, str]:
    """The judgment's criteria as the rater saw them: left, right or tie."""
    return {name: _as_shown(value, judgment.left_side) for name, value in judgment.criteria.items()}


async def history(
    session: AsyncSession, project: Project, pair_id: int
) -> Sequence[ReplacedDecision]:
    """What raters replaced on one of the project's pairs, oldest first (admins' pair view)."""
    return await repository.replaced_decisions(session, project.id, pair_id)
