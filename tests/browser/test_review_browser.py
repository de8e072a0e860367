"""An admin reviews in real Chromium: filter the pairs, open one, adjudicate it, export the
selection; axe finds nothing serious, and the pages fit a phone with 44 px tap targets."""

import json
import os
import zipfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.review_seed import ReviewSetup, seed_review_project
from tests.browser.test_rating_browser import serious_violations
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
MIN_TAP = 44
NARROW_WIDTHS = (320, 390)


def shot(tmp_path: Path, name: str) -> str:
    """docs/screenshots/<name>.png when PICKWISE_SCREENSHOTS=1, else a throwaway file."""
    if os.environ.get("PICKWISE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return str(SCREENSHOTS / f"{name}.png")
    return str(tmp_path / f"{name}.png")


async def log_in(page: Page, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Log in").click()


# Controls too small to hit with a finger, and whether anything overflows the page sideways.
LAYOUT_PROBLEMS = """
(minTap) => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    problems.push(`page is ${doc.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  const targets = document.querySelectorAll(
    "a, button, select, textarea, summary, input:not([type=hidden])");
  for (const element of targets) {
    let box = element;
    if (element.matches("input[type=checkbox], input[type=radio]")) {
      box = element.closest("label") || element;
    }
    const rect = box.getBoundingClientRect();
    if (rect.width === 0 && rect.height === 0) continue;  // not rendered
    if (element.closest(".skip-link, .md")) continue;  // off-screen until focused; model text
    if (rect.height < minTap - 0.5) {
      const name = (element.innerText || element.name || element.id || element.tagName).trim();
      const tag = element.tagName.toLowerCase();
      problems.push(`${tag} "${name.slice(0, 40)}" is ${rect.height.toFixed(0)}px high`);
    }
  }
  return problems;
}
"""


async def layout_problems(page: Page) -> list[str]:
    return list(await page.evaluate(LAYOUT_PROBLEMS, MIN_TAP))


async def test_filter_open_adjudicate_and_export(
    browser: Browser, live_server: str, committed_engine: AsyncEngine, tmp_path: Path
) -> None:
    setup: ReviewSetup = await seed_review_project(committed_engine)
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, live_server, setup.admin_email)
    explorer = f"{live_server}/admin/projects/{setup.project_id}/pairs"
    await page.goto(explorer)
    await expect(page.get_by_role("heading", name="Pairs", exact=True)).to_be_visible()
    await page.screenshot(path=shot(tmp_path, "review-explorer"), full_page=True)
    assert await serious_violations(page) == []

    # Filter: disputed pairs, lowest agreement first. The filter ends up in the URL.
    await page.get_by_label("disputed").check()
    await page.get_by_label("Sort").select_option("agreement_low")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Apply").click()
    assert "status=disputed" in page.url and "sort=agreement_low" in page.url
    await expect(page.get_by_role("status")).to_contain_text("2 pairs match")
    links = page.locator(".pair-link")
    await expect(links).to_have_count(2)
    await page.screenshot(path=shot(tmp_path, "review-explorer-filtered"), full_page=True)
    assert await serious_violations(page) == []

    # Open the first; j goes to the next pair of the same listing, k back.
    first = await links.first.inner_text()
    async with page.expect_navigation():
        await links.first.click()
    await expect(page.get_by_role("heading", name=f"Pair {first}")).to_be_visible()
    await page.locator("h1").click()
    async with page.expect_navigation():
        await page.keyboard.press("j")
    second = await page.locator("h1").inner_text()
    assert second != f"Pair {first}"
    async with page.expect_navigation():
        await page.keyboard.press("k")
    await expect(page.locator("h1")).to_have_text(f"Pair {first}")
    await expect(page.locator("#votes")).to_contain_text("A answers the question")
    assert await serious_violations(page) == []

    # Adjudicate: A is better.
    await page.get_by_label("A is better").check()
    await page.get_by_label("Note").fill("B changes the subject.")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Record decision").click()
    await expect(page.get_by_role("status")).to_contain_text("Decision recorded")
    await expect(page.locator("#adjudication")).to_contain_text("Current decision: A is better")
    await page.screenshot(path=shot(tmp_path, "review-pair"), full_page=True)

    # Back to the listing, and export it: the decided pair comes out as decided.
    async with page.expect_navigation():
        await page.get_by_role("link", name="Back to the list").click()
    assert "status=disputed" in page.url
    async with page.expect_navigation():
        await page.get_by_role("link", name="Export this selection").click()
    await expect(page.locator("#selection-title")).to_be_visible()
    await expect(page.get_by_text("Status: disputed")).to_be_visible()
    assert await serious_violations(page) == []
    await page.get_by_label("Test split").fill("0")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Preview counts").click()
    # Two disputed pairs, 6 votes: the decided one is kept, the other has no majority.
    preview = page.locator("section[aria-live]")
    await expect(preview).to_contain_text("from 6 votes")
    await expect(preview).to_contain_text("no_majority")
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Export and download").click()
    archive = tmp_path / "export.zip"
    await (await download_info.value).save_as(archive)
    rows = trl_rows(archive)
    # The pair decided "A is better" (votes A, B, tie: no majority) exports with A chosen.
    assert {"prompt": "What is the capital of Australia?", "chosen": "Canberra."} in [
        {"prompt": row["prompt"], "chosen": row["chosen"]} for row in rows
    ]
    await context.close()


def trl_rows(archive: Path) -> list[dict[str, object]]:
    with zipfile.ZipFile(archive) as bundle:
        return [
            json.loads(line)
            for name in bundle.namelist()
            if name.endswith(".jsonl")
            for line in bundle.read(name).decode().splitlines()
        ]


@pytest.mark.parametrize("width", NARROW_WIDTHS)
async def test_review_pages_fit_a_phone(
    browser: Browser,
    live_server: str,
    committed_engine: AsyncEngine,
    tmp_path: Path,
    width: int,
) -> None:
    setup = await seed_review_project(committed_engine)
    context = await browser.new_context(viewport={"width": width, "height": 844}, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, live_server, setup.admin_email)
    base = f"{live_server}/admin/projects/{setup.project_id}"
    pages = {
        "explorer": f"{base}/pairs?status=complete",
        "pair": f"{base}/pairs/{setup.disputed_pair_ids[0]}",
        "rater": f"{base}/raters/{setup.rater_ids[0]}",
        "export": f"{base}/export?status=disputed",
    }
    problems = []
    for name, url in pages.items():
        await page.goto(url)
        problems += [f"{name}: {problem}" for problem in await layout_problems(page)]
        problems += [f"{name}: axe {v}" for v in await serious_violations(page)]
        if width == 390:
            await page.screenshot(path=shot(tmp_path, f"review-{name}-phone"))
    assert problems == [], "\n".join(problems)
    await context.close()
