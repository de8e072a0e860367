"""Admin pages: the pairs explorer, curation of a whole selection, and one rater's audit.

Plain GET forms: the filter lives in the URL, so a link shares the view; scripts only add
keyboard keys. Curation actions are POSTs that redirect (303) back with a fixed notice.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics import recipes, snapshots
from pickwise.analytics.router import AnalyticsConnection
from pickwise.analytics.schemas import RaterRow, RatersRead
from pickwise.auth.deps import PrincipalDep, get_admin_user
from pickwise.batches import repository as batches_repository
from pickwise.core.deps import SessionDep
from pickwise.core.errors import InvalidInput, NotFound
from pickwise.models import Project, User
from pickwise.projects import repository as projects_repository
from pickwise.projects import service as projects_service
from pickwise.projects.deps import AdminProject
from pickwise.review import actions_service, service
from pickwise.review import repository as review_repository
from pickwise.review.schemas import ActionIn, PairPage
from pickwise.vocabulary import PairSort, PairState, shown_choice_of
from pickwise.web.dashboard import number, p_value, percent, seconds
from pickwise.web.forms import field_errors
from pickwise.web.pair_filters import (
    FILTER_LABELS,
    Listing,
    action_notice,
    done_params,
    path_for,
    read_listing,
)
from pickwise.web.templating import render

router = APIRouter(
    prefix="/admin/projects/{project_id}",
    include_in_schema=False,
    dependencies=[Depends(get_admin_user)],
)


def _listing(request: Request) -> Listing:
    return read_listing(request.query_params)


async def _filter_choices(session: AsyncSession, project: Project) -> dict[str, Any]:
    """What the filter form offers: batches, models, raters."""
    # Former members stay in the list: their votes stay in the project (and can be excluded).
    raters = await projects_repository.raters(session, project.id)
    return {
        "batches": await batches_repository.list_batches(session, project.id),
        "models": await review_repository.models(session, project.id),
        "raters": [user for user, _ in raters],
        "former_raters": {user.id for user, member in raters if not member},
        "states": list(PairState),
        "sorts": list(PairSort),
    }


async def _page(
    session: AsyncSession, project: Project, listing: Listing, request: Request
) -> PairPage | None:
    if listing.problems:
        return None
    query = request.query_params
    return await service.list_pairs(
        session,
        project,
        listing.pairs,
        listing.sort,
        after=query.get("after") or None,
        before=query.get("before") or None,
    )


def _common(principal: PrincipalDep, project: Project, listing: Listing) -> dict[str, Any]:
    return {
        "principal": principal,
        "project": project,
        "listing": listing,
        "pairs": listing.pairs,
        "labels": FILTER_LABELS,
        "csrf_token": principal.web_session.csrf_token if principal.web_session else "",
        "percent": percent,
        "number": number,
    }


@router.get("/pairs", response_class=HTMLResponse, name="pairs_explorer")
async def explorer(
    request: Request, principal: PrincipalDep, session: SessionDep, project: AdminProject
) -> HTMLResponse:
    listing = _listing(request)
    return await _render_explorer(request, principal, session, project, listing)


async def _render_explorer(
    request: Request,
    principal: PrincipalDep,
    session: AsyncSession,
    project: Project,
    listing: Listing,
    *,
    action_problems: dict[str, str] | None = None,
) -> HTMLResponse:
    page = await _page(session, project, listing, request)
    context = {
        **_common(principal, project, listing),
        **await _filter_choices(session, project),
        "page": page,
        "notice": action_notice(request.query_params),
        "action_problems": action_problems or {},
    }
    status = 422 if action_problems or page is None else 200
    return render(request, "admin/review/explorer.html", context, status_code=status)


def _action_from_form(form: dict[str, Any], listing: Listing) -> ActionIn:
    pair_id = form.get("pair_id")
    data: dict[str, Any] = {
        "action": form.get("action"),
        "votes": form.get("votes") or None,
        "answer": form.get("answer") or None,
        "resolution": form.get("resolution") or None,
    }
    if pair_id:
        data["pair_ids"] = [pair_id]
    else:
        data["filter"] = listing.pairs
    return ActionIn.model_validate(data)


@router.post("/pairs/actions", response_class=HTMLResponse, name="pairs_action")
async def act(
    request: Request, principal: PrincipalDep, session: SessionDep, project: AdminProject
) -> Response:
    """One action on the filter's pairs (or on one pair, from its page)."""
    form = await request.form()
    listing = read_listing(form)
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    single = bool(fields.get("pair_id"))
    problems: dict[str, str] = {}
    try:
        action = _action_from_form(fields, listing)
    except ValidationError as exc:
        problems = field_errors(exc)
    if not single and fields.get("confirm") != "yes":
        problems.setdefault("confirm", "tick the box to apply this to every pair of the filter")
    if problems and single:
        raise InvalidInput("; ".join(f"{name}: {text}" for name, text in problems.items()))
    if problems:
        return await _render_explorer(
            request, principal, session, project, listing, action_problems=problems
        )
    if listing.problems:
        return await _render_explorer(request, principal, session, project, listing)
    result = await actions_service.run_action(session, project, action)
    done = done_params(result.action, result.changed, result.selected)
    if single:
        target = path_for(request, "pair_page", project_id=project.id, pair_id=fields["pair_id"])
        extra = {"as_of": listing.as_of}
    else:
        target = path_for(request, "pairs_explorer", project_id=project.id)
        extra = {}
    query = listing.query(**extra)
    separator = "&" if query else "?"
    done_query = "&".join(f"{name}={value}" for name, value in done)
    return RedirectResponse(f"{target}{query}{separator}{done_query}", status_code=303)


