from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import add_member, login, make_pairs, make_project, make_user


async def test_rater_gets_pair_and_submits(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=1)
    await make_pairs(session, project, 2)
    rater = await make_user(session)
    await add_member(session, project, rater)
    headers = await login(client, session, rater)
    first = await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert "model" not in first.text
    again = await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert again.json()["assignment_id"] == body["assignment_id"]
    submitted = await client.post(
        f"/api/v1/assignments/{body['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=headers,
    )
    assert submitted.status_code == 201, submitted.text
