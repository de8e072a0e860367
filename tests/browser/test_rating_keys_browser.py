"""The rating page in Chromium, as a rater works it: a whole judgment in two keys, messages
that follow what happened last, the new-pair cue, the sticky choice bar, and the page with
JavaScript off. At a desktop size and at a phone's."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from pickwise.models import Judgment, Project, ReplacedDecision
from tests.browser.conftest import (
    CONVERSATIONS,
    LONG_ANSWER,
    ClockedServer,
    RatingSetup,
    screenshot_path,
    seed_rating_project,
)
from tests.browser.test_rating_browser import log_in, serious_violations

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCALE = ["slightly", "clearly", "much"]


async def open_rating(
    browser: Browser, base_url: str, setup: RatingSetup, **options: Any
) -> tuple[BrowserContext, Page]:
    # bypass_csp: axe is injected as a script the page's CSP would otherwise refuse.
    context = await browser.new_context(bypass_csp=True, **options)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, base_url, setup)
    await page.goto(f"{base_url}/rate/{setup.project_id}")
    return context, page


async def stored_judgments(engine: AsyncEngine, setup: RatingSetup) -> list[tuple[str, int | None]]:
    """(choice as shown: left/right/tie/both_bad, strength) of the rater's judgments."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Judgment.choice, Judgment.left_side, Judgment.strength)
                .where(Judgment.rater_id == setup.rater_id)
                .order_by(Judgment.id)
            )
        ).all()
    return [
        (
            choice if choice in ("tie", "both_bad") else "left" if choice == left else "right",
            strength,
        )
        for choice, left, strength in rows
    ]


@pytest.mark.parametrize(
    ("viewport", "left", "right"), [(DESKTOP, "Left", "Right"), (PHONE, "Top", "Bottom")]
)
async def test_a_judgment_with_strength_is_two_key_presses(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    viewport: dict[str, int],
    left: str,
    right: str,
    tmp_path: Path,
) -> None:
    setup = await seed_rating_project(
        committed_engine,
        CONVERSATIONS[:3],  # the everyday ones: this test takes the docs' pictures
        strength_scale=SCALE,
        criteria=["accuracy"],
        summary_every=0,
    )
    context, page = await open_rating(browser, live_server, setup, viewport=viewport)
    message = page.locator("#choice-message")

    # The buttons and the key list say where the answers are in this layout.
    await expect(page.get_by_role("button", name=f"{left} is better")).to_be_visible()
    await expect(page.get_by_role("button", name=f"{right} is better")).to_be_visible()
    await expect(page.get_by_role("heading", name=f"{left} answer")).to_be_visible()
    await page.keyboard.press("?")
    # innerText: what is shown (the other layout's word is in the page, hidden).
    shortcuts = await page.locator("#shortcuts").inner_text()
    assert f"{left} is better, by how much" in shortcuts
    assert f"{right} is better, by how much" in shortcuts
    await page.keyboard.press("?")

    # First key: the side. The bar asks how much, in this layout's words.
    await page.keyboard.press("1")
    await expect(message).to_contain_text(f"{left} is better. How much? Press 1 slightly")
    # Esc takes it back, and the message goes with it.
    await page.keyboard.press("Escape")
    await expect(message).to_have_text("")

    # Side, then strength: stored, and the next pair is on screen. Nothing else was touched.
    async with page.expect_navigation():
        await page.keyboard.press("1")
        await page.keyboard.press("2")
    await expect(page.locator(".flash")).to_contain_text("Saved")
    assert await stored_judgments(committed_engine, setup) == [("left", 1)]

    # The new pair is announced (a live region), and the count moved on.
    await expect(page.locator("#pair-cue")).to_contain_text("New pair loaded (1 done today)")
    await expect(page.locator("#done-today")).to_contain_text("1 done today")

    # The arrow key works as the side too; once the rater acts, the old notes go.
    await page.keyboard.press("ArrowRight")
    await expect(page.locator(".flash")).to_be_hidden()
    await expect(page.locator("#pair-cue")).to_have_text("")
    await expect(message).to_contain_text(f"{right} is better. How much?")
    # The docs' pictures (README, docs/rating.md): halfway through a judgment, the bar asking.
    if viewport == PHONE:  # the first answer at the top of the screen, the bar below it
        await page.locator("#answer-left").evaluate("e => e.scrollIntoView()")
    name = "rating.png" if viewport == DESKTOP else "rating-phone.png"
    await page.screenshot(path=screenshot_path(tmp_path, name))
    async with page.expect_navigation():
        await page.keyboard.press("3")
    # A tie is one key.
    async with page.expect_navigation():
        await page.keyboard.press("3")
    assert await stored_judgments(committed_engine, setup) == [
        ("left", 1),
        ("right", 2),
        ("tie", None),
    ]
    assert await serious_violations(page) == []
    await context.close()


