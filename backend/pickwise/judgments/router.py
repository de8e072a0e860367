"""A rater's answer to a leased pair over the API: a choice, a skip or a flag, each replayable
with an Idempotency-Key."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import CurrentRater
from pickwise.core.db import SessionDep
from pickwise.judgments import idempotency, service
from pickwise.judgments.schemas import AssignmentDone, FlagIn, JudgmentIn, JudgmentOut, SkipIn
from pickwise.models import Assignment, User

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
        out = JudgmentOut(
            judgment_id=stored.judgment_id,
            assignment_id=assignment_id,
            pair_id=stored.pair_id,
            choice=stored.choice,
            submitted_at=stored.submitted_at,
            gold_feedback=stored.gold_feedback,
        )
        return 201, out.model_dump(mode="json")

    fingerprint = idempotency.request_fingerprint(request.url.path, body)
    return _json(*await idempotency.run_once(session, rater, idempotency_key, fingerprint, work))


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
