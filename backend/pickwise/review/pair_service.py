"""One pair under review: everything raters did with it, and an admin's decision on it.

A decision (A, B, tie, both bad, or drop) overrides the pair's votes in every export
(docs/review.md, "Adjudication"). Recording the decision the pair already has, or
withdrawing when there is none, changes nothing: both are safe to repeat.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.core.errors import NotFound
from pickwise.models import Adjudication, Judgment, Project, ReplacedDecision, User
from pickwise.review import pair_repository as repository
from pickwise.review import service as listing
from pickwise.review.pair_repository import Rater
from pickwise.review.repository import watermark
from pickwise.review.schemas import (
    AdjudicationIn,
    AdjudicationRead,
    ChangeRead,
    CriterionRead,
    LeaseRead,
    PairDetailRead,
    PairFlagRead,
    RaterRef,
    ResponseRead,
    SkipRead,
    SlotRead,
    TurnRead,
    VoteRead,
)
from pickwise.vocabulary import Decision, SkipReason, shown_choice_of

OPEN_LEASE = ("leased",)
SKIPPED = ("skipped",)


def _rater(rater: Rater, reveal: bool) -> RaterRef:
    return RaterRef(
        user_id=rater.user_id,
        pseudonym=rater.pseudonym,
        display_name=rater.display_name if reveal else None,
        email=rater.email if reveal else None,
        excluded=rater.excluded,
    )


def _strength_label(strength: int | None, scale: list[str]) -> str | None:
    if strength is not None and strength < len(scale):
        return str(scale[strength])
    return None


def _change(change: ReplacedDecision, rater: Rater, scale: list[str], reveal: bool) -> ChangeRead:
    choice = change.choice
    return ChangeRead(
        rater=_rater(rater, reveal),
        kind=change.kind,
        choice=choice,
        as_shown=shown_choice_of(choice, change.left_side) if choice is not None else None,
        strength_label=_strength_label(change.strength, scale),
        skip_reason_label=SkipReason(change.skip_reason).label if change.skip_reason else None,
        decided_at=change.decided_at,
        replaced_at=change.replaced_at,
    )


def _vote(
    judgment: Judgment, rater: Rater, scale: list[str], gold: str | None, reveal: bool
) -> VoteRead:
    label = _strength_label(judgment.strength, scale)
    return VoteRead(
        judgment_id=judgment.id,
        rater=_rater(rater, reveal),
        counted=not rater.excluded,
        shown_left=judgment.left_side,
        choice=judgment.choice,
        as_shown=shown_choice_of(judgment.choice, judgment.left_side),
        strength=judgment.strength,
        strength_label=label,
        criteria=[
            CriterionRead(
                name=name,
                choice=choice,
                as_shown=shown_choice_of(choice, judgment.left_side),
            )
            for name, choice in sorted(judgment.criteria.items())
        ],
        rationale=judgment.rationale,
        seconds=(judgment.submitted_at - judgment.shown_at).total_seconds(),
        shown_at=judgment.shown_at,
        submitted_at=judgment.submitted_at,
        is_gold=judgment.is_gold,
        gold_correct=None if gold is None or not judgment.is_gold else judgment.choice == gold,
    )


def adjudication_read(
    row: Adjudication, names: dict[int, str], by_id: dict[int, Adjudication]
) -> AdjudicationRead:
    replaced = by_id.get(row.replaces_id) if row.replaces_id is not None else None
    return AdjudicationRead(
        id=row.id,
        pair_id=row.pair_id,
        decision=Decision(row.decision),
        note=row.note,
        decided_by=names.get(row.decided_by_id) if row.decided_by_id else None,
        decided_at=row.decided_at,
        replaces_id=row.replaces_id,
        replaced_decision=Decision(replaced.decision) if replaced is not None else None,
        is_current=row.is_current,
        withdrawn_at=row.withdrawn_at,
        withdrawn_by=names.get(row.withdrawn_by_id) if row.withdrawn_by_id else None,
    )


async def adjudication_history(session: AsyncSession, pair_id: int) -> list[AdjudicationRead]:
    rows = await repository.adjudications(session, pair_id)
    people = {row.decided_by_id for row in rows} | {row.withdrawn_by_id for row in rows}
    names = await repository.user_names(session, {user for user in people if user is not None})
    by_id = {row.id: row for row in rows}
    return [adjudication_read(row, names, by_id) for row in rows]


async def pair_detail(
    session: AsyncSession, project: Project, pair_id: int, *, reveal: bool = False
) -> PairDetailRead:
    texts = await repository.pair_texts(session, project.id, pair_id)
    if texts is None:
        raise NotFound(f"pair {pair_id}: no such pair in this project")
    pair, prompt = texts.pair, texts.prompt
    as_of = await watermark(session, project.id)
    summary = await listing.summary_as_of(session, project, pair_id, as_of)
    assert summary is not None
    gold = None
    if pair.gold_winner_id is not None:
        gold = "a" if pair.gold_winner_id == pair.response_a_id else "b"
    scale = [str(label) for label in project.strength_scale]
    history = await adjudication_history(session, pair_id)
    return PairDetailRead(
        pair_id=pair.id,
        project_id=project.id,
        batch_id=pair.batch_id,
        batch_filename=texts.batch.filename,
        created_at=pair.created_at,
        prompt_external_id=prompt.external_id,
        system=prompt.system,
        turns=[
            TurnRead(role=str(turn.get("role", "")), content=str(turn.get("content", "")))
            for turn in prompt.turns
        ],
        response_a=_response(texts.response_a),
        response_b=_response(texts.response_b),
        is_gold=pair.is_gold,
        gold_answer=gold,
        pair_status=pair.status,
        excluded=pair.excluded,
        states=listing.states_of(summary, project.raters_per_pair),
        **listing.vote_counts(summary, project.raters_per_pair),
        decision=next((row for row in history if row.is_current), None),
        votes_list=[
            _vote(judgment, rater, scale, gold, reveal)
            for judgment, rater in await repository.votes(session, pair_id)
        ],
        skips=[
            SkipRead(
                rater=_rater(rater, reveal),
                reason=assignment.skip_reason,
                reason_label=SkipReason(assignment.skip_reason).label
                if assignment.skip_reason
                else "no reason given",
                at=assignment.completed_at,
            )
            for assignment, rater in await repository.assignments(session, pair_id, SKIPPED)
        ],
        changes=[
            _change(change, rater, scale, reveal)
            for change, rater in await repository.changes(session, pair_id)
        ],
        flags=[
            PairFlagRead(
                rater=_rater(rater, reveal),
                reason=flag.reason,
                note=flag.note,
                created_at=flag.created_at,
                resolution=flag.resolution,
                resolved_at=flag.resolved_at,
            )
            for flag, rater in await repository.flags(session, pair_id)
        ],
        slots=[
            SlotRead(
                slot_no=slot.slot_no,
                state=slot.state,
                lease_expires_at=slot.lease_expires_at,
                rater_pseudonym=pseudonym,
            )
            for slot, pseudonym in await repository.slots(session, pair_id)
        ],
        leases=[
            LeaseRead(
                rater=_rater(rater, reveal),
                shown_left=assignment.left_side,
                shown_at=assignment.shown_at,
                lease_expires_at=assignment.lease_expires_at,
                is_gold=assignment.is_gold,
            )
            for assignment, rater in await repository.assignments(session, pair_id, OPEN_LEASE)
        ],
        adjudications=history,
    )


def _response(response: object) -> ResponseRead:
    return ResponseRead.model_validate(response, from_attributes=True)


async def adjudicate(
    session: AsyncSession,
    project: Project,
    pair_id: int,
    admin: User,
    body: AdjudicationIn,
    now: datetime | None = None,
) -> tuple[AdjudicationRead, bool]:
    """Record the decision (replacing the current one); returns it and whether anything
    changed (the same decision and note again change nothing)."""
    await _locked_pair(session, project, pair_id)
    current = await repository.current_adjudication(session, pair_id)
    note = body.note.strip()
    if current is not None and current.decision == body.decision and current.note == note:
        return await _read(session, pair_id, current.id), False
    if current is not None:
        current.is_current = False
        await session.flush()
    decision = Adjudication(
        project_id=project.id,
        pair_id=pair_id,
        decision=body.decision.value,
        note=note,
        decided_by_id=admin.id,
        decided_at=now or utcnow(),
        replaces_id=current.id if current is not None else None,
        is_current=True,
    )
    session.add(decision)
    await session.flush()
    return await _read(session, pair_id, decision.id), True


async def withdraw(
    session: AsyncSession, project: Project, pair_id: int, admin: User, now: datetime | None = None
) -> AdjudicationRead | None:
    """End the current decision (the votes decide again); None if there was none."""
    await _locked_pair(session, project, pair_id)
    current = await repository.current_adjudication(session, pair_id)
    if current is None:
        return None
    current.is_current = False
    current.withdrawn_at, current.withdrawn_by_id = now or utcnow(), admin.id
    await session.flush()
    return await _read(session, pair_id, current.id)


async def _locked_pair(session: AsyncSession, project: Project, pair_id: int) -> None:
    if await repository.lock_pair(session, project.id, pair_id) is None:
        raise NotFound(f"pair {pair_id}: no such pair in this project")


async def _read(session: AsyncSession, pair_id: int, adjudication_id: int) -> AdjudicationRead:
    history = await adjudication_history(session, pair_id)
    return next(row for row in history if row.id == adjudication_id)