async def test_mouse_or_finger_side_then_strength_and_no_stale_message(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, strength_scale=SCALE, summary_every=0)
    context, page = await open_rating(
        browser, live_server, setup, viewport=PHONE, has_touch=True, is_mobile=True
    )
    message = page.locator("#choice-message")
    await page.get_by_role("button", name="Bottom is better").tap()
    await expect(message).to_have_text("Bottom is better. How much?")
    # No keys to name on a touch-only phone, and the question shares a line with the day's
    # count: the bar at this step covers at most a quarter of the screen (it took 31 %).
    bar = await page.locator("#choice-bar").bounding_box()
    assert bar is not None and bar["height"] <= PHONE["height"] * 0.25, bar
    # The strength finishes the choice: the question does not linger on the next page.
    async with page.expect_navigation():
        await page.locator("#strength label", has_text="much").tap()
    await expect(message).to_have_text("")
    assert await stored_judgments(committed_engine, setup) == [("right", 2)]
    await context.close()


async def test_reason_required_and_criteria_by_keys(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(
        committed_engine,
        strength_scale=SCALE,
        criteria=["accuracy", "clarity"],
        rationale_mode="required",
        summary_every=0,
    )
    context, page = await open_rating(browser, live_server, setup, viewport=DESKTOP)
    # c goes to the criteria; arrow keys pick within one, Tab moves to the next.
    await page.keyboard.press("c")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator('input[name="criterion-0"]:checked')).to_have_value("right")
    # r goes to the reason; keys there are text.
    await page.keyboard.press("r")
    await page.keyboard.type("1 is shorter")
    await expect(page.get_by_label("Why?")).to_have_value("1 is shorter")
    await page.keyboard.press("Escape")
    async with page.expect_navigation():
        await page.keyboard.press("2")
        await page.keyboard.press("1")
    assert await stored_judgments(committed_engine, setup) == [("right", 0)]

    # Without the reason the choice waits for it; Ctrl+Enter in the box sends it.
    await page.keyboard.press("1")
    await page.keyboard.press("3")
    await expect(page.locator("#choice-message")).to_contain_text("Say briefly why")
    await expect(page.get_by_label("Why?")).to_be_focused()
    await page.keyboard.type("Clearer.")
    async with page.expect_navigation():
        await page.keyboard.press("Control+Enter")
    assert await stored_judgments(committed_engine, setup) == [("right", 0), ("left", 2)]
    await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE])
async def test_the_choice_bar_stays_on_screen_while_the_answers_scroll(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, viewport: dict[str, int]
) -> None:
    setup = await seed_rating_project(
        committed_engine,
        [("Why does my loop never end?", LONG_ANSWER, LONG_ANSWER.replace("Step", "Stage"))],
        strength_scale=SCALE,
    )
    context, page = await open_rating(browser, live_server, setup, viewport=viewport)
    height = viewport["height"]
    for answer in ("#answer-left", "#answer-right"):
        await page.locator(answer).scroll_into_view_if_needed()
        await page.mouse.wheel(0, 600)
        bar = await page.locator("#choice-bar").bounding_box()
        assert bar is not None
        assert bar["y"] >= 0 and bar["y"] + bar["height"] <= height + 1, (answer, bar)
        # The buttons are on top (nothing covers them) and the answers scroll behind.
        for name in ("left", "right"):
            on_top = await page.evaluate(
                """name => {
                    const button = document.querySelector(`button[value="${name}"]`);
                    const box = button.getBoundingClientRect();
                    const x = box.x + box.width / 2, y = box.y + box.height / 2;
                    const hit = document.elementFromPoint(x, y);
                    return button.contains(hit);
                }""",
                name,
            )
            assert on_top, (answer, name)
    # The bar takes at most about a quarter of the screen.
    bar = await page.locator("#choice-bar").bounding_box()
    assert bar is not None and bar["height"] <= height * 0.3
    await context.close()


