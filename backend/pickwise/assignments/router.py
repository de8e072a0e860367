from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository, service
from pickwise.auth.deps import CurrentRater, PrincipalDep, may_act_on_get
from pickwise.core.db import SessionDep
from pickwise.core.errors import Forbidden
from pickwise.judgments import idempotency
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import (
    AssignmentDone,
    FlagIn,
    JudgmentIn,
    JudgmentOut,
    Message,
    NextPair,
    NoWorkLeft,
    ShownResponse,
    SkipIn,
)
from pickwise.models import Assignment, User
from pickwise.projects.deps import RaterProject

router = APIRouter(prefix="/api/v1", tags=["rating"])

CROSS_SITE_MESSAGE = (
    "A pair is leased only for a request from this site: a session cookie sent from another "
    "site's page cannot lease one. Use an API token, or open the rating page."
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string; a retry with the same key returns the first answer.",
    ),
]


@router.get(
    "/projects/{project_id}/next",
    response_model=NextPair | NoWorkLeft,
    summary="Lease the next pair that needs this rater",
)
async def next_pair(
    request: Request,
    principal: PrincipalDep,
    project: RaterProject,
    rater: CurrentRater,
    session: SessionDep,
) -> NextPair | NoWorkLeft:
    """With an API token, as is; with a session cookie, only for a request from this site
    (a cookie rides along on a link from another site, and a lease must not)."""
    may_lease = may_act_on_get(request, principal)
    lease = await service.next_lease(session, project, rater, new=may_lease)
    if lease is None:
        if not may_lease:
            raise Forbidden(CROSS_SITE_MESSAGE)
        return NoWorkLeft()
    assignment, content = lease.assignment, lease.content
    left, right = repository.shown_sides(content, assignment)
    return NextPair(
        assignment_id=assignment.id,
        pair_id=assignment.pair_id,
        lease_expires_at=assignment.lease_expires_at,
        system=content.prompt.system,
        turns=[Message(**turn) for turn in content.prompt.turns],
        left=ShownResponse(side="left", content=left.content),
        right=ShownResponse(side="right", content=right.content),
    )


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
        stored = await judgments.submit(session, assignment_id, rater, body)
        out = JudgmentOut(
            judgment_id=stored.judgment.id,
            assignment_id=assignment_id,
            pair_id=stored.judgment.pair_id,
            choice=stored.judgment.choice,
            submitted_at=stored.judgment.submitted_at,
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
        lambda: judgments.skip(session, assignment_id, rater, body),
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
        lambda: judgments.flag(session, assignment_id, rater, body),
    )