# --- one rater ----------------------------------------------------------------------------

RATER_NOTICES = {
    "excluded": "Rater excluded: their votes are left out of statistics and exports.",
    "included": "Rater included again in statistics and exports.",
}


async def _rater_numbers(
    connection: AnalyticsConnection, session: AsyncSession, project: Project, user_id: int
) -> tuple[RaterRow | None, RatersRead | None, bool]:
    """The rater's row of the dashboard's rater table, the table's thresholds, and whether
    the numbers are still being computed (a big project's first read)."""
    served = await snapshots.serve(
        connection, session, project, recipes.REPORT, section="raters", first_in_background=True
    )
    if served is None:
        return None, None, True
    raters = RatersRead.model_validate_json(served.json)
    row = next((rater for rater in raters.raters if rater.user_id == user_id), None)
    return row, raters, False


@router.get("/raters/{user_id}", response_class=HTMLResponse, name="rater_audit")
async def rater_audit(
    request: Request,
    principal: PrincipalDep,
    project: AdminProject,
    connection: AnalyticsConnection,
    session: SessionDep,
    user_id: int,
) -> HTMLResponse:
    await service.require_rater(session, project, user_id)
    rater = await session.get(User, user_id)
    if rater is None:
        raise NotFound(f"user {user_id}: no such user")
    read = read_listing(request.query_params)
    listing = Listing(
        read.pairs.model_copy(update={"rater": user_id}), read.sort, None, read.problems
    )
    page = await _page(session, project, listing, request)
    choices = {}
    if page is not None:
        their = await review_repository.rater_choices(
            session, user_id, [row.pair_id for row in page.items]
        )
        choices = {
            pair_id: (choice, shown_choice_of(choice, left))
            for pair_id, (choice, left) in their.items()
        }
    numbers, raters, computing = await _rater_numbers(connection, session, project, user_id)
    context = {
        **_common(principal, project, listing),
        **await _filter_choices(session, project),
        "rater": rater,
        "member": await projects_repository.member(session, project.id, user_id) is not None,
        "excluded": await projects_repository.is_excluded(session, project.id, user_id),
        "numbers": numbers,
        "thresholds": raters.thresholds if raters else None,
        "fast_seconds": raters.fast_threshold_seconds if raters else None,
        "computing": computing,
        "page": page,
        "their_choices": choices,
        "notice": RATER_NOTICES.get(request.query_params.get("done", "")),
        "action_problems": {},
        "p_value": p_value,
        "seconds": seconds,
    }
    return render(
        request,
        "admin/review/rater.html",
        context,
        status_code=200 if page is not None else 422,
    )


@router.post("/raters/{user_id}/exclusion", name="rater_audit_exclusion")
async def rater_exclusion(
    request: Request,
    session: SessionDep,
    project: AdminProject,
    user_id: int,
    excluded: Annotated[bool, Form()],
) -> RedirectResponse:
    """Exclude the rater's votes from statistics and exports, or include them again."""
    await projects_service.set_excluded(session, project, user_id, excluded)
    target = path_for(request, "rater_audit", project_id=project.id, user_id=user_id)
    return RedirectResponse(
        f"{target}?done={'excluded' if excluded else 'included'}", status_code=303
    )