# Phones upright (small to large), a phone on its side, a desktop. At 360x640 the bar used to
# start clamped to its form's top, its buttons below the fold until the rater scrolled 170 px.
FIRST_LOAD_VIEWPORTS = [
    {"width": 320, "height": 568},
    {"width": 360, "height": 640},
    {"width": 375, "height": 667},
    {"width": 390, "height": 844},
    {"width": 412, "height": 915},
    {"width": 640, "height": 360},
    DESKTOP,
]
ANSWERS = {
    "short": CONVERSATIONS[1],
    "long": ("Why does my loop never end?", LONG_ANSWER, LONG_ANSWER.replace("Step", "Stage")),
    "markdown": (CONVERSATIONS[0][0], CONVERSATIONS[0][1], CONVERSATIONS[2][1]),
}

# Each choice button: its box, whether it is the element at its own centre (nothing covers it).
CHOICE_BUTTONS = """() => [...document.querySelectorAll('button[name=choice]')].map(button => {
    const box = button.getBoundingClientRect();
    const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
    return {value: button.value, top: box.top, bottom: box.bottom, left: box.left,
            right: box.right, onTop: button.contains(hit)};
})"""

# Scrolls an answer's last block to just above the choice bar; where both end up.
READ_TO_THE_END = """id => {
    const last = document.getElementById(id).parentElement.querySelector('.md > :last-child');
    const bar = document.getElementById('choice-bar');
    window.scrollBy(0, last.getBoundingClientRect().bottom - bar.getBoundingClientRect().top + 2);
    return {last: last.getBoundingClientRect().bottom, bar: bar.getBoundingClientRect().top};
}"""


def off_screen(buttons: list[dict[str, Any]], viewport: dict[str, int]) -> list[dict[str, Any]]:
    return [
        button
        for button in buttons
        if button["top"] < -0.5
        or button["left"] < -0.5
        or button["bottom"] > viewport["height"] + 0.5
        or button["right"] > viewport["width"] + 0.5
        or not button["onTop"]
    ]


# The long answers at every size; short ones and markdown with code on the smallest phones.
FIRST_LOAD_CASES = [(viewport, "long") for viewport in FIRST_LOAD_VIEWPORTS] + [
    (viewport, answers)
    for viewport in FIRST_LOAD_VIEWPORTS[:2]
    for answers in ("short", "markdown")
]


@pytest.mark.parametrize(
    ("viewport", "answers"),
    FIRST_LOAD_CASES,
    ids=[f"{v['width']}x{v['height']}-{answers}" for v, answers in FIRST_LOAD_CASES],
)
async def test_on_first_load_the_choice_buttons_are_on_screen_and_both_answers_can_be_read(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    viewport: dict[str, int],
    answers: str,
) -> None:
    # The tallest bar: a strength scale, and every choice allowed; criteria below the answers.
    setup = await seed_rating_project(
        committed_engine, [ANSWERS[answers]], strength_scale=SCALE, criteria=["accuracy"]
    )
    context, page = await open_rating(browser, live_server, setup, viewport=viewport)
    await expect(page.locator("#pair-cue")).to_contain_text("New pair loaded")
    buttons = await page.evaluate(CHOICE_BUTTONS)
    assert len(buttons) == 4
    assert off_screen(buttons, viewport) == []
    assert await page.evaluate("() => scrollY") == 0
    widths = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1] == viewport["width"]
    # Each answer can be read to its end above the bar, which stays on screen meanwhile.
    for answer in ("answer-left", "answer-right"):
        seen = await page.evaluate(READ_TO_THE_END, answer)
        assert 0 < seen["last"] <= seen["bar"] + 0.5, (answer, seen)
        assert off_screen(await page.evaluate(CHOICE_BUTTONS), viewport) == [], answer
    await context.close()


