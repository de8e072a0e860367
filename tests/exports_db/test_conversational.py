"""Whether trl/kto rows are message lists is decided in SQL (`needs_messages`): yes when any
selected prompt has a system prompt or several turns."""

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.exports.repository import Selection, needs_messages
from pickwise.models import Pair, Prompt
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

MULTI_TURN = [
    {"role": "user", "content": "Hi?"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Name a prime."},
]


async def test_one_prompt_that_needs_messages_makes_the_export_conversational(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    pairs = await make_pairs(session, project, 3)
    selection = Selection(project.id)
    connection = await session.connection()
    assert not await needs_messages(connection, selection)  # no votes yet

    rater = await make_user(session)
    await add_member(session, project, rater)
    headers = await bearer_headers(session, rater)
    for _ in pairs:
        lease = (await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)).json()
        judged = await client.post(
            f"/api/v1/assignments/{lease['assignment_id']}/judgment",
            json={"choice": "left"},
            headers=headers,
        )
        assert judged.status_code == 201
    assert not await needs_messages(connection, selection)  # single user turns only

    last = pairs[-1].prompt_id

    async def set_prompt(**values: object) -> None:
        await session.execute(update(Prompt).where(Prompt.id == last).values(**values))

    await set_prompt(system="Be brief.")
    assert await needs_messages(connection, selection)
    await set_prompt(system="")  # an empty system prompt says nothing
    assert not await needs_messages(connection, selection)
    await set_prompt(turns=MULTI_TURN)
    assert await needs_messages(connection, selection)
    # Only selected prompts count: the pair removed from the queue is left out.
    await session.execute(update(Pair).where(Pair.prompt_id == last).values(status="removed"))
    assert not await needs_messages(connection, selection)
