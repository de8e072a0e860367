"""On an adaptive-overlap project the explorer's states follow the stopping rule: a pair the
rule settled is complete with the votes it took, one it still wants votes for is in
progress, whatever the project's k (issue 19's overlap, issue 17's explorer)."""

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import bearer_headers, make_pairs, make_user
from tests.overlap.crowd import Crowd, adaptive_project


async def test_states_and_votes_wanted_follow_the_overlap_rule(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await adaptive_project(session)  # 2 to 5 raters, two agreeing votes settle; k 3
    await make_pairs(session, project, 3)
    crowd = Crowd(client, session, project)
    first, second = await crowd.join(2)
    settled = await crowd.vote(first, "a")
    assert await crowd.vote(second, "a") == settled
    contested = await crowd.vote(first, "a")
    assert await crowd.vote(second, "b") == contested  # the rule opens a third slot
    admin = await bearer_headers(session, await make_user(session, role="admin"))
    url = f"/api/v1/projects/{project.id}/pairs"

    async def listed(**params: Any) -> dict[int, dict[str, Any]]:
        answer = await client.get(url, params=params, headers=admin)
        assert answer.status_code == 200, answer.text
        return {row["pair_id"]: row for row in answer.json()["items"]}

    rows = await listed()
    assert (rows[settled]["status"], rows[settled]["judgments"]) == ("complete", 2)
    assert rows[settled]["votes_wanted"] == 2
    assert (rows[contested]["status"], rows[contested]["judgments"]) == ("in_progress", 2)
    assert rows[contested]["votes_wanted"] == 3
    (waiting,) = set(rows) - {settled, contested}
    assert (rows[waiting]["status"], rows[waiting]["votes_wanted"]) == ("waiting", 2)
    assert set(await listed(status="complete")) == {settled}
    assert set(await listed(status="in_progress")) == {contested}
    assert set(await listed(status="waiting")) == {waiting}