# The box of the prompt's first line of text, and the top of the choice bar.
PROMPT_FIRST_LINE = """() => {
    const line = document.createRange();
    line.selectNodeContents(document.querySelector('.turns .md > :first-child'));
    const box = line.getClientRects()[0];
    return {top: box.top, bottom: box.bottom, left: box.left, right: box.right,
            bar: document.getElementById('choice-bar').getBoundingClientRect().top};
}"""
# Small phones upright. The header used to take them whole: the site's bar on two lines, the
# title, the links on two rows and the counts on two; the bar covered the rest, prompt and all.
SMALL_PHONES = FIRST_LOAD_VIEWPORTS[:3]


# A title that takes two lines at 320 px, or more, unless the header keeps it to one.
LONG_TITLE = "Helpfulness and harmlessness of the support assistant, round 12 (German)"


@pytest.mark.parametrize("title", ["short", "long"])
@pytest.mark.parametrize(
    "viewport", SMALL_PHONES, ids=[f"{v['width']}x{v['height']}" for v in SMALL_PHONES]
)
async def test_on_first_load_a_small_phone_shows_the_prompt_above_the_choice_bar(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    viewport: dict[str, int],
    title: str,
) -> None:
    # The tallest bar, and the new-pair cue shown above the prompt.
    setup = await seed_rating_project(
        committed_engine, [ANSWERS["long"]], strength_scale=SCALE, criteria=["accuracy"]
    )
    if title == "long":
        async with committed_engine.begin() as connection:
            await connection.execute(
                update(Project).where(Project.id == setup.project_id).values(name=LONG_TITLE)
            )
    context, page = await open_rating(browser, live_server, setup, viewport=viewport)
    await expect(page.locator("#pair-cue")).to_contain_text("New pair loaded")
    line = await page.evaluate(PROMPT_FIRST_LINE)
    assert line["top"] >= 0 and line["bottom"] <= line["bar"] + 0.5, line
    assert line["left"] >= 0 and line["right"] <= viewport["width"], line
    assert off_screen(await page.evaluate(CHOICE_BUTTONS), viewport) == []
    widths = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1] == viewport["width"]
    # What the compact header takes out of sight is still read out (innerText leaves out what
    # is not rendered at all, display: none).
    read_out = await page.evaluate(
        """() => ['.topbar', '.rate-head', '.progress', '.system-prompt summary']
            .map(selector => document.querySelector(selector).innerText.replace(/\\s+/g, ' '))"""
    )
    assert "Ada" in read_out[0]
    assert "rating" in read_out[1].lower()  # (shown upper case where it shows)
    if title == "long":  # cut short on screen, whole for screen readers
        assert LONG_TITLE in read_out[1]
    assert "Still needed in this project" in read_out[2]
    assert "System prompt (instructions the assistant was given)" in read_out[3]
    assert await serious_violations(page) == []
    await context.close()


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
async def test_the_new_pair_cue_moves_only_when_motion_is_welcome(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, motion: str
) -> None:
    setup = await seed_rating_project(committed_engine, summary_every=0)
    context, page = await open_rating(
        browser, live_server, setup, viewport=DESKTOP, reduced_motion=motion
    )
    async with page.expect_navigation():
        await page.keyboard.press("3")
    await expect(page.locator("#pair-cue")).to_contain_text("New pair loaded")
    animation = await page.evaluate(
        "() => getComputedStyle(document.querySelector('.answer')).animationName"
    )
    assert animation == ("none" if motion == "reduce" else "arrived")
    # The same pair again (a reload) is not announced as new.
    await page.reload()
    await page.wait_for_timeout(500)
    await expect(page.locator("#pair-cue")).to_have_text("")
    await context.close()


