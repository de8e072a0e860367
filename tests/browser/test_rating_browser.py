"""A rater in real Chromium: keyboard choices, drafts, the summary, and an axe audit."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pickwise.models import Judgment
from tests.browser.conftest import RatingSetup, seed_rating_project
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
BLOCKING_IMPACTS = {"serious", "critical"}


async def log_in(page: Page, base_url: str, setup: RatingSetup) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Email").fill(setup.email)
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Log in").click()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))
    results = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "nodes": [node["target"] for node in violation["nodes"]],
        }
        for violation in results["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


async def press_and_wait(page: Page, key: str) -> None:
    async with page.expect_navigation():
        await page.keyboard.press(key)


async def test_rate_three_pairs_with_the_keyboard_and_see_the_summary(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(
        committed_engine, summary_every=3, criteria=["accuracy", "clarity"]
    )
    # bypass_csp: axe is injected as a script the page's CSP would otherwise refuse.
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, live_server, setup)
    rate_url = f"{live_server}/rate/{setup.project_id}"
    await page.goto(rate_url)

    await expect(page.get_by_role("button", name="Left is better")).to_be_visible()
    assert "hidden-model" not in await page.content()
    assert await serious_violations(page) == []

    # Keys typed into the rationale are text, not choices, and the draft survives a reload.
    rationale = page.get_by_label("Why?")
    await rationale.click()
    await page.keyboard.type("1 clearer")
    await page.keyboard.press("ArrowLeft")
    assert page.url == rate_url
    await page.reload()
    await expect(rationale).to_have_value("1 clearer")

    # ? shows the shortcuts; s opens the skip form, Escape closes it again.
    await page.locator("h1").click()
    await page.keyboard.press("?")
    await expect(page.locator("#shortcuts")).to_have_attribute("open", "")
    await page.keyboard.press("s")
    await expect(page.locator("#skip-panel")).to_have_attribute("open", "")
    await page.keyboard.press("Escape")
    await expect(page.locator("#skip-panel")).not_to_have_attribute("open", "")

    await page.locator("h1").click()
    await press_and_wait(page, "1")
    await expect(page.locator(".flash")).to_contain_text("Saved")
    assert await page.evaluate("() => localStorage.length") == 0
    await page.locator("h1").click()
    await press_and_wait(page, "ArrowRight")
    await page.locator("h1").click()
    await press_and_wait(page, "3")

    # The third choice is answered with the summary itself, shown at its own address (rate.js),
    # so a reload asks for the summary instead of sending the form again.
    assert page.url == f"{rate_url}/summary?after=3"
    await expect(page.get_by_role("heading", name="What your choices teach")).to_be_visible()
    await expect(page.get_by_text("You have made 3 judgments")).to_be_visible()
    await expect(
        page.get_by_role("row", name="Picked the answer shown on the left")
    ).to_contain_text("1 of 2")
    assert await serious_violations(page) == []
    await page.get_by_role("link", name="Continue rating").click()
    await expect(page.get_by_role("button", name="Left is better")).to_be_visible()
    await context.close()

    async with committed_engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Judgment.choice, Judgment.left_side, Judgment.rationale)
                .where(Judgment.rater_id == setup.rater_id)
                .order_by(Judgment.id)
            )
        ).all()
    shown = [
        "left" if choice == left_side else choice if choice in ("tie", "both_bad") else "right"
        for choice, left_side, _ in rows
    ]
    assert shown == ["left", "right", "tie"]
    assert rows[0].rationale == "1 clearer"


async def test_pages_pass_axe_on_a_narrow_screen(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(
        committed_engine,
        strength_scale=["slightly", "clearly", "much"],
        rationale_mode="required",
        guidelines_md="# Rules\n\n- Prefer **correct** answers.\n- Shorter wins a tie.",
    )
    context = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, live_server, setup)
    await page.goto(f"{live_server}/rate/{setup.project_id}")

    # Stacked: the right answer is below the left one.
    left = await page.locator("#answer-left").bounding_box()
    right = await page.locator("#answer-right").bounding_box()
    assert left is not None and right is not None and right["y"] > left["y"]
    assert await serious_violations(page) == []

    # A decisive choice without a strength is stopped in the page, with a question.
    await page.get_by_label("Why?").fill("Shorter.")
    await page.locator("h1").click()
    await page.keyboard.press("1")
    await expect(page.locator("#choice-message")).to_contain_text("Top is better. How much?")
    await page.get_by_label("clearly").check()
    await expect(page.locator(".flash")).to_contain_text("Saved")

    await page.goto(f"{live_server}/rate/{setup.project_id}/guidelines")
    await expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    assert await serious_violations(page) == []
    await context.close()
