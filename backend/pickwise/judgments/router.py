"""A rater's answer to a leased pair over the API: a choice, a skip or a flag, each replayable
with an Idempotency-Key; a change of the last choice or skip within the undo window; and the
history of a pair's replaced choices for admins."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import CurrentRater
from pickwise.core.db import SessionDep
from pickwise.core.errors import NotFound
from pickwise.judgments import changes, idempotency, repository, service
from pickwise.judgments.schemas import (
    AssignmentDone,
    FlagIn,
    JudgmentIn,
    JudgmentOut,
    LastDecision,
    NothingToChange,
    PairHistory,
    ReplacedDecisionOut,
    SkipIn,
)
from pickwise.models import Assignment, User
from pickwise.projects.deps import AdminProject, RaterProject

router = APIRouter(prefix="/api/v1", tags=["rating"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string; a retry with the same key returns the first answer.",
    ),
]


def _json(status_code: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status_code)


@router.post(
    "/assignments/{assignment_id}/judgment",
    response_model=JudgmentOut,
    status_code=201,
    responses={409: {"description": "The lease ran out and the slot went to someone else."}},
)
async def submit_judgment(
    assignment_id: int,
    body: JudgmentIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    async def work() -> tuple[int, dict[str, Any]]:
        stored = await service.submit(session, assignment_id, rater, body)
        return 201, _judgment_out(assignment_id, stored)

    fingerprint = idempotency.request_fingerprint(request.url.path, body)
    return _json(*await idempotency.run_once(session, rater, idempotency_key, fingerprint, work))


def _judgment_out(assignment_id: int, stored: service.StoredJudgment) -> dict[str, Any]:
    out = JudgmentOut(
        judgment_id=stored.judgment_id,
        assignment_id=assignment_id,
        pair_id=stored.pair_id,
        choice=stored.choice,
        submitted_at=stored.submitted_at,
        gold_feedback=stored.gold_feedback,
    )
    return out.model_dump(mode="json")


async def _set_aside(
    session: AsyncSession,
    rater: User,
    request: Request,
    body: SkipIn | FlagIn,
    idempotency_key: str | None,
    set_aside: Callable[[], Awaitable[Assignment]],
) -> JSONResponse:
    """Skip and flag answer alike: the assignment's new status, replayable by key."""

    async def work() -> tuple[int, dict[str, Any]]:
        assignment = await set_aside()
        done = AssignmentDone(assignment_id=assignment.id, status=assignment.status)
        return 200, done.model_dump()

    fingerprint = idempotency.request_fingerprint(request.url.path, body)
    return _json(*await idempotency.run_once(session, rater, idempotency_key, fingerprint, work))


@router.post("/assignments/{assignment_id}/skip", response_model=AssignmentDone)
async def skip_pair(
    assignment_id: int,
    body: SkipIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    return await _set_aside(
        session,
        rater,
        request,
        body,
        idempotency_key,
        lambda: service.skip(session, assignment_id, rater, body),
    )


@router.post("/assignments/{assignment_id}/flag", response_model=AssignmentDone)
async def flag_pair(
    assignment_id: int,
    body: FlagIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    return await _set_aside(
        session,
        rater,
        request,
        body,
        idempotency_key,
        lambda: service.flag(session, assignment_id, rater, body),
    )


# --- changing the last choice or skip (judgments.changes) ---------------------------------

CHANGE_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The time to change it has passed (the project's undo window), another "
        "pair was decided since, it was a flag or a vote in a conversation, or (skip to "
        "choice) other raters took the pair."
    }
}


def _put_fingerprint(request: Request, body: JudgmentIn | SkipIn) -> str:
    # The method is part of it: a key first used to submit cannot replay as a change.
    return idempotency.request_fingerprint(f"PUT {request.url.path}", body)


@router.put(
    "/assignments/{assignment_id}/judgment",
    response_model=JudgmentOut,
    responses=CHANGE_REFUSED,
    summary="Change your last choice or skip into this choice",
)
async def change_judgment(
    assignment_id: int,
    body: JudgmentIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Within the project's undo window (`undo_seconds`), the rater's last decision in the
    project becomes this choice: a choice is replaced in place (same judgment, same slot); a
    skip becomes a choice if a slot of the pair is still free. The old one is kept in the
    pair's history. 409 once the window has passed."""

    async def work() -> tuple[int, dict[str, Any]]:
        stored = await changes.change_judgment(session, assignment_id, rater, body)
        return 200, _judgment_out(assignment_id, stored)

    fingerprint = _put_fingerprint(request, body)
    return _json(*await idempotency.run_once(session, rater, idempotency_key, fingerprint, work))


@router.put(
    "/assignments/{assignment_id}/skip",
    response_model=AssignmentDone,
    responses=CHANGE_REFUSED,
    summary="Change your last choice or skip into a skip (withdraw a choice)",
)
async def change_to_skip(
    assignment_id: int,
    body: SkipIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Within the undo window, the rater's last decision becomes a skip: a choice is withdrawn
    (its slot goes back to the pool, for another rater) and kept in the pair's history."""

    async def work() -> tuple[int, dict[str, Any]]:
        assignment = await changes.change_to_skip(session, assignment_id, rater, body)
        return 200, AssignmentDone(
            assignment_id=assignment.id, status=assignment.status
        ).model_dump()

    fingerprint = _put_fingerprint(request, body)
    return _json(*await idempotency.run_once(session, rater, idempotency_key, fingerprint, work))


@router.get(
    "/projects/{project_id}/last-decision",
    response_model=LastDecision | NothingToChange,
    summary="Your last choice or skip, while you may change it",
)
async def last_decision(
    project: RaterProject, rater: CurrentRater, session: SessionDep
) -> LastDecision | NothingToChange:
    found = await changes.changeable(session, project, rater)
    if found is None:
        return NothingToChange()
    assignment, judgment = found.assignment, found.judgment
    return LastDecision(
        assignment_id=assignment.id,
        pair_id=assignment.pair_id,
        kind=found.kind,
        choice=None if judgment is None else changes.shown_choice(judgment),
        strength=None if judgment is None else judgment.strength,
        rationale=None if judgment is None else judgment.rationale,
        criteria={} if judgment is None else changes.shown_criteria(judgment),
        skip_reason=assignment.skip_reason,
        changeable_until=found.until,
    )


@router.get(
    "/projects/{project_id}/pairs/{pair_id}/history",
    response_model=PairHistory,
    tags=["review"],
    summary="Choices and skips raters replaced on a pair",
)
async def pair_history(pair_id: int, project: AdminProject, session: SessionDep) -> PairHistory:
    pair = await repository.get_pair(session, pair_id)
    if pair is None or pair.project_id != project.id:
        raise NotFound(f"pair {pair_id}: no such pair in this project")
    replaced = await changes.history(session, project, pair_id)
    return PairHistory(
        pair_id=pair_id,
        replaced=[ReplacedDecisionOut.model_validate(row) for row in replaced],
    )