async def test_key_hints_are_hidden_on_a_touch_only_phone(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, strength_scale=SCALE)
    context, page = await open_rating(
        browser, live_server, setup, viewport=PHONE, has_touch=True, is_mobile=True
    )
    await expect(page.get_by_role("button", name="Top is better")).to_be_visible()
    visible_hints = await page.evaluate(
        """() => [...document.querySelectorAll('kbd, #shortcuts')]
            .filter(e => e.getClientRects().length > 0).length"""
    )
    assert visible_hints == 0
    await context.close()
    # A narrow window with a keyboard and a mouse keeps them.
    context, page = await open_rating(browser, live_server, setup, viewport=PHONE)
    await expect(page.locator("#shortcuts")).to_be_visible()
    await expect(page.locator('button[value="left"] kbd')).to_be_visible()
    await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE])
async def test_the_page_works_with_javascript_off(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, viewport: dict[str, int]
) -> None:
    setup = await seed_rating_project(committed_engine, strength_scale=SCALE, summary_every=0)
    context, page = await open_rating(
        browser, live_server, setup, viewport=viewport, java_script_enabled=False
    )
    left = "Left" if viewport is DESKTOP else "Top"
    # A side without a strength: the server says what is missing, in words for any layout.
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"{left} is better").click()
    await expect(page.locator("#choice-message")).to_contain_text(
        "Pick how much better the answer you chose is"
    )
    await page.get_by_role("radio", name="clearly").check()
    async with page.expect_navigation():
        await page.get_by_role("button", name=f"{left} is better").click()
    await expect(page.locator(".flash")).to_contain_text("Saved")
    # Skipping, without a script, too.
    await page.get_by_text("Skip this pair").first.click()
    await page.get_by_label("I can't judge this").check()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Skip this pair").click()
    await expect(page.locator(".flash")).to_contain_text("Skipped")
    assert await stored_judgments(committed_engine, setup) == [("left", 1)]
    await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE])
async def test_undo_within_the_window_and_a_409_after_it(
    browser: Browser,
    clocked_server: ClockedServer,
    committed_engine: AsyncEngine,
    viewport: dict[str, int],
) -> None:
    setup = await seed_rating_project(committed_engine, strength_scale=SCALE, summary_every=0)
    start = datetime.now(UTC).replace(microsecond=0)
    clocked_server.set_time(start)  # the server's clock stands still from here
    try:
        context, page = await open_rating(
            browser, clocked_server.base_url, setup, viewport=viewport
        )
        async with page.expect_navigation():
            await page.keyboard.press("1")
            await page.keyboard.press("2")
        assert await stored_judgments(committed_engine, setup) == [("left", 1)]

        # u: the previous pair again, as it was chosen; two keys change it.
        clocked_server.set_time(start + timedelta(minutes=4))
        async with page.expect_navigation():
            await page.keyboard.press("u")
        await expect(page.locator(".editing-note")).to_contain_text(
            "You are changing your choice on the previous pair."
        )
        note = await page.locator(".editing-note").inner_text()
        top = "left" if viewport is DESKTOP else "top"
        assert f"Your choice was: {top} answer better, clearly." in " ".join(note.split())
        async with page.expect_navigation():
            await page.keyboard.press("2")
            await page.keyboard.press("3")
        await expect(page.locator(".flash")).to_contain_text("Changed")
        assert await stored_judgments(committed_engine, setup) == [("right", 2)]
        async with committed_engine.connect() as conn:
            kept = (await conn.execute(select(ReplacedDecision.strength))).scalars().all()
        assert kept == [1]

        # The link does it too; five minutes after the change, the answer is a 409.
        await expect(page.locator("#undo-link")).to_be_visible()
        clocked_server.set_time(start + timedelta(minutes=9, seconds=1))
        async with page.expect_navigation() as navigation:
            await page.locator("#undo-link").click()
        response = await navigation.value
        assert response is not None and response.status == 409
        await expect(page.get_by_role("heading", name="Nothing to change")).to_be_visible()
        # And over the API, as the same rater.
        api = await page.request.put(
            f"{clocked_server.base_url}/api/v1/assignments/1/judgment",
            data={"choice": "tie"},
            headers={"X-CSRF-Token": await csrf_of(page)},
        )
        assert api.status == 409 and "time to change this has passed" in await api.text()
        assert await stored_judgments(committed_engine, setup) == [("right", 2)]
        await context.close()
    finally:
        clocked_server.set_time(None)


async def csrf_of(page: Page) -> str:
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    return token
