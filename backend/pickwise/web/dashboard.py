"""Admin page: a project's progress, raters, agreement, leaderboard and what the preferences
teach, with charts drawn on the server (web.svg), so it reads fine without JavaScript."""

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from pickwise.analytics import recipes, snapshots
from pickwise.analytics.flags import FlagCode
from pickwise.analytics.router import AnalyticsConnection
from pickwise.analytics.schemas import ReportRead
from pickwise.auth.deps import PrincipalDep
from pickwise.core.deps import SessionDep
from pickwise.projects import service as projects_service
from pickwise.projects.deps import AdminProject
from pickwise.web import svg
from pickwise.web.templating import render

router = APIRouter(prefix="/admin/projects/{project_id}/dashboard", include_in_schema=False)

FEATURE_LABELS = {
    "length": "Longer (per doubling)",
    "lists": "Has a list",
    "headings": "Has headings",
    "code_blocks": "Has a code block",
    "hedging": "Hedges",
    "refusal": "Refuses",
    "apology": "Apologises",
    "agreement": "Agrees with the user",
    "questions_back": "Asks a question back",
    "left_position": "Shown on the left",
}
STYLE_LABELS = {
    "words": "Length (words)",
    "headings": "Headings",
    "list_items": "List items",
    "bold": "Bold text",
}


def percent(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}%}"


def number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def seconds(value: float) -> str:
    """A duration limit as the rules state it: 5 s, 7.5 s (never rounded)."""
    return f"{value:g} s"


def p_value(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def win_rate_class(value: float | None) -> str:
    """A CSS class per tenth of the win rate: the CSP allows no inline colours."""
    return "wr-none" if value is None else f"wr-{round(value * 10)}"


def charts(report: ReportRead) -> dict[str, Markup]:
    progress = report.progress
    drawn = {
        "progress": svg.stacked_bar(
            [
                svg.Segment("done", progress.pairs_done, "seg-done"),
                svg.Segment("in progress", progress.pairs_in_progress, "seg-progress"),
                svg.Segment("open", progress.pairs_open, "seg-open"),
                svg.Segment("flagged", progress.pairs_flagged, "seg-flagged"),
            ],
            title="Pairs by state",
        ),
        "timeline": svg.column_chart(
            [
                (day.day.isoformat(), day.judgments + day.gold_judgments)
                for day in report.timeline.days
            ],
            title="Judgments per day (UTC), gold included",
            unit="judgments",
        ),
    }
    drawn["votes_per_pair"] = svg.column_chart(
        [(str(row.votes), row.pairs) for row in progress.overlap.votes_per_pair],
        title="Settled pairs by their votes",
        unit="pairs",
    )
    board = report.leaderboard
    if board.ready:
        drawn["leaderboard"] = svg.interval_chart(
            [svg.Estimate(row.model, row.score, row.lower, row.upper) for row in board.models],
            title="Model scores with 95% bootstrap intervals",
            reference=1000.0,
            reference_label="1000: the average model",
        )
        drawn["style"] = svg.interval_chart(
            [
                svg.Estimate(
                    STYLE_LABELS.get(c.feature, c.feature), c.coefficient, c.lower, c.upper
                )
                for c in board.style_coefficients
            ],
            title="Style effects on the vote (log-odds per root-mean-square difference)",
            reference=0.0,
            reference_label="0: no effect",
            value_format="{:+.2f}",
        )
    if report.preferences.ready:
        drawn["preferences"] = svg.interval_chart(
            [
                svg.Estimate(FEATURE_LABELS.get(w.name, w.name), w.weight, w.lower, w.upper)
                for w in report.preferences.weights
            ],
            title="What the preferences teach: weights with 95% intervals (log-odds)",
            reference=0.0,
            reference_label="0: no effect",
            value_format="{:+.2f}",
        )
    return drawn


def _odds(weight: float | None) -> str:
    """A weight as a change in odds, which reads more easily than log-odds."""
    if weight is None:
        return "–"
    return f"× {math.exp(weight):.2f}"


# The page's win-rate table covers the best-ranked models only: 200 models would make 40,000
# cells nobody reads. The API's leaderboard has the whole matrix.
WIN_RATE_MODELS = 25


@router.get("", response_class=HTMLResponse, name="project_dashboard")
async def dashboard(
    request: Request,
    principal: PrincipalDep,
    project: AdminProject,
    connection: AnalyticsConnection,
    session: SessionDep,
) -> HTMLResponse:
    served = await snapshots.serve(
        connection, session, project, recipes.REPORT, first_in_background=True
    )
    if served is None:
        pending = {"principal": principal, "project": project}
        return render(request, "admin/dashboard_pending.html", pending, status_code=202)
    report = ReportRead.model_validate_json(served.json)
    context: dict[str, Any] = {
        "principal": principal,
        "project": project,
        "report": report,
        "snapshot": served.info,
        "charts": charts(report),
        "csrf_token": principal.web_session.csrf_token if principal.web_session else "",
        "feature_labels": FEATURE_LABELS,
        "style_labels": STYLE_LABELS,
        "flag_codes": FlagCode,
        "seconds": seconds,
        "win_rate_models": WIN_RATE_MODELS,
        "percent": percent,
        "number": number,
        "p_value": p_value,
        "odds": _odds,
        "win_rate_class": win_rate_class,
    }
    return render(request, "admin/dashboard.html", context)


@router.post("/refresh", name="dashboard_refresh")
async def refresh(
    request: Request,
    project: AdminProject,
    connection: AnalyticsConnection,
    session: SessionDep,
) -> RedirectResponse:
    """Recompute now (in the background for a big project); back to the dashboard."""
    await snapshots.refresh(connection, session, project, recipes.REPORT)
    page = request.app.url_path_for("project_dashboard", project_id=str(project.id))
    return RedirectResponse(page, status_code=303)


@router.post("/raters/{user_id}/exclusion", name="dashboard_set_excluded")
async def set_excluded(
    request: Request,
    user_id: int,
    project: AdminProject,
    session: SessionDep,
    excluded: Annotated[bool, Form()],
) -> RedirectResponse:
    """Exclude a rater's votes from the statistics and exports, or include them again."""
    await projects_service.set_excluded(session, project, user_id, excluded)
    page = request.app.url_path_for("project_dashboard", project_id=str(project.id))
    return RedirectResponse(f"{page}#raters", status_code=303)
