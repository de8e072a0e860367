"""Swagger UI renders at /api/docs in Chromium with the CSP on and no outside requests."""

import pytest
from playwright.async_api import Browser

pytestmark = pytest.mark.browser


async def test_swagger_ui_renders_under_the_csp(browser: Browser, live_server: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server) else foreign.append(request.url)
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    await page.goto(f"{live_server}/api/docs")
    await page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert await page.locator(".swagger-ui .title").first.inner_text() != ""
    operations = await page.locator(".swagger-ui .opblock").count()
    assert operations > 20
    assert await page.evaluate("window.__csp") == []
    assert foreign == [] and errors == []
    await context.close()
