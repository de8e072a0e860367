"""The conversation pages through HTTP, as a browser without JavaScript uses them: plain
forms, a message that waits for both replies, redirects back to the page."""

import re

from httpx import AsyncClient, Response

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Project
from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM
from tests.factories import PASSWORD

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def form_of(html: str, marker: str) -> tuple[str, dict[str, str]]:
    """(action, hidden fields) of the form whose opening tag mentions `marker`."""
    start = html.rindex("<form", 0, html.index(marker))
    block = html[start : html.index("</form>", start)]
    action = re.search(r'action="([^"]+)"', block)
    assert action
    return action.group(1), dict(HIDDEN.findall(block))


async def log_in(world: World) -> AsyncClient:
    reply = await world.api.post("/login", data={"email": world.rater_email, "password": PASSWORD})
    assert reply.status_code == 303
    return world.api


async def follow(api: AsyncClient, reply: Response) -> Response:
    assert reply.status_code == 303, reply.text
    page = await api.get(reply.headers["location"])
    assert page.status_code == 200, page.text
    return page


async def test_a_conversation_without_javascript(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=2)
    api = await log_in(world)
    home = await api.get(f"/converse/{world.project_id}")
    assert home.status_code == 200, home.text
    action, hidden = form_of(home.text, 'class="start-form"')
    page = await follow(api, await api.post(action, data={**hidden, "message": "Hi <b>there</b>"}))
    html = page.text
    assert "[model-a] 1: Hi &lt;b&gt;there&lt;/b&gt;" in html or "[model-b] 1: Hi" in html
    assert "model-a" not in html.replace("[model-a]", "")
    assert "alpha" not in html and "beta" not in html
    action, hidden = form_of(html, 'id="choice-form"')
    page = await follow(api, await api.post(action, data={**hidden, "choice": "left"}))
    assert "Saved." in page.text
    action, hidden = form_of(page.text, 'id="message-form"')
    page = await follow(api, await api.post(action, data={**hidden, "content": "And then?"}))
    action, hidden = form_of(page.text, 'id="choice-form"')
    page = await follow(api, await api.post(action, data={**hidden, "choice": "tie"}))
    assert "This conversation is complete" in page.text


async def test_admin_page_configures_and_reports(world: World, fake_llm: FakeLLM) -> None:
    page = await world.api.get(
        f"/admin/projects/{world.project_id}/conversations", headers=world.admin
    )
    assert page.status_code == 200, page.text


async def test_page_problems_are_said_and_entries_kept(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=3, replies_per_rater_per_day=4)
    async with session_factory(get_engine())() as session, session.begin():
        project = await session.get(Project, world.project_id)
        assert project is not None
        project.strength_scale = ["a bit", "a lot"]
    api = await log_in(world)
    home = await api.get(f"/converse/{world.project_id}")
    action, hidden = form_of(home.text, 'class="start-form"')
    page = await follow(api, await api.post(action, data={**hidden, "message": "Hello"}))
    stale_action, stale_hidden = form_of(page.text, 'id="choice-form"')

    # A decisive choice without a strength: the page says so and keeps the reason typed.
    refused = await api.post(
        stale_action, data={**stale_hidden, "choice": "left", "rationale": "Clearer"}
    )
    assert refused.status_code == 422
    assert "how much better" in refused.text and ">Clearer</textarea>" in refused.text
    page = await follow(
        api, await api.post(stale_action, data={**stale_hidden, "choice": "left", "strength": "1"})
    )
    action, hidden = form_of(page.text, 'id="message-form"')
    page = await follow(api, await api.post(action, data={**hidden, "content": "Second"}))
    # The old message form again (another tab): nothing is sent, the page says why.
    again = await api.post(action, data={**hidden, "content": "Something else"})
    assert again.status_code == 303 and "notice=moved_on" in again.headers["location"]
    moved = await api.get(again.headers["location"])
    assert "has moved on" in moved.text
    vote_action, vote_hidden = form_of(page.text, 'id="choice-form"')
    page = await follow(
        api, await api.post(vote_action, data={**vote_hidden, "choice": "right", "strength": "0"})
    )
    # Four replies used today: the next message is refused with the reason, text kept.
    action, hidden = form_of(page.text, 'id="message-form"')
    over = await api.post(action, data={**hidden, "content": "Third"})
    assert over.status_code == 429
    assert "(4 a day)" in over.text and ">Third</textarea>" in over.text
    assert len(fake_llm.calls) == 4
