"""Live conversations in real Chromium against the real server and a fake streaming model:
four turns with the keyboard only, a failed reply retried, stop, reload mid-stream, the
phone layout, and an axe audit; and the event stream read as it is written."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.auth import service as auth_service
from pickwise.conversations.views import to_shown
from pickwise.models import (
    ConversationEndpoint,
    ConversationReply,
    ConversationSettings,
    ConversationTurn,
    GenerationEndpoint,
    Judgment,
    Project,
    User,
)
from tests.browser.conftest import screenshot_path
from tests.browser.test_rating_browser import serious_violations
from tests.conversations.fake_llm import Behave, FakeLLM, fake_llm_server
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.browser

# What the two fake models say, turn by turn (realistic, for the docs' screenshots).
REPLIES = {
    "model-a": [
        "Three days is a good amount of time. A simple plan:\n\n1. **Day 1 – Alfama and Baixa:** "
        "ride tram 28, climb to São Jorge Castle, end at a *miradouro* at sunset.\n"
        "2. **Day 2 – Belém:** the Jerónimos Monastery, the tower, and a pastel de nata.\n"
        "3. **Day 3 – Sintra:** a day trip by train to Pena Palace.",
        "Tram 28 runs from Martim Moniz through Graça and Alfama. Board early (before 9 am) "
        "at the first stop to get a seat; a 24-hour Carris pass covers it.",
        "Try **Cervejaria Ramiro** for seafood, or a *tasca* in Mouraria for grilled sardines.",
        "You're welcome — boa viagem!",
    ],
    "model-b": [
        "Lisbon is a wonderful city with a rich history! You could visit many museums, "
        "churches and viewpoints. There are also many restaurants. Let me know if you want "
        "more details about any of them.",
        "The tram is a popular way to get around. There are several lines.",
        "There are many restaurants in Lisbon. Seafood is popular.",
        "Glad I could help!",
    ],
}


def tokens(text: str) -> tuple[str, ...]:
    words = text.split(" ")
    return tuple(word if i == 0 else " " + word for i, word in enumerate(words))


def script_replies(fake: FakeLLM, gap: float) -> None:
    for model, replies in REPLIES.items():
        fake.script(model, *(Behave(tokens=tokens(reply), gap=gap) for reply in replies))


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with fake_llm_server() as fake:
        fake.default = Behave(gap=0.01)
        yield fake


@dataclass(frozen=True)
class Setup:
    email: str
    project_id: int
    bearer: str


async def seed(engine: AsyncEngine, fake: FakeLLM, **settings: Any) -> Setup:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        rater: User = await make_user(session, password=PASSWORD)
        rater.display_name = "Ada"
        project: Project = await make_project(
            session, kind="conversations", criteria=["helpfulness"]
        )
        project.name = "Travel assistant, round 1"
        await add_member(session, project, rater)
        session.add(
            ConversationSettings(
                project_id=project.id,
                system_prompt="You are a friendly travel assistant.",
                **{"turn_cap": 4, **settings},
            )
        )
        endpoints = [
            GenerationEndpoint(project_id=project.id, name=n, base_url=fake.base_url, model=m)
            for n, m in (("alpha", "model-a"), ("beta", "model-b"))
        ]
        session.add_all(endpoints)
        await session.flush()
        session.add_all(
            ConversationEndpoint(project_id=project.id, endpoint_id=e.id) for e in endpoints
        )
        bearer, _ = await auth_service.create_api_token(session, rater, "browser test")
        await session.commit()
        return Setup(rater.email, project.id, bearer)


async def log_in(page: Page, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


async def send_with_keys(page: Page, text: str) -> None:
    await page.keyboard.type(text)
    async with page.expect_navigation():
        await page.keyboard.press("Control+Enter")


EDITED = "Board at Martim Moniz before 9 am; the 24-hour pass covers the ride."


def plain(text: str) -> str:
    """Text without markdown marks, list numbers or line breaks, to compare a rendered reply
    with its source."""
    text = re.sub(r"(^|\s)\d+\.\s", " ", text.replace("**", " ").replace("*", " "))
    return " ".join(text.split())


async def blur(page: Page) -> None:
    """Leave the text box that has the focus (as Tab would), so keys are shortcuts again."""
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")


async def wait_until_votable(page: Page) -> None:
    await expect(page.get_by_role("button", name="Left is better")).to_be_enabled(timeout=20_000)


async def test_four_turns_with_the_keyboard(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    fake_llm: FakeLLM,
    tmp_path: Path,
) -> None:
    setup = await seed(committed_engine, fake_llm)
    script_replies(fake_llm, gap=0.03)
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await log_in(page, live_server, setup.email)
    await page.goto(f"{live_server}/converse/{setup.project_id}")
    assert await serious_violations(page) == []
    await page.get_by_label("Your first message").focus()
    await send_with_keys(page, "I have three days in Lisbon. What should I see?")

    # The replies stream in: text shows while the vote is still locked.
    left = page.locator("#reply-left .reply-body")
    await expect(left).not_to_contain_text("Being written", timeout=20_000)
    assert await page.get_by_role("button", name="Left is better").is_disabled()
    await wait_until_votable(page)
    assert "alpha" not in await page.content() and "beta" not in await page.content()
    assert await serious_violations(page) == []

    shown = []
    pressed = []  # the choice each key made, as the rater saw it
    messages = ["How do I get on tram 28?", "And where should we eat?", "Thank you!"]
    for number in range(4):
        if number:
            await send_with_keys(page, messages[number - 1])
            await wait_until_votable(page)
        left_text = await page.locator("#reply-left .reply-body").inner_text()
        right_text = await page.locator("#reply-right .reply-body").inner_text()
        shown.append((left_text, right_text))
        # Turns 1 and 2 keep the better reply (1/2, then the arrows); 3 is a tie, 4 both bad.
        good_left = plain(left_text) == plain(REPLIES["model-a"][number])
        key, choice = [
            ("1", "left") if good_left else ("2", "right"),
            ("ArrowLeft", "left") if good_left else ("ArrowRight", "right"),
            ("3", "tie"),
            ("4", "both_bad"),
        ][number]
        pressed.append(choice)
        if number == 1:
            await page.locator("#log-heading").scroll_into_view_if_needed()
            await page.screenshot(
                path=screenshot_path(tmp_path, "conversation.png"), full_page=True
            )
        await blur(page)
        async with page.expect_navigation():
            await page.keyboard.press(key)
        if number == 1:
            # e opens the edit of the reply kept; Ctrl+Enter saves it.
            await blur(page)
            await page.keyboard.press("e")
            await page.keyboard.press("Control+a")
            await page.keyboard.type(EDITED)
            async with page.expect_navigation():
                await page.keyboard.press("Control+Enter")
            await expect(page.get_by_role("status").first).to_contain_text("edit is saved")
            await blur(page)
            await page.keyboard.press("m")
    await expect(page.get_by_role("heading", name="This conversation is complete")).to_be_visible()
    assert await serious_violations(page) == []
    await context.close()

    async with AsyncSession(committed_engine) as session:
        judgments = (await session.scalars(select(Judgment).order_by(Judgment.id))).all()
        turns = (
            await session.scalars(select(ConversationTurn).order_by(ConversationTurn.depth))
        ).all()
        replies = {
            (r.turn_id, r.side): r.content
            for r in (await session.scalars(select(ConversationReply))).all()
        }
    assert [to_shown(j.choice, j.left_side) for j in judgments] == pressed
    kept = [choice if choice in ("left", "right") else "left" for choice in pressed]
    assert [t.continue_side for t in turns] == kept
    assert turns[2].context[-2] == {"role": "assistant", "content": EDITED}
    # What the page showed is what the models wrote for that turn, on the sides stored.
    for number, (turn, (left_text, right_text)) in enumerate(zip(turns, shown, strict=True)):
        assert plain(left_text) == plain(replies[(turn.id, "left")])
        assert plain(right_text) == plain(replies[(turn.id, "right")])
        expected = {REPLIES["model-a"][number], REPLIES["model-b"][number]}
        assert {replies[(turn.id, "left")], replies[(turn.id, "right")]} == expected
    assert len(fake_llm.calls) == 8


async def test_failure_retry_stop_and_reload_on_a_phone(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    fake_llm: FakeLLM,
    tmp_path: Path,
) -> None:
    setup = await seed(committed_engine, fake_llm, replies_per_rater_per_day=20)
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=True, has_touch=True
    )
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await log_in(page, live_server, setup.email)
    await page.goto(f"{live_server}/converse/{setup.project_id}")

    # model-b fails (three times: the client's own retries), then answers when asked again.
    fake_llm.script("model-b", *[Behave(status=500)] * 3)
    script_replies(fake_llm, gap=0.01)
    await page.get_by_label("Your first message").fill("Three days in Lisbon: what to see?")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Send", exact=True).click()
    retry = page.get_by_role("button", name="again")
    await expect(retry).to_be_visible()
    await expect(page.get_by_text("answered with an error")).to_be_visible()
    assert await page.get_by_role("button", name="Left is better").is_disabled()
    await layout_checks(page)
    async with page.expect_navigation():
        await retry.click()
    await wait_until_votable(page)
    await page.screenshot(path=screenshot_path(tmp_path, "conversation-phone.png"), full_page=True)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Right is better").click()

    # A long reply: reload while it streams (it goes on), then stop it.
    long_reply = Behave(tokens=tuple(f" word{n}" for n in range(400)), gap=0.02)
    fake_llm.scripts.clear()
    fake_llm.default = long_reply
    await page.get_by_label("Your next message").fill("Tell me everything.")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#reply-left .reply-body")).to_contain_text("word3")
    await page.reload()
    await expect(page.locator("#reply-left .reply-body")).to_contain_text("word10")
    await layout_checks(page)
    # With the script, stop keeps the page: the replies end where they are and the vote opens.
    await page.get_by_role("button", name="Stop generating").click()
    await wait_until_votable(page)
    text = await page.locator("#reply-left .reply-body").inner_text()
    assert "word10" in text and "word399" not in text
    assert len(fake_llm.calls) == 1 + 3 + 1 + 2  # a, b three times, b again, turn 2
    await page.set_viewport_size({"width": 320, "height": 700})
    await layout_checks(page)
    await context.close()


async def layout_checks(page: Page) -> None:
    """No sideways scrolling, tap targets of 44 px or more, no serious axe violations."""
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    small = await page.evaluate(
        """() => Array.from(document.querySelectorAll(
            'main button, main a, main summary, main label.option, .topbar a, .topbar button'))
          .filter(e => e.offsetParent !== null && !e.closest('.md'))
          .map(e => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect().height])
          .filter(([, h]) => h < 44)"""
    )
    assert small == []
    assert await serious_violations(page) == []


async def test_the_event_stream_is_read_as_it_is_written(
    live_server: str, committed_engine: AsyncEngine, fake_llm: FakeLLM
) -> None:
    """Through the real server: the first piece of text arrives while the model is still
    writing (the fake has more to send), not when the reply is done."""
    setup = await seed(committed_engine, fake_llm)
    fake_llm.default = Behave(tokens=tuple(f" w{n}" for n in range(60)), gap=0.05)
    headers = {"Authorization": f"Bearer {setup.bearer}"}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        started = await client.post(
            f"/api/v1/projects/{setup.project_id}/conversations",
            json={"message": "Go"},
            headers=headers,
        )
        conversation = started.json()
        turn = conversation["turns"][0]
        url = f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/events"
        seen: list[str] = []
        async with client.stream("GET", url, headers=headers) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    seen.append(line.split(": ", 1)[1])
                    if seen == ["text"]:
                        assert fake_llm.finished < 2, "the stream waited for a whole reply"
    # Two 3-second replies written at most about four times a second: many pieces, not
    # one whole reply per side.
    assert seen.count("reply") == 2 and seen[-1] == "done" and seen.count("text") >= 8
