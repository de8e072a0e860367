"""An excluded rater's conversations stay out of the conversation exports after the rater
leaves the project, and a former member's conversations can still be excluded."""

import json

from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM


async def chosen_paths(world: World) -> int:
    reply = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversation-export",
        params={"test_fraction": 0},
        headers=world.admin,
    )
    assert reply.status_code == 200, reply.text
    return len(reply.text.splitlines())


async def votes(world: World) -> int:
    reply = await world.api.get(
        f"/api/v1/projects/{world.project_id}/export",
        params={"format": "votes", "test_fraction": 0},
        headers=world.admin,
    )
    assert reply.status_code == 200, reply.text
    return len([json.loads(line) for line in reply.text.splitlines()])


async def test_a_removed_raters_exclusion_still_holds(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=1)
    conversation = await world.start("Hello")
    await world.vote(conversation, "left")
    assert (await chosen_paths(world), await votes(world)) == (1, 1)
    member = f"/api/v1/projects/{world.project_id}/members/{world.rater_id}"

    # Excluded, then removed: still left out.
    assert (await world.api.post(f"{member}/exclude", headers=world.admin)).status_code == 204
    assert (await world.api.delete(member, headers=world.admin)).status_code == 204
    assert (await chosen_paths(world), await votes(world)) == (0, 0)

    # A former member can be included and excluded again.
    assert (await world.api.post(f"{member}/include", headers=world.admin)).status_code == 204
    assert (await chosen_paths(world), await votes(world)) == (1, 1)
    assert (await world.api.post(f"{member}/exclude", headers=world.admin)).status_code == 204
    assert (await chosen_paths(world), await votes(world)) == (0, 0)
