"""Pages of study participants: the entry link and the completion page."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pickwise.auth import service as auth_service
from pickwise.auth.deps import OptionalPrincipal, PrincipalDep
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Conflict
from pickwise.pools import service
from pickwise.pools.quota import quota_state
from pickwise.projects.deps import RaterProject
from pickwise.web.pages import set_session_cookie
from pickwise.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/join/{token}", name="pool_join")
async def join(
    request: Request,
    token: str,
    session: SessionDep,
    principal: OptionalPrincipal,
    prolific_pid: Annotated[str | None, Query(alias="PROLIFIC_PID")] = None,
    participant_id: str | None = None,
) -> Response:
    """Log a participant in (making their rater account on the first visit) and send them to
    rating, or to the completion page once their quota is done."""
    joined = await service.join(session, token, prolific_pid or participant_id)
    if principal is not None and principal.user.id != joined.user.id:
        raise Conflict(
            f"You are logged in as {principal.user.display_name}. Log out first, or open "
            "the study link in a private window."
        )
    project_id = joined.pool.project_id
    state = await quota_state(session, project_id, joined.user.id)
    if state is not None and state.reached:
        target = request.url_for("participant_done", project_id=project_id).path
    else:
        target = f"/rate/{project_id}"
    response = RedirectResponse(target, status_code=303)
    if principal is None:
        session_token, _ = await auth_service.start_session(session, joined.user)
        set_session_cookie(response, session_token)
    return response


@router.get("/participants/{project_id}/done", response_class=HTMLResponse, name="participant_done")
async def done(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    completion = await service.completion(session, project, principal.user)
    return render(
        request,
        "pools/done.html",
        {"principal": principal, "project": project, "completion": completion},
    )
