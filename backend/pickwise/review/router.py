"""Review and curation over the API, for admins: the pairs explorer, one pair's votes, its
adjudication, and curation actions. docs/review.md describes each."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from pickwise.auth.deps import AdminUser
from pickwise.core.deps import SessionDep
from pickwise.projects.deps import AdminProject
from pickwise.review import actions_service, pair_service, service
from pickwise.review.schemas import (
    ActionIn,
    ActionResult,
    AdjudicationIn,
    AdjudicationRead,
    PairDetailRead,
    PairFilter,
    PairPage,
)
from pickwise.vocabulary import PairSort

router = APIRouter(prefix="/api/v1/projects/{project_id}/pairs", tags=["review"])


@router.get("", response_model=PairPage, summary="Pairs, filtered and sorted, a page at a time")
async def list_pairs(
    project: AdminProject,
    session: SessionDep,
    pairs: Annotated[PairFilter, Query()],
    sort: PairSort = PairSort.NEWEST,
    after: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
    before: Annotated[str | None, Query(description="previous_cursor of the page after")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = service.PAGE_SIZE,
) -> PairPage:
    return await service.list_pairs(
        session, project, pairs, sort, after=after, before=before, limit=limit
    )


@router.post("/actions", response_model=ActionResult, summary="Curate a pair or a selection")
async def act(project: AdminProject, session: SessionDep, body: ActionIn) -> ActionResult:
    return await actions_service.run_action(session, project, body)


@router.get("/{pair_id}", response_model=PairDetailRead, summary="One pair and every vote on it")
async def pair_detail(
    project: AdminProject,
    session: SessionDep,
    pair_id: int,
    reveal: Annotated[bool, Query(description="Show the raters' names and emails.")] = False,
) -> PairDetailRead:
    return await pair_service.pair_detail(session, project, pair_id, reveal=reveal)


@router.put(
    "/{pair_id}/adjudication",
    response_model=AdjudicationRead,
    summary="Record the final decision on a pair (overrides its votes in exports)",
    responses={
        200: {"description": "The pair already had this decision and note: nothing changed."},
        201: {"model": AdjudicationRead, "description": "The decision was recorded."},
    },
)
async def adjudicate(
    project: AdminProject,
    admin: AdminUser,
    session: SessionDep,
    pair_id: int,
    body: AdjudicationIn,
    response: Response,
) -> AdjudicationRead:
    decision, changed = await pair_service.adjudicate(session, project, pair_id, admin, body)
    response.status_code = status.HTTP_201_CREATED if changed else status.HTTP_200_OK
    return decision


@router.delete(
    "/{pair_id}/adjudication",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw the pair's decision: its votes decide again",
)
async def withdraw(
    project: AdminProject, admin: AdminUser, session: SessionDep, pair_id: int
) -> Response:
    await pair_service.withdraw(session, project, pair_id, admin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
