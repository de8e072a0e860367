"""A rater's answer to a leased pair over the API: a choice, a skip or a flag, each replayable
with an Idempotency-Key, and with `?next=true` answered together with the rater's next pair;
a change of the last choice or skip within the undo window; and the history of a pair's
replaced choices for admins.

The answer routes (POST) end their first transaction themselves (`OpenUnit.done_then`): the
answer is committed first, and only then is the next pair leased, in a transaction of its own
(on the same connection), so a lease that fails can never undo a stored judgment.
"""

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import service as assignments
from pickwise.auth.deps import API_TOKEN_SECURITY, CurrentRater
from pickwise.core.deps import SessionDep
from pickwise.core.errors import NotFound, PickwiseError
from pickwise.core.json_body import json_datetime
from pickwise.core.responses import JsonAnswer
from pickwise.judgments import changes, idempotency, repository, service
from pickwise.judgments.deps import (
    IDEMPOTENCY_KEY_HEADER,
    Answerer,
    FlagAnswerer,
    JudgmentAnswerer,
    SkipAnswerer,
)
from pickwise.judgments.schemas import (
    AssignmentDone,
    AssignmentDoneAndNext,
    FlagIn,
    JudgmentAndNext,
    JudgmentIn,
    JudgmentOut,
    LastDecision,
    NextFailed,
    NothingToChange,
    PairHistory,
    ReplacedDecisionOut,
    SkipIn,
)
from pickwise.models import Assignment, Project, User
from pickwise.projects.deps import AdminProject, RaterProject
from pickwise.vocabulary import AssignmentStatus

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["rating"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        description="Any unique string; a retry with the same key returns the first answer.",
    ),
]
WantsNext = Annotated[
    bool,
    Query(
        alias="next",
        description="Also lease the rater's next pair and send it in `next` (one request per "
        "judgment). The answer is committed first; the lease follows in a transaction of its "
        "own, and if it fails the answer still stands and `next_error` says why.",
    ),
]
NEXT_FAILED_MESSAGE = (
    "Your answer is stored, but the next pair could not be leased just now; ask for it again."
)


@dataclass(frozen=True)
class Answered:
    status_code: int
    body: dict[str, Any]
    project: Project  # as locked with the assignment: the next lease needs it
    # An id the answer took for the next lease (a choice asked with ?next=true).
    next_assignment_id: int | None = None


# A replay runs no work: it reads the project itself.
Work = Callable[[AsyncSession, User], Awaitable[Answered]]


def _json(status_code: int, body: dict[str, Any]) -> JSONResponse:
    return JsonAnswer(body, status_code=status_code)


async def _answer(
    request: Request,
    answering: Answerer,
    assignment_id: int,
    body: JudgmentIn | SkipIn | FlagIn,
    idempotency_key: str | None,
    wants_next: bool,
    work: Work,
    written_by_work: service.KeyedAnswer | None = None,
) -> JSONResponse:
    """Runs `work` once per key and commits it; then, when asked and the answer is not a
    refusal, leases the next pair (a replay gets the lease the rater holds by then).
    `written_by_work`: see `idempotency.run_once`."""
    # Only a key's claim and replays use it (a JSON dump and a hash of the body), made once:
    # by who answers when they claimed the key with their locks.
    fingerprint = answering.fingerprint
    if fingerprint is None:
        fingerprint = (
            ""
            if idempotency_key is None
            else idempotency.request_fingerprint(request.url.path, body)
        )
    unit, session, rater = answering.unit, answering.unit.session, answering.rater
    answered: Answered | None = None

    async def answer_once() -> tuple[int, dict[str, Any]]:
        nonlocal answered
        answered = await work(session, rater)
        return answered.status_code, answered.body

    status_code, answer = await idempotency.run_once(
        session,
        rater,
        idempotency_key,
        fingerprint,
        answer_once,
        claimed=answering.claimed,
        written_by_work=written_by_work,
    )
    wants_next = wants_next and status_code < 400  # a refusal comes with no lease
    project = None if answered is None else answered.project
    if wants_next and project is None:
        project = await _project_of(session, assignment_id, rater)
    if wants_next and project is not None:
        next_unit = await unit.done_then(answering.units)
        reserved_id = None if answered is None else answered.next_assignment_id
        answer = {**answer, **await _next_pair(next_unit, project, rater, reserved_id)}
    else:
        await unit.done()
    return _json(status_code, answer)


async def _project_of(session: AsyncSession, assignment_id: int, rater: User) -> Project | None:
    """The assignment's project, for a replay (which ran no work)."""
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None or assignment.rater_id != rater.id:
        return None
    return await session.get(Project, assignment.project_id)


