"""The rater's next pair over the API (their answers to it: judgments.router)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pickwise.assignments import service
from pickwise.assignments.schemas import NextPair, NoWorkLeft
from pickwise.auth.deps import CurrentRater, PrincipalDep, may_act_on_get
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Forbidden
from pickwise.core.responses import JsonAnswer
from pickwise.projects.deps import RaterProject

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
) -> JSONResponse:
    """With an API token, as is; with a session cookie, only for a request from this site
    (a cookie rides along on a link from another site, and a lease must not)."""
    # The body is built as the model's JSON (core.json_body): returned as a response, it is
    # sent as is, not validated against `response_model` and dumped again.
    may_lease = may_act_on_get(request, principal)
    lease = await service.next_lease(session, project, rater, new=may_lease)
    if lease is None:
        if not may_lease:
            raise Forbidden(CROSS_SITE_MESSAGE)
        return JsonAnswer(service.no_work_left())
    return JsonAnswer(service.shown(lease))
