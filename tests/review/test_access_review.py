"""The project-hiding answer: to a rater, every review route answers the same for a
project they are a member of, one they are not, and one that does not exist (so nothing can
be learnt by probing ids); an admin learns which projects and pairs exist."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import (
    PASSWORD,
    add_member,
    bearer_headers,
    make_pairs,
    make_project,
    make_user,
)
from tests.web.test_admin_pages import log_in

MISSING = 987_654_321
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/projects/{project}/pairs", {}),
    (
        "POST",
        "/api/v1/projects/{project}/pairs/actions",
        {"json": {"action": "exclude", "filter": {}}},
    ),
    ("GET", "/api/v1/projects/{project}/pairs/{pair}", {}),
    ("PUT", "/api/v1/projects/{project}/pairs/{pair}/adjudication", {"json": {"decision": "a"}}),
    ("DELETE", "/api/v1/projects/{project}/pairs/{pair}/adjudication", {}),
    ("GET", "/admin/projects/{project}/pairs", {}),
    ("POST", "/admin/projects/{project}/pairs/actions", {"data": {"action": "exclude"}}),
    ("GET", "/admin/projects/{project}/pairs/{pair}", {}),
    ("POST", "/admin/projects/{project}/pairs/{pair}/adjudication", {"data": {"decision": "a"}}),
    ("POST", "/admin/projects/{project}/pairs/{pair}/adjudication/withdraw", {}),
    ("GET", "/admin/projects/{project}/raters/{rater}", {}),
    ("POST", "/admin/projects/{project}/raters/{rater}/exclusion", {"data": {"excluded": "true"}}),
]


async def test_a_rater_cannot_tell_projects_apart(
    app: FastAPI, client: AsyncClient, session: AsyncSession
) -> None:
    mine, theirs = await make_project(session), await make_project(session)
    (my_pair,) = await make_pairs(session, mine, 1)
    (their_pair,) = await make_pairs(session, theirs, 1)
    rater = await make_user(session, password=PASSWORD)
    await add_member(session, mine, rater)
    bearer = await bearer_headers(session, rater)
    # Plain ids: refused requests roll the session back to here, expiring loaded objects.
    targets = ((mine.id, my_pair.id), (theirs.id, their_pair.id), (MISSING, MISSING))
    rater_id, email = rater.id, rater.email
    await session.commit()
    csrf = await log_in(client, email)

    for method, template, body in ROUTES:
        answers = set()
        for project, pair in targets:
            url = template.format(project=project, pair=pair, rater=rater_id)
            if url.startswith("/api/"):
                kwargs: dict[str, Any] = {"headers": bearer, **body}
            else:
                kwargs = {"headers": {"X-CSRF-Token": csrf}, **body}
            answer = await client.request(method, url, **kwargs)
            answers.add((answer.status_code, answer.text))
        assert len(answers) == 1, f"{method} {template}: {answers}"
        ((status, _),) = answers
        assert status == 403, f"{method} {template}: {status}"


async def test_an_admin_gets_404_for_what_does_not_exist(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    urls = (f"/api/v1/projects/{MISSING}/pairs", f"/api/v1/projects/{project.id}/pairs/{MISSING}")
    await session.commit()  # a refused request rolls back to here, keeping the token
    for url in urls:
        assert (await client.get(url, headers=headers)).status_code == 404


async def test_an_admin_gets_404_auditing_a_user_outside_the_project(
    client: AsyncClient, session: AsyncSession
) -> None:
    """A rater's audit, as a page or as the API's rater filter, exists only for the project's
    raters (members, or former members who voted: tests/projects/test_exclusion.py): another
    project's rater, an admin and a missing user all get the same 404."""
    project, other = await make_project(session), await make_project(session)
    await make_pairs(session, project, 2)
    member = await make_user(session)
    outsider = await make_user(session)
    await add_member(session, project, member)
    await add_member(session, other, outsider)
    admin = await make_user(session, role="admin", password=PASSWORD)
    headers = await bearer_headers(session, admin)
    ids = {"member": member.id, "outsider": outsider.id, "admin": admin.id, "missing": MISSING}
    project_id, email = project.id, admin.email
    await session.commit()
    await log_in(client, email)

    def urls(user: int) -> tuple[str, str]:
        page = f"/admin/projects/{project_id}/raters/{user}"
        api = f"/api/v1/projects/{project_id}/pairs?rater={user}"
        return page, api

    page, api = urls(ids["member"])
    assert (await client.get(page)).status_code == 200
    assert (await client.get(api, headers=headers)).status_code == 200
    for who in ("outsider", "admin", "missing"):
        page, api = urls(ids[who])
        page_answer = await client.get(page)
        api_answer = await client.get(api, headers=headers)
        assert page_answer.status_code == 404, who
        assert api_answer.status_code == 404, who
        assert api_answer.json()["error"] == "NotFound"
