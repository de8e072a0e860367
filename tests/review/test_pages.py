"""The review pages: the filter kept in the form and the URL, its problems named per field,
counts that say when they are estimates, actions that want confirming, one pair's page
(escaped texts, the view as a rater saw it, accounts on request), and one rater's audit."""

import html

import pytest
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Pair, ProjectRaterExclusion, Response
from pickwise.review import repository, service
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user
from tests.review.helpers import vote
from tests.web.test_admin_pages import admin_client

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


async def rated_project(session: AsyncSession) -> tuple[object, list[Pair], list[object]]:
    project = await make_project(session, raters_per_pair=2)
    pairs = await make_pairs(session, project, 6)
    raters = [await make_user(session) for _ in range(2)]
    for rater in raters:
        await add_member(session, project, rater)
    for pair in pairs[:3]:
        await vote(session, pair, raters[0], "a", left_side="b")
        await vote(session, pair, raters[1], "tie", rationale=HOSTILE)
    return project, pairs, raters


async def test_the_filter_stays_in_the_form_and_the_links(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pairs, _ = await rated_project(session)
    await admin_client(client, session)
    page = await client.get(
        f"/admin/projects/{project.id}/pairs",  # type: ignore[attr-defined]
        params={"status": "disputed", "tie": "true", "q": "question", "sort": "agreement_low"},
    )
    assert page.status_code == 200
    body = page.text
    assert 'value="disputed" checked' in body
    assert '<option value="true" selected>Yes</option>' in body
    assert 'value="question"' in body
    assert "3</strong> pairs match" in body
    export_link = "export?status=disputed&amp;tie=true&amp;q=question&amp;sort=agreement_low"
    assert export_link in body
    for pair in pairs[:3]:
        assert f">#{pair.id}</a>" in body
    assert HOSTILE not in body  # rationales are not shown in the list, and never raw


async def test_a_filter_it_cannot_read_is_named(client: AsyncClient, session: AsyncSession) -> None:
    project, _, _ = await rated_project(session)
    await admin_client(client, session)
    page = await client.get(
        f"/admin/projects/{project.id}/pairs",  # type: ignore[attr-defined]
        params={"agreement_max": "2", "versus": "model-x", "created_from": "soon"},
    )
    assert page.status_code == 422
    summary = page.text[page.text.index("error-summary") :]
    assert "Agreement at most</a>: Input should be less than or equal to 1" in summary
    assert "Against</a>: give the first model too (model)" in summary
    assert "Created from</a>" in summary
    api = await client.get(
        f"/api/v1/projects/{project.id}/pairs",  # type: ignore[attr-defined]
        params={"after": "not-a-cursor"},
        headers=await bearer_headers(session, await make_user(session, role="admin")),
    )
    assert api.status_code == 422 and api.json()["field"] == "after"


async def test_counts_beyond_the_bound_or_the_budget_are_estimates(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _, _ = await rated_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    url = f"/api/v1/projects/{project.id}/pairs"  # type: ignore[attr-defined]
    exact = (await client.get(url, headers=headers)).json()["count"]
    assert exact == {"value": 6, "exact": True}

    monkeypatch.setattr(service, "COUNT_EXACT_UP_TO", 4)
    bounded = (await client.get(url, headers=headers)).json()["count"]
    assert bounded["exact"] is False and bounded["value"] >= 5

    # Counting that takes longer than the budget is cancelled; the page still answers.
    async def slow(session: AsyncSession, *args: object) -> int:
        await session.execute(text("SELECT pg_sleep(1)"))
        return 0

    monkeypatch.setattr(service, "COUNT_EXACT_UP_TO", 10_000)
    monkeypatch.setattr(repository, "count_up_to", slow)
    answer = await client.get(url, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["count"]["exact"] is False
    assert len(answer.json()["items"]) == 6
    timeout = await session.scalar(text("SELECT current_setting('statement_timeout')"))
    assert timeout == "0"  # the budget did not outlive the count


async def test_a_selection_action_must_be_confirmed(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pairs, _ = await rated_project(session)
    _, csrf = await admin_client(client, session)
    url = f"/admin/projects/{project.id}/pairs/actions"  # type: ignore[attr-defined]
    form = {"csrf_token": csrf, "action": "exclude", "tie": "true"}
    refused = await client.post(url, data=form)
    assert refused.status_code == 422
    assert "tick the box to apply this to every pair of the filter" in refused.text
    done = await client.post(url, data={**form, "confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"].endswith("?tie=true&done=exclude&changed=3&selected=3")
    notice = await client.get(done.headers["location"])
    assert "3 of 3 pairs excluded from exports." in notice.text
    excluded = await session.scalars(
        select(Pair.id).where(Pair.excluded).execution_options(populate_existing=True)
    )
    assert sorted(excluded) == [pair.id for pair in pairs[:3]]


async def test_one_pair_as_the_raters_saw_it(client: AsyncClient, session: AsyncSession) -> None:
    project, pairs, raters = await rated_project(session)
    answer_b = await session.get(Response, pairs[0].response_b_id)
    assert answer_b is not None
    answer_b.content = f"**Bold** {HOSTILE}"
    await session.flush()
    await admin_client(client, session)
    url = f"/admin/projects/{project.id}/pairs/{pairs[0].id}"  # type: ignore[attr-defined]
    page = await client.get(url, params={"status": "complete"})
    body = page.text
    assert page.status_code == 200
    assert "<strong>Bold</strong>" in body  # rendered as markdown, as on the rating page
    # Only the page's own script; the answer's tags are text.
    assert body.count("<script") == 1 and "<img" not in body
    assert html.escape(HOSTILE, quote=False) in body  # the rationale, shown as text
    assert raters[0].email not in body  # type: ignore[attr-defined]
    # Newest first, the oldest of the three complete pairs is the last: a previous, no next.
    assert 'id="previous-pair"' in body and 'id="next-pair"' not in body
    revealed = await client.get(url, params={"reveal": "1"})
    assert raters[0].email in revealed.text  # type: ignore[attr-defined]
    # As the first rater saw it: B on the left.
    judgment = await session.scalar(
        text("SELECT id FROM judgments WHERE pair_id = :p AND rater_id = :r"),
        {"p": pairs[0].id, "r": raters[0].id},  # type: ignore[attr-defined]
    )
    seen = await client.get(url, params={"seen_by": str(judgment)})
    assert seen.text.index("Left: Answer B") < seen.text.index("Right: Answer A")


async def test_the_project_page_leads_to_the_explorer(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, _, _ = await rated_project(session)
    await admin_client(client, session)
    page = await client.get(f"/admin/projects/{project.id}")  # type: ignore[attr-defined]
    assert f'href="/admin/projects/{project.id}/pairs">Pairs</a>' in page.text  # type: ignore[attr-defined]


async def test_a_raters_audit_and_exclusion(client: AsyncClient, session: AsyncSession) -> None:
    project, _, raters = await rated_project(session)
    _, csrf = await admin_client(client, session)
    rater = raters[0]
    url = f"/admin/projects/{project.id}/raters/{rater.id}"  # type: ignore[attr-defined]
    page = await client.get(url)
    assert page.status_code == 200
    assert "Agrees with the majority" in page.text and "Left picks" in page.text
    assert "3</strong> pairs match" in page.text
    assert page.text.count('right <span class="muted">(A)</span>') == 3  # B was on the left
    done = await client.post(f"{url}/exclusion", data={"csrf_token": csrf, "excluded": "true"})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=excluded")
    assert await session.scalar(
        select(ProjectRaterExclusion.project_id).where(
            ProjectRaterExclusion.user_id == rater.id  # type: ignore[attr-defined]
        )
    )
    again = await client.get(done.headers["location"])
    assert "Rater excluded" in again.text and "Include their votes again" in again.text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(words=st.text(max_size=60))
async def test_any_search_text_is_a_valid_query(session: AsyncSession, words: str) -> None:
    """Quotes, operators, apostrophes, backslashes, any script: the search's words always make
    a query Postgres accepts (or none), never an error."""
    words = words.replace("\x00", "")
    query = await repository.tsquery(session, words)
    await session.execute(text("SELECT CAST(:q AS tsquery)"), {"q": query})
    if query:
        assert ":*" not in query or "'" in query
