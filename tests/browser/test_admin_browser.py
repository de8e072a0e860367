"""Admin pages in Chromium: the small things that save an admin a trip to the docs (or an
e-mail): the slug from the name, what raters per pair means, pending invites to copy again or
withdraw."""

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.browser.test_every_screen_browser import log_in_as
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser


async def test_the_slug_follows_the_name_until_the_admin_types_one(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    async with AsyncSession(committed_engine, expire_on_commit=False) as session:
        admin = await make_user(session, role="admin", password=PASSWORD)
        await session.commit()
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in_as(page, live_server, admin.email)
    await page.goto(f"{live_server}/admin/projects/new")
    name, slug = page.get_by_label("Name", exact=True), page.locator("#slug")

    await name.fill("Helpfulness — Round 2 (Ünïcode & more!)")
    await expect(slug).to_have_value("helpfulness-round-2-unicode-more")
    # "Raters per pair" says what it means where it is set.
    await expect(page.locator("#raters_per_pair-hint")).to_contain_text(
        "How many different raters judge each pair"
    )
    # Once the admin types a slug, it is theirs.
    await slug.fill("round-two")
    await name.fill("Helpfulness, round 2")
    await expect(slug).to_have_value("round-two")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Create project").click()
    await expect(page.get_by_role("heading", name="Helpfulness, round 2")).to_be_visible()
    await expect(page.get_by_text("round-two", exact=True)).to_be_visible()
    await context.close()


async def test_a_pending_invite_is_copied_again_and_withdrawn(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    async with AsyncSession(committed_engine, expire_on_commit=False) as session:
        admin = await make_user(session, role="admin", password=PASSWORD)
        await session.commit()
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in_as(page, live_server, admin.email)
    await page.goto(f"{live_server}/admin/users")
    await page.locator("#invite_email").fill("later@example.org")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Create invite link").click()
    link = (await page.locator("#new-invite-link").inner_text()).strip()

    # Later: the pending list copies the same link again.
    await page.goto(f"{live_server}/admin/users")
    pending = page.locator("#pending-invites")
    await pending.get_by_role("button", name="Copy link for later@example.org").click()
    # The name follows the words on the button ("Copied for ..."), so look it up by its place.
    await expect(pending.locator(".copy-button .copy-label")).to_have_text("Copied")
    assert await page.evaluate("() => navigator.clipboard.readText()") == link

    async with page.expect_navigation():
        await pending.get_by_role(
            "button", name="Withdraw the invite for later@example.org"
        ).click()
    await expect(page.get_by_text("Invite withdrawn: its link no longer works.")).to_be_visible()
    response = await page.goto(link)
    assert response is not None and response.status == 403
    await context.close()
