"""The export routes read through the ReadConnection dependency (as analytics reads through
its own), so a test, or a deployment, decides where exports read from in one place."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


async def test_download_and_preview_read_through_the_dependency(
    client: AsyncClient, session: AsyncSession
) -> None:
    # Nothing here is committed: only the test's own connection (the app fixture's
    # ReadConnection) can see it.
    project = await make_project(session)
    await make_pairs(session, project, 2)
    admin = await bearer_headers(session, await make_user(session, role="admin"))
    rater = await make_user(session)
    await add_member(session, project, rater)
    rater_headers = await bearer_headers(session, rater)
    lease = (await client.get(f"/api/v1/projects/{project.id}/next", headers=rater_headers)).json()
    judged = await client.post(
        f"/api/v1/assignments/{lease['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=rater_headers,
    )
    assert judged.status_code == 201

    url = f"/api/v1/projects/{project.id}/export"
    download = await client.get(url, params={"format": "votes"}, headers=admin)
    assert download.status_code == 200 and len(download.text.splitlines()) == 1
    preview = await client.get(f"{url}/preview", params={"format": "votes"}, headers=admin)
    assert preview.json()["votes"] == 1
