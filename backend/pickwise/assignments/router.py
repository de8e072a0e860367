"""The rater's next pair over the API (their answers to it: judgments.router)."""

from fastapi import APIRouter, Request

from pickwise.assignments import repository, service
from pickwise.assignments.schemas import Message, NextPair, NoWorkLeft, ShownResponse
from pickwise.auth.deps import CurrentRater, PrincipalDep, may_act_on_get
from pickwise.core.db import SessionDep
from pickwise.core.errors import Forbidden
from pickwise.projects.deps import RaterProject
from pickwise.vocabulary import ShownSide

router = APIRouter(prefix="/api/v1", tags=["rating"])

CROSS_SITE_MESSAGE = (
    "A pair is leased only for a request from this site: a session cookie sent from another "
    "site's page cannot lease one. Use an API token, or open the rating page."
)


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
    content = lease.content
    left, right = repository.shown_sides(content, lease.left_side)
    return NextPair(
        assignment_id=lease.assignment_id,
        pair_id=lease.pair_id,
        lease_expires_at=lease.expires_at,
        system=content.prompt.system,
        turns=[Message(**turn) for turn in content.prompt.turns],
        left=ShownResponse(side=ShownSide.LEFT, content=left.content),
        right=ShownResponse(side=ShownSide.RIGHT, content=right.content),
    )
