"""The explorer's filters fold away on a phone: their summary counts the active filters (as
the server renders it, so it is right without scripts), and only a page with results asks to
be folded."""

import re

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, make_pairs, make_project, make_user
from tests.web.test_admin_pages import admin_client


def summary_of(body: str) -> str:
    found = re.search(r"<summary>(.*?)</summary>", body, re.S)
    assert found, "the filters have no summary"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def panel_of(body: str) -> str:
    found = re.search(r'<details class="filter-panel"[^>]*>', body)
    assert found, "the filters are not in a <details>"
    return found.group(0)


async def test_the_summary_counts_the_active_filters(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 3)
    rater = await make_user(session)
    await add_member(session, project, rater)
    project_id, rater_id = project.id, rater.id
    await admin_client(client, session)
    explorer = f"/admin/projects/{project_id}/pairs"

    plain = await client.get(explorer)
    assert plain.status_code == 200
    assert summary_of(plain.text) == "Filters"
    # Results to read: folded on a narrow screen (the form is open as served either way).
    assert " open" in panel_of(plain.text) and "data-collapse" in panel_of(plain.text)
    assert 'src="/static/js/filters.js"' in plain.text

    # Two statuses are one filter and the sort is none: status, tie and search.
    params = [
        ("status", "waiting"),
        ("status", "disputed"),
        ("tie", "false"),
        ("q", "question"),
        ("sort", "agreement_low"),
    ]
    filtered = await client.get(explorer, params=params)
    assert filtered.status_code == 200
    assert summary_of(filtered.text) == "Filters (3 active)"

    # Nothing matches: the filters stay open to be changed.
    empty = await client.get(explorer, params={"q": "zzzqqqxxx", "gold": "true"})
    assert summary_of(empty.text) == "Filters (2 active)"
    assert " open" in panel_of(empty.text) and "data-collapse" not in panel_of(empty.text)

    # A rater's own page sets the rater itself: that is not one of the admin's filters.
    audit = await client.get(f"/admin/projects/{project_id}/raters/{rater_id}?tie=true")
    assert audit.status_code == 200
    assert summary_of(audit.text) == "Filters (1 active)"
