"""Every page on a phone and on a desktop: nothing scrolls sideways at 320 to 390 px, every
control is a finger wide (44 px), a rating page's choice buttons are on screen before any
scrolling, wide tables and charts scroll inside their own box (tables of people become cards,
their buttons on screen), and axe finds nothing at either size.
Admin pages over a project with a crowd's votes, a flagged pair, a long file name, an invite
and a token; rater pages over a pair to judge; a live-conversations project's pages before its
first message (tests/browser/test_conversation_browser.py sees them mid-conversation)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.auth import service as auth_service
from pickwise.judgments.schemas import JudgmentIn
from pickwise.judgments.service import submit
from pickwise.models import (
    Batch,
    ConversationEndpoint,
    ConversationSettings,
    GenerationEndpoint,
    Pair,
    PairFlag,
    Project,
    User,
)
from tests.analytics_service.builders import simulate_crowd
from tests.browser.conftest import RatingSetup, seed_rating_project
from tests.browser.test_rating_browser import AXE
from tests.browser.test_rating_keys_browser import CHOICE_BUTTONS, off_screen
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.browser

# Phones upright: small, common Android, common iPhone (width x height in CSS pixels).
PHONES = ((320, 568), (360, 640), (390, 844))
PHONE_HEIGHT = 844
DESKTOP = {"width": 1280, "height": 800}
LONG_FILE_NAME = "helpfulness_round_one_batch_2026-11-30_final_reviewed_by_the_whole_team_v3.jsonl"
MIN_TARGET = 44


@dataclass(frozen=True)
class World:
    admin_email: str
    project_id: int
    flagged_pair_id: int
    crowd_rater_id: int
    rating: RatingSetup
    conversations_id: int


async def seed_world(engine: AsyncEngine) -> World:
    rating = await seed_rating_project(
        engine,
        strength_scale=["slightly", "clearly", "much"],
        criteria=["accuracy", "clarity"],
        guidelines_md="# Rules\n\n- Prefer **correct** answers.\n- Shorter wins a tie.",
    )
    async with AsyncSession(engine, expire_on_commit=False) as session:
        # The rater has judged a pair just now, so the page to change it is there too.
        rater = await session.get(User, rating.rater_id)
        rating_project = await session.get(Project, rating.project_id)
        assert rater is not None and rating_project is not None
        lease = await next_lease(session, rating_project, rater)
        assert lease is not None
        await submit(session, lease.assignment_id, rater, JudgmentIn(choice="tie"))
        admin = await make_user(session, role="admin", password=PASSWORD)
        admin.display_name = "Grace Brewster Murray Hopper"
        raters = [await make_user(session, password=PASSWORD) for _ in range(5)]
        project = await make_project(
            session, raters_per_pair=3, strength_scale=["slightly", "much"], criteria=["honesty"]
        )
        project.name = "Helpfulness and honesty of the assistants, round one (November)"
        for rater in raters:
            await add_member(session, project, rater)
        crowd = await simulate_crowd(session, project, raters)
        await session.execute(
            update(Batch).where(Batch.project_id == project.id).values(filename=LONG_FILE_NAME)
        )
        flagged = crowd.pairs[0]
        await session.execute(update(Pair).where(Pair.id == flagged.id).values(status="flagged"))
        session.add(
            PairFlag(
                project_id=project.id,
                pair_id=flagged.id,
                rater_id=raters[0].id,
                reason="other",
                note="The second answer quotes a URL: https://example.org/a/very/long/path/"
                "that/never/ends/and/has/no/spaces/at/all/anywhere",
            )
        )
        await auth_service.create_invite(
            session,
            admin=admin,
            email="someone.with.a.long.address@research-lab.example.org",
            role="rater",
            project_id=project.id,
        )
        await auth_service.create_api_token(
            session, admin, "nightly import from the lab's scheduler"
        )
        conversations = await conversation_project(session, rater_id=rating.rater_id)
        await session.commit()
        return World(admin.email, project.id, flagged.id, raters[0].id, rating, conversations.id)


async def conversation_project(session: AsyncSession, rater_id: int) -> Project:
    """A live-conversations project the rater belongs to, with two models (never called: the
    pages are seen before any message is sent)."""
    project = await make_project(session, kind="conversations", criteria=["helpfulness"])
    project.name = "Travel assistant with a long name, round one"
    rater = await session.get(User, rater_id)
    assert rater is not None
    await add_member(session, project, rater)
    session.add(ConversationSettings(project_id=project.id, system_prompt="Be brief."))
    endpoints = [
        GenerationEndpoint(
            project_id=project.id, name=name, base_url="http://127.0.0.1:9/v1", model=name
        )
        for name in ("alpha-model-with-a-long-name", "beta")
    ]
    session.add_all(endpoints)
    await session.flush()
    session.add_all(
        ConversationEndpoint(project_id=project.id, endpoint_id=e.id) for e in endpoints
    )
    return project


async def log_in_as(page: Page, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Log in").click()


def admin_pages(world: World) -> list[str]:
    project = f"/admin/projects/{world.project_id}"
    return [
        "/",
        "/admin/projects/new",
        project,
        f"{project}/dashboard",
        # The pairs explorer searching, the review queue, a pair's history, a rater's record.
        f"{project}/pairs?q=important",
        f"{project}/pairs?status=flagged",
        f"{project}/pairs/{world.flagged_pair_id}",
        f"{project}/raters/{world.crowd_rater_id}",
        f"{project}/export",
        f"{project}/integrations",
        "/admin/users",
        "/account/tokens",
        f"/admin/projects/{world.conversations_id}/conversations",
    ]


def rater_pages(world: World) -> list[str]:
    rate = f"/rate/{world.rating.project_id}"
    return [
        "/",
        rate,
        f"{rate}/change",
        f"{rate}/summary",
        f"{rate}/guidelines",
        "/account/tokens",
        f"/converse/{world.conversations_id}",
    ]


# Elements that stick out to the right of the window, outside any box that scrolls itself.
OVERFLOW = """width => {
    const inScrollBox = e => {
        for (let p = e.parentElement; p; p = p.parentElement) {
            const x = getComputedStyle(p).overflowX;
            if (x === 'auto' || x === 'scroll' || x === 'hidden') return true;
        }
        return false;
    };
    const out = [...document.body.querySelectorAll('*')]
        .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > width + 0.5)
        .filter(e => !inScrollBox(e))
        .map(e => {
            const right = Math.round(e.getBoundingClientRect().right);
            return `${e.tagName.toLowerCase()}#${e.id}.${e.className} right=${right}`;
        });
    const scroll = document.documentElement.scrollWidth;
    return {scroll: scroll, inner: window.innerWidth, out: out.slice(0, 5)};
}"""

# Controls smaller than a finger: buttons, fields, summaries, radio and check boxes (by their
# label, the thing one taps) and links that stand alone (in a menu, a line of their own).
SMALL_TARGETS = """min => {
    const seen = new Set();
    const targets = [];
    const add = e => { if (e && !seen.has(e)) { seen.add(e); targets.push(e); } };
    document.querySelectorAll(
        'button, .button, select, textarea, summary, input:not([type=hidden])'
    ).forEach(e => {
        if (e.type === 'radio' || e.type === 'checkbox') add(e.closest('label') || e);
        else add(e);
    });
    document.querySelectorAll('a[href]').forEach(a => {
        const parent = a.parentElement;
        const alone = parent.textContent.trim() === a.textContent.trim();
        if (alone || a.closest('nav')) add(a);
    });
    return targets
        .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
        .filter(e => {
            const r = e.getBoundingClientRect();
            return r.height < min - 0.5 || r.width < min - 0.5;
        })
        .map(e => {
            const r = e.getBoundingClientRect();
            const text = (e.textContent || e.name || '').trim().slice(0, 30);
            const size = `${Math.round(r.width)}x${Math.round(r.height)}`;
            return `${e.tagName.toLowerCase()} "${text}" ${size}`;
        });
}"""


# Controls a desktop user would have to scroll a table sideways to reach: parts of a control
# outside the visible part of the box that scrolls it.
HIDDEN_IN_SCROLL_BOX = """() => {
    const box = e => {
        for (let p = e.parentElement; p; p = p.parentElement) {
            const x = getComputedStyle(p).overflowX;
            if (x === 'auto' || x === 'scroll') return p;
        }
        return null;
    };
    return [...document.querySelectorAll('button, a[href], input:not([type=hidden]), select')]
        .filter(e => e.getClientRects().length && box(e))
        .filter(e => {
            const inner = box(e).getBoundingClientRect();
            const r = e.getBoundingClientRect();
            return r.right > inner.right + 0.5 || r.left < inner.left - 0.5;
        })
        .map(e => {
            const text = (e.textContent || e.name || '').trim().slice(0, 30);
            return `${e.tagName.toLowerCase()} "${text}"`;
        })
        .slice(0, 5);
}"""


OPEN_ALL_DETAILS = "() => document.querySelectorAll('details').forEach(d => d.open = true)"


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))
    results = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results["violations"]
    ]


async def every_page(
    browser: Browser, base_url: str, world: World, **context_options: Any
) -> AsyncIterator[tuple[str, Page]]:
    """Each page of the admin, then of the rater, then the login page, opened in turn."""
    for email, paths in (
        (world.admin_email, admin_pages(world)),
        (world.rating.email, rater_pages(world)),
        (None, ["/login"]),
    ):
        context = await browser.new_context(**context_options)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        if email:
            await log_in_as(page, base_url, email)
        for path in paths:
            await page.goto(f"{base_url}{path}")
            yield path, page
        await context.close()


@pytest.mark.parametrize(("width", "height"), PHONES, ids=[f"{w}x{h}" for w, h in PHONES])
async def test_no_page_scrolls_sideways_and_every_target_is_a_finger_wide(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, width: int, height: int
) -> None:
    world = await seed_world(committed_engine)
    problems: dict[str, Any] = {}
    viewport = {"width": width, "height": height}
    phone = {"viewport": viewport, "has_touch": True, "is_mobile": True}
    async for path, page in every_page(browser, live_server, world, **phone):
        # A rating page shows its choice buttons on first load, before any scrolling.
        hidden_choices = off_screen(await page.evaluate(CHOICE_BUTTONS), viewport)
        if hidden_choices:
            problems[f"{path} choices"] = hidden_choices
        await page.evaluate(OPEN_ALL_DETAILS)
        # On a phone the window grows to fit a page that is too wide: compare with the
        # screen's width, not innerWidth.
        overflow = await page.evaluate(OVERFLOW, width)
        if max(overflow["scroll"], overflow["inner"]) > width or overflow["out"]:
            problems[f"{path} sideways"] = overflow
        small = await page.evaluate(SMALL_TARGETS, MIN_TARGET)
        if small:
            problems[f"{path} small"] = small
    assert problems == {}


async def test_on_a_desktop_no_control_hides_in_a_table_that_scrolls_sideways(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    """Tables may scroll sideways on a phone, but at 1280 px an admin reaches every button
    and link (Exclude a rater, open a batch) without scrolling a table first."""
    world = await seed_world(committed_engine)
    problems: dict[str, Any] = {}
    async for path, page in every_page(browser, live_server, world, viewport=DESKTOP):
        await page.evaluate(OPEN_ALL_DETAILS)
        hidden = await page.evaluate(HIDDEN_IN_SCROLL_BOX)
        if hidden:
            problems[path] = hidden
    assert problems == {}


# The tables of people whose rows carry an admin's controls (Exclude, Remove, Deactivate,
# Withdraw): on a phone each row is a card, so its buttons are on screen with its name.
PEOPLE_TABLES = ("Members", "All users", "Pending invites")


async def test_on_a_phone_the_tables_of_people_keep_their_buttons_on_screen(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    world = await seed_world(committed_engine)
    viewport = {"width": 360, "height": PHONE_HEIGHT}
    context = await browser.new_context(viewport=viewport, has_touch=True, is_mobile=True)
    page = await context.new_page()
    await log_in_as(page, live_server, world.admin_email)
    problems: dict[str, Any] = {}
    seen = 0
    for path in (f"/admin/projects/{world.project_id}", "/admin/users"):
        await page.goto(f"{live_server}{path}")
        for name in PEOPLE_TABLES:
            region = page.get_by_role("region", name=f"Table: {name}")
            if not await region.count():
                continue
            buttons = region.get_by_role("button")
            for index in range(await buttons.count()):
                box = await buttons.nth(index).bounding_box()
                assert box is not None
                seen += 1
                if box["x"] < 0 or box["x"] + box["width"] > viewport["width"] + 0.5:
                    label = await buttons.nth(index).inner_text()
                    problems.setdefault(f"{path} {name}", []).append(label)
    await context.close()
    assert seen >= 10  # 5 members x 2 buttons, at least
    assert problems == {}


@pytest.mark.parametrize("viewport", [DESKTOP, {"width": 390, "height": PHONE_HEIGHT}])
async def test_axe_finds_nothing_on_any_page(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, viewport: dict[str, int]
) -> None:
    world = await seed_world(committed_engine)
    problems: dict[str, Any] = {}
    # bypass_csp: axe is injected as a script the page's CSP would otherwise refuse.
    async for path, page in every_page(
        browser, live_server, world, viewport=viewport, bypass_csp=True
    ):
        violations = await axe_violations(page)
        if violations:
            problems[path] = violations
    assert problems == {}
