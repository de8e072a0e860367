"""One request per judgment on the rating page, in Chromium: the answer to a choice is the next
pair itself (no redirect and second request), the address bar shows the rating page, and a
reload, the back and forward buttons, or the form sent again never store a second judgment."""

from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pickwise.models import Assignment, Judgment
from tests.browser.conftest import RatingSetup, seed_rating_project
from tests.browser.test_rating_browser import log_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}


async def open_rating(
    browser: Browser, base_url: str, setup: RatingSetup, **options: Any
) -> tuple[BrowserContext, Page, list[Request]]:
    """A logged-in rater on the rating page, and the page loads (documents) from then on."""
    context = await browser.new_context(viewport=DESKTOP, **options)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, base_url, setup)
    await page.goto(f"{base_url}/rate/{setup.project_id}")
    loads: list[Request] = []
    page.on("request", lambda request: loads.append(request) if is_page_load(request) else None)
    return context, page, loads


def is_page_load(request: Request) -> bool:
    return request.resource_type == "document"


def described(loads: list[Request]) -> list[str]:
    return [f"{request.method} {request.url.split('/rate/', 1)[-1]}" for request in loads]


async def shown_assignment(page: Page) -> int:
    value = await page.locator("#choice-form").get_attribute("data-assignment")
    assert value is not None
    return int(value)


async def judgments_per_assignment(engine: AsyncEngine, setup: RatingSetup) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Judgment.assignment_id, func.count())
            .where(Judgment.rater_id == setup.rater_id)
            .group_by(Judgment.assignment_id)
        )
        return {assignment_id: count for assignment_id, count in rows}


async def leased_assignment(engine: AsyncEngine, setup: RatingSetup) -> int | None:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(Assignment.id).where(
                Assignment.rater_id == setup.rater_id, Assignment.status == "leased"
            )
        )


async def test_a_key_press_is_one_request_and_reload_back_forward_store_nothing_more(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, summary_every=0)
    rate_url = f"{live_server}/rate/{setup.project_id}"
    context, page, loads = await open_rating(browser, live_server, setup)
    first = await shown_assignment(page)

    # A tie is one key: one POST, answered with the next pair; no redirect, no second GET.
    async with page.expect_navigation():
        await page.keyboard.press("3")
    await expect(page.locator(".flash")).to_contain_text("Saved. Here is the next pair.")
    second = await shown_assignment(page)
    assert second != first
    assert described(loads) == [f"POST {setup.project_id}/assignments/{first}/judgment"], (
        "the choice took more than one request"
    )
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1}
    assert await leased_assignment(committed_engine, setup) == second
    # The address bar shows the rating page, not the form's action.
    assert page.url == rate_url
    await expect(page.locator("#pair-cue")).to_contain_text("New pair loaded (1 done today)")

    # A reload asks for the rating page (a GET): the same pair, nothing stored again.
    loads.clear()
    await page.reload()
    assert described(loads) == [f"GET {setup.project_id}"]
    assert await shown_assignment(page) == second
    await expect(page.locator(".flash")).to_have_count(0)
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1}

    # Back: the page before the choice is asked for again and shows the current pair (the
    # copy with the judged pair and its used form is never shown), so does forward.
    await page.go_back()
    assert page.url == rate_url and await shown_assignment(page) == second
    await page.go_forward()
    assert await shown_assignment(page) == second
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1}

    # A choice from there is a choice on the current pair: one judgment each.
    async with page.expect_navigation():
        await page.keyboard.press("4")
    await expect(page.locator(".flash")).to_contain_text("Saved")
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1, second: 1}
    await context.close()


async def test_the_form_sent_again_from_an_old_copy_stores_nothing_new(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, summary_every=0)
    context, page, _ = await open_rating(browser, live_server, setup)
    first = await shown_assignment(page)
    old_copy = await page.content()

    async with page.expect_navigation():
        await page.keyboard.press("3")
    second = await shown_assignment(page)

    # A copy of the page from before the choice (a tab restored from disk, a slow double
    # submit): its form carries the used idempotency key, so sending it again replays the
    # stored answer and shows the pair held since.
    await page.set_content(old_copy)
    await page.evaluate(
        "base => { const form = document.getElementById('choice-form');"
        " form.action = base + form.getAttribute('action'); }",
        live_server,
    )
    async with page.expect_navigation():
        await page.locator('button[name="choice"][value="tie"]').click()
    await expect(page.locator(".flash")).to_contain_text("Saved. Here is the next pair.")
    assert await shown_assignment(page) == second
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1}
    await context.close()


async def test_without_javascript_the_answer_is_the_next_pair_and_a_reload_resends_harmlessly(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, summary_every=0)
    context, page, loads = await open_rating(browser, live_server, setup, java_script_enabled=False)
    first = await shown_assignment(page)

    async with page.expect_navigation():
        await page.get_by_role("button", name="Tie").click()
    await expect(page.locator(".flash")).to_contain_text("Saved. Here is the next pair.")
    second = await shown_assignment(page)
    assert second != first
    action = f"{setup.project_id}/assignments/{first}/judgment"
    assert described(loads) == [f"POST {action}"]
    # No script: the address bar keeps the form's action, and a reload sends the form again.
    assert page.url.endswith(action)
    loads.clear()
    await page.reload()
    assert described(loads) == [f"POST {action}"]
    # Its idempotency key answers with the stored judgment and the pair held since.
    await expect(page.locator(".flash")).to_contain_text("Saved. Here is the next pair.")
    assert await shown_assignment(page) == second
    assert await judgments_per_assignment(committed_engine, setup) == {first: 1}
    assert await leased_assignment(committed_engine, setup) == second
    await context.close()


async def test_the_last_pair_answers_with_no_work_left_at_the_pages_address(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    setup = await seed_rating_project(committed_engine, summary_every=0)
    context, page, _ = await open_rating(browser, live_server, setup)
    judged = 0
    while await page.locator("#choice-form").count():
        async with page.expect_navigation():
            await page.keyboard.press("3")
        judged += 1
    await expect(page.get_by_role("heading", name="Nothing left for you to rate")).to_be_visible()
    await expect(page.locator(".flash")).to_contain_text("Saved")
    assert page.url == f"{live_server}/rate/{setup.project_id}"
    await page.reload()
    await expect(page.get_by_role("heading", name="Nothing left for you to rate")).to_be_visible()
    counts = await judgments_per_assignment(committed_engine, setup)
    assert len(counts) == judged and set(counts.values()) == {1}
    await context.close()