async def _next_pair(
    unit: AbstractAsyncContextManager[AsyncSession],
    project: Project,
    rater: User,
    reserved_id: int | None,
) -> dict[str, Any]:
    """The rater's next lease (or "no work left"), or why there is none, in `unit` (the
    answer's `OpenUnit.done_then`); never raises, since the answer it is sent with is
    already committed."""
    project_id = project.id  # a rollback may expire the object
    try:
        async with unit as session:
            lease = await assignments.next_lease(session, project, rater, reserved_id=reserved_id)
    except PickwiseError as exc:
        failed = NextFailed(status=exc.status_code, project_id=project_id, **exc.body())
        return {"next": None, "next_error": failed.model_dump(exclude_none=True)}
    except Exception:
        logger.exception("the next pair after an answer to project %s failed", project_id)
        failed = NextFailed(
            status=503, project_id=project_id, error="NextPairFailed", detail=NEXT_FAILED_MESSAGE
        )
        return {"next": None, "next_error": failed.model_dump(exclude_none=True)}
    return {"next": assignments.no_work_left() if lease is None else assignments.shown(lease)}


@router.post(
    "/assignments/{assignment_id}/judgment",
    response_model=JudgmentOut | JudgmentAndNext,
    status_code=201,
    responses={409: {"description": "The lease ran out and the slot went to someone else."}},
    openapi_extra=API_TOKEN_SECURITY,
)
async def submit_judgment(
    assignment_id: int,
    body: JudgmentIn,
    request: Request,
    answering: JudgmentAnswerer,
    idempotency_key: IdempotencyKeyHeader = None,
    wants_next: WantsNext = False,
) -> JSONResponse:
    def answer_to(stored: service.StoredJudgment) -> dict[str, Any]:
        return _judgment_out(assignment_id, stored)

    keyed = None
    if idempotency_key:
        keyed = service.KeyedAnswer(answering.rater.id, idempotency_key, answer_to)

    async def work(session: AsyncSession, rater: User) -> Answered:
        stored = await service.submit(
            session,
            assignment_id,
            rater,
            body,
            reserve_next=wants_next,
            locks=answering.locks,
            answer=keyed,
        )
        return Answered(201, answer_to(stored), stored.project, stored.next_assignment_id)

    return await _answer(
        request, answering, assignment_id, body, idempotency_key, wants_next, work, keyed
    )


def _judgment_out(assignment_id: int, stored: service.StoredJudgment) -> dict[str, Any]:
    """A `JudgmentOut`'s JSON, built straight from the values (core.json_body)."""
    return {
        "judgment_id": stored.judgment_id,
        "assignment_id": assignment_id,
        "pair_id": stored.pair_id,
        "choice": stored.choice.value,
        "submitted_at": json_datetime(stored.submitted_at),
        "gold_feedback": stored.gold_feedback,
    }


def _assignment_done(assignment: Assignment) -> dict[str, Any]:
    """An `AssignmentDone`'s JSON, built straight from the values (core.json_body)."""
    return {"assignment_id": assignment.id, "status": AssignmentStatus(assignment.status).value}


def _set_aside(set_aside: Callable[[AsyncSession, User], Awaitable[service.SetAside]]) -> Work:
    """Skip and flag answer alike: the assignment's new status."""

    async def work(session: AsyncSession, rater: User) -> Answered:
        done = await set_aside(session, rater)
        return Answered(200, _assignment_done(done.assignment), done.project)

    return work


@router.post(
    "/assignments/{assignment_id}/skip",
    response_model=AssignmentDone | AssignmentDoneAndNext,
    openapi_extra=API_TOKEN_SECURITY,
)
async def skip_pair(
    assignment_id: int,
    body: SkipIn,
    request: Request,
    answering: SkipAnswerer,
    idempotency_key: IdempotencyKeyHeader = None,
    wants_next: WantsNext = False,
) -> JSONResponse:
    def skip(session: AsyncSession, rater: User) -> Awaitable[service.SetAside]:
        return service.skip(session, assignment_id, rater, body, locks=answering.locks)

    work = _set_aside(skip)
    return await _answer(request, answering, assignment_id, body, idempotency_key, wants_next, work)


@router.post(
    "/assignments/{assignment_id}/flag",
    response_model=AssignmentDone | AssignmentDoneAndNext,
    openapi_extra=API_TOKEN_SECURITY,
)
async def flag_pair(
    assignment_id: int,
    body: FlagIn,
    request: Request,
    answering: FlagAnswerer,
    idempotency_key: IdempotencyKeyHeader = None,
    wants_next: WantsNext = False,
) -> JSONResponse:
    def flag(session: AsyncSession, rater: User) -> Awaitable[service.SetAside]:
        return service.flag(session, assignment_id, rater, body, locks=answering.locks)

    work = _set_aside(flag)
    return await _answer(request, answering, assignment_id, body, idempotency_key, wants_next, work)


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
        return 200, _assignment_done(assignment)

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
