"""The dashboard page: charts drawn on the server, no script, escaped text, a working
exclude/include button, a clear empty state, and admins only."""

import re
from html import escape

import numpy as np
from fastapi.routing import APIRoute
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.bradley_terry import bradley_terry_leaderboard
from pickwise.analytics.router import router as analytics_router
from pickwise.auth import service as auth_service
from pickwise.auth.deps import SESSION_COOKIE
from pickwise.models import User
from tests.analytics.choice_codes import encode_choices
from tests.analytics_service.builders import Answer, Vote, add_votes, make_model_pairs
from tests.analytics_service.helpers import crowd_project, votes_of
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


async def browser_login(client: AsyncClient, session: AsyncSession, user: User) -> None:
    token, _ = await auth_service.start_session(session, user)
    client.cookies.set(SESSION_COOKIE, token)


def dashboard_url(project_id: int) -> str:
    return f"/admin/projects/{project_id}/dashboard"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no csrf token on the page"
    return match.group(1)


def assert_no_script_or_inline_style(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"\sstyle=", page), "inline style attributes break the CSP"
    assert not re.search(r"\son[a-z]+=", page), "inline event handlers break the CSP"


async def test_dashboard_renders_charts_without_script(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    response = await client.get(dashboard_url(setup.project_id))
    assert response.status_code == 200
    page = response.text
    assert_no_script_or_inline_style(page)
    # progress, votes per pair, timeline, leaderboard, style and preferences charts
    assert page.count("<svg") == 6
    assert "/static/css/dashboard.css" in page
    for model in ("alpha", "beta", "gamma", "delta"):
        assert f"<title>{model}: " in page  # a whisker tooltip per model
    assert "Position bias" in page and "Too fast" in page
    assert setup.crowd.left_clicker.display_name in page
    # Each rater's name opens their audit (every vote, with these numbers beside them).
    assert f'href="/admin/projects/{setup.project_id}/raters/{setup.left_clicker_id}"' in page
    # Each flag shows its evidence as text, not only in a tooltip.
    raters = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    clicker = next(r for r in raters["raters"] if r["user_id"] == setup.left_clicker_id)
    for flag in clicker["flags"]:
        assert f'<span class="flag">{flag["label"]}</span> {escape(flag["detail"])}' in page
    # The table's "fast" count and the rule that explains it use the same limit.
    assert "under 5 s)</span>" in page
    assert "median time per judgment under 5 s;" in page
    assert "under 4 s" not in page and "5.0 s" not in page
    assert setup.crowd.left_clicker.email not in page
    assert "What the preferences teach" in page and "Held-out accuracy" in page
    assert "Not enough data yet" not in page


async def test_exclude_button_takes_the_rater_out_of_the_leaderboard(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    clicker_id, clicker_name = setup.left_clicker_id, setup.crowd.left_clicker.display_name
    good_ids = set(setup.good_rater_ids)
    project_id = setup.project_id
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    page = (await client.get(dashboard_url(setup.project_id))).text
    action = f"{dashboard_url(project_id)}/raters/{clicker_id}/exclusion"
    assert f'action="{action}"' in page

    refused = await client.post(action, data={"excluded": "true", "csrf_token": "stale"})
    assert refused.status_code == 403
    response = await client.post(action, data={"excluded": "true", "csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert response.headers["location"] == f"{dashboard_url(project_id)}#raters"

    board = (await client.get(setup.url("leaderboard"), headers=setup.admin_headers)).json()
    kept = [
        v for v in await votes_of(session, setup.project_id) if not v.is_gold and not v.excluded
    ]
    assert {v.rater_id for v in kept} == good_ids
    assert board["votes"] == len(kept) == 180 - 36
    assert board["excluded_raters_left_out"] == 1
    models = sorted({v.model_a for v in kept} | {v.model_b for v in kept})
    index = {model: i for i, model in enumerate(models)}
    expected = bradley_terry_leaderboard(
        [index[v.model_a] for v in kept],
        [index[v.model_b] for v in kept],
        encode_choices(v.choice for v in kept),
        len(models),
    )
    for row in board["models"]:
        assert np.isclose(row["score"], expected.scores[index[row["model"]]], rtol=1e-9)
    raters = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    row = next(r for r in raters["raters"] if r["user_id"] == clicker_id)
    assert row["excluded"] is True and row["flags"]  # still shown, still flagged
    agreement = (await client.get(setup.url("agreement"), headers=setup.admin_headers)).json()
    assert agreement["project"]["judgments"] == 144
    assert agreement["excluded_raters_left_out"] == 1

    page = (await client.get(dashboard_url(project_id))).text
    assert f'aria-label="Include {clicker_name}"' in page
    assert "Votes of 1 excluded rater left out." in page
    back = await client.post(action, data={"excluded": "false", "csrf_token": csrf_of(page)})
    assert back.status_code == 303
    board = (await client.get(setup.url("leaderboard"), headers=setup.admin_headers)).json()
    assert board["votes"] == 180 and board["excluded_raters_left_out"] == 0


async def test_empty_project_says_not_enough_data(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    base = f"/api/v1/projects/{project.id}/analytics"
    for section in ("progress", "timeline", "raters", "agreement", "leaderboard", "preferences"):
        response = await client.get(f"{base}/{section}", headers=headers)
        assert response.status_code == 200, (section, response.text)
        body = response.json()
        if "ready" in body:
            assert body["ready"] is False and body["message"].startswith("Not enough data yet")
    assert (await client.get(f"{base}/progress", headers=headers)).json()["share_done"] is None
    await browser_login(client, session, admin)
    page = await client.get(dashboard_url(project.id))
    assert page.status_code == 200
    assert page.text.count("Not enough data yet") >= 5
    assert_no_script_or_inline_style(page.text)


async def test_one_model_and_no_second_rater(client: AsyncClient, session: AsyncSession) -> None:
    """Pairs of the same model, one rater: every section explains itself, nothing fails."""
    project = await make_project(session)
    pairs = await make_pairs(session, project, 4, models=("solo", "solo"))
    rater = await make_user(session)
    await add_member(session, project, rater)
    await add_votes(session, [Vote(pair, rater, "a") for pair in pairs])
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    base = f"/api/v1/projects/{project.id}/analytics"
    board = (await client.get(f"{base}/leaderboard", headers=headers)).json()
    assert board["ready"] is False
    assert board["notes"] == [
        "4 votes compare two answers of the same model; they are not counted."
    ]
    agreement = (await client.get(f"{base}/agreement", headers=headers)).json()
    assert agreement["ready"] is False and "two raters" in agreement["message"]
    raters = (await client.get(f"{base}/raters", headers=headers)).json()
    assert raters["raters"][0]["judgments"] == 4
    assert raters["raters"][0]["gold_accuracy"] is None
    await browser_login(client, session, admin)
    page = await client.get(dashboard_url(project.id))
    assert page.status_code == 200
    assert "they are not counted" in page.text


async def test_every_text_is_escaped(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    evil = '<img src=x onerror="alert(1)">'
    answers = [
        (Answer(f"{evil}-a", "Yes."), Answer("plain & simple", "No, it is not.")) for _ in range(3)
    ]
    pairs = await make_model_pairs(session, project, answers)
    rater = await make_user(session)
    rater.display_name = f"<script>alert('{rater.id}')</script>"
    await add_member(session, project, rater)
    await add_votes(session, [Vote(pair, rater, "a") for pair in pairs])
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    page = (await client.get(dashboard_url(project.id))).text
    assert "<img" not in page and "<script" not in page
    # Jinja escapes a quote as &#34; (tables), html.escape as &quot; (charts): both appear.
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;-a" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;-a" in page
    assert "&lt;script&gt;alert(" in page
    assert "plain &amp; simple" in page


async def test_raters_get_403_on_every_analytics_route(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    routes = [
        (method, route.path.format(project_id=setup.project_id))
        for route in analytics_router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]
    assert len(routes) == 7
    for method, path in routes:
        response = await client.request(method, path, headers=setup.rater_headers)
        assert response.status_code == 403, path
        assert response.json()["error"] == "Forbidden"
    page = await client.get(dashboard_url(setup.project_id), headers=setup.rater_headers)
    assert page.status_code == 403
    assert "Not allowed" in page.text
    exclusion = await client.post(
        f"{dashboard_url(setup.project_id)}/raters/{setup.left_clicker_id}/exclusion",
        data={"excluded": "true"},
        headers=setup.rater_headers,
    )
    assert exclusion.status_code == 403
