"""Admin page: one pair as its raters saw it, every vote on it, and its adjudication.

The conversation and answers go through the rating page's markdown renderer, so they read
exactly as they did for the raters. Previous / next walk the listing the page was opened
from (its filter, sort and watermark travel in the URL).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from pickwise.auth.deps import AdminUser, PrincipalDep, get_admin_user
from pickwise.core.deps import SessionDep
from pickwise.projects.deps import AdminProject
from pickwise.review import pair_service, service
from pickwise.review.repository import watermark
from pickwise.review.schemas import AdjudicationIn, PairDetailRead, VoteRead
from pickwise.vocabulary import CanonicalSide, CurationAction, Decision
from pickwise.web.markdown import render_markdown
from pickwise.web.pair_filters import FILTER_LABELS, Listing, action_notice, path_for, read_listing
from pickwise.web.rating import ROLE_LABELS
from pickwise.web.templating import render

router = APIRouter(
    prefix="/admin/projects/{project_id}/pairs/{pair_id}",
    include_in_schema=False,
    dependencies=[Depends(get_admin_user)],
)

DECISION_NOTICES = {
    "decided": "Decision recorded: exports use it instead of the votes.",
    "unchanged": "That is already the pair's decision; nothing changed.",
    "withdrawn": "Decision withdrawn: the votes decide again.",
    "none": "The pair had no decision to withdraw.",
}


def _answers(detail: PairDetailRead, seen_by: VoteRead | None) -> list[dict[str, Any]]:
    """The two answers in the order to show: canonical A then B, or as one rater saw them
    (then each also says whether it was on the left or the right)."""
    responses = {CanonicalSide.A: detail.response_a, CanonicalSide.B: detail.response_b}
    answers = {
        side: {
            "side": side.value,
            "response": response,
            "html": render_markdown(response.content),
            "shown_left": sum(1 for vote in detail.votes_list if vote.shown_left == side),
        }
        for side, response in responses.items()
    }
    if seen_by is None:
        return [answers[CanonicalSide.A], answers[CanonicalSide.B]]
    left = CanonicalSide(seen_by.shown_left)
    right = CanonicalSide.B if left is CanonicalSide.A else CanonicalSide.A
    return [{**answers[left], "position": "left"}, {**answers[right], "position": "right"}]


@router.get("", response_class=HTMLResponse, name="pair_page")
async def pair_page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    pair_id: int,
) -> HTMLResponse:
    query = request.query_params
    listing = read_listing(query)
    reveal = query.get("reveal") == "1"
    detail = await pair_service.pair_detail(session, project, pair_id, reveal=reveal)
    seen_by = next(
        (vote for vote in detail.votes_list if str(vote.judgment_id) == query.get("seen_by")),
        None,
    )
    as_of = listing.as_of if listing.as_of is not None else await watermark(session, project.id)
    previous_id = next_id = None
    if not listing.problems:
        here = await service.summary_as_of(session, project, pair_id, as_of)
        if here is not None:
            previous_id, next_id = await service.neighbours(
                session, project, listing.pairs, listing.sort, here, as_of
            )
    kept = Listing(listing.pairs, listing.sort, as_of, {})
    context = {
        "principal": principal,
        "project": project,
        "detail": detail,
        "listing": kept,
        "labels": FILTER_LABELS,
        "reveal": reveal,
        "seen_by": seen_by,
        "system_html": render_markdown(detail.system),
        "turns": [
            {
                "role": turn.role,
                "label": ROLE_LABELS.get(turn.role, turn.role),
                "html": render_markdown(turn.content),
            }
            for turn in detail.turns
        ],
        "answers": _answers(detail, seen_by),
        "previous_id": previous_id,
        "next_id": next_id,
        "decisions": list(Decision),
        "actions": CurationAction,
        "notice": action_notice(query) or DECISION_NOTICES.get(query.get("decision", "")),
        "csrf_token": principal.web_session.csrf_token if principal.web_session else "",
        "listing_path": path_for(request, "pairs_explorer", project_id=project.id),
    }
    return render(request, "admin/review/pair.html", context)


def _back(request: Request, project_id: int, pair_id: int, listing: Listing, notice: str) -> str:
    path = path_for(request, "pair_page", project_id=project_id, pair_id=pair_id)
    query = listing.query(as_of=listing.as_of)
    return f"{path}{query}{'&' if query else '?'}decision={notice}"


@router.post("/adjudication", name="pair_adjudicate")
async def adjudicate(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    project: AdminProject,
    pair_id: int,
    decision: Annotated[Decision, Form()],
    note: Annotated[str, Form(max_length=5_000)] = "",
) -> RedirectResponse:
    listing = read_listing(await request.form())
    body = AdjudicationIn(decision=decision, note=note.replace("\r\n", "\n"))
    _, changed = await pair_service.adjudicate(session, project, pair_id, admin, body)
    target = _back(request, project.id, pair_id, listing, "decided" if changed else "unchanged")
    return RedirectResponse(target, status_code=303)


@router.post("/adjudication/withdraw", name="pair_withdraw")
async def withdraw(
    request: Request, admin: AdminUser, session: SessionDep, project: AdminProject, pair_id: int
) -> RedirectResponse:
    listing = read_listing(await request.form())
    withdrawn = await pair_service.withdraw(session, project, pair_id, admin)
    target = _back(request, project.id, pair_id, listing, "withdrawn" if withdrawn else "none")
    return RedirectResponse(target, status_code=303)
