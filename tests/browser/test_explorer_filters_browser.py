"""The pairs explorer on a phone: its filters fold into a summary that counts the active ones,
so the first pair is on the first screen or two, and folded filters are still sent when the
form is applied. On a desktop the filters stay open, as before."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import screenshot_path
from tests.browser.test_every_screen_browser import (
    MIN_TARGET,
    OPEN_ALL_DETAILS,
    OVERFLOW,
    SMALL_TARGETS,
    axe_violations,
    log_in_as,
    seed_world,
)

pytestmark = pytest.mark.browser

SIZES = ((360, 640), (390, 844), (1280, 800))
# Two filters every crowd pair passes (the crowd's pairs are all voted on, 6 of 66 are gold).
FILTER = "gold=false&agreement_max=1&sort=agreement_low"


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_the_filters_fold_on_a_phone_and_still_apply(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    world = await seed_world(committed_engine)
    phone = width < 600
    options: dict[str, Any] = {"viewport": {"width": width, "height": height}}
    if phone:
        options |= {"has_touch": True, "is_mobile": True}
    # bypass_csp: axe is injected as a script the page's CSP would otherwise refuse.
    context = await browser.new_context(bypass_csp=True, **options)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await log_in_as(page, live_server, world.admin_email)
    await page.goto(f"{live_server}/admin/projects/{world.project_id}/pairs?{FILTER}")

    await page.screenshot(path=screenshot_path(tmp_path, f"explorer-filters-{width}x{height}.png"))
    panel = page.locator("details.filter-panel")
    summary = panel.locator("summary")
    assert " ".join((await summary.inner_text()).split()) == "Filters (2 active)"
    assert await panel.evaluate("d => d.open") is not phone
    first_row = page.locator(".pair-table tbody tr").first
    box = await first_row.bounding_box()
    assert box is not None
    if phone:
        # The first pair within two screens of the top (the filters alone were ~1,700 px).
        assert box["y"] + min(box["height"], 100) < 2 * height, box
        assert await page.evaluate(SMALL_TARGETS, MIN_TARGET) == []
    overflow = await page.evaluate(OVERFLOW, width)
    assert max(overflow["scroll"], overflow["inner"]) <= width and overflow["out"] == []
    assert await axe_violations(page) == []

    # Open, add a filter, fold again and apply: the folded fields go with the form.
    if phone:
        await summary.click()
    await page.get_by_label("Tie votes").select_option("false")
    if phone:
        await summary.click()
        assert await panel.evaluate("d => d.open") is False
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply").click()
    query = page.url.split("?", 1)[1]
    for part in ("gold=false", "agreement_max=1.0", "tie=false", "sort=agreement_low"):
        assert part in query.split("&"), query
    assert " ".join((await summary.inner_text()).split()) == "Filters (3 active)"
    assert await page.locator(".pair-table tbody tr").count() > 0
    await page.evaluate(OPEN_ALL_DETAILS)
    assert await page.get_by_label("Tie votes").input_value() == "false"
    await context.close()
