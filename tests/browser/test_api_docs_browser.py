"""Swagger UI at /api/docs in Chromium: it renders with the CSP on and no outside requests,
and its Authorize button takes an API token that the operations then send."""

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.auth import service as auth_service
from tests.factories import make_project, make_user

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


async def test_authorize_with_an_api_token_then_try_an_operation(
    browser: Browser, live_server: str, committed_engine: AsyncEngine
) -> None:
    async with AsyncSession(committed_engine, expire_on_commit=False) as session:
        admin = await make_user(session, role="admin")
        project = await make_project(session)
        project.name = "Seen through Swagger"
        token, _ = await auth_service.create_api_token(session, admin, "swagger")
        await session.commit()
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await page.goto(f"{live_server}/api/docs")
    await page.locator(".swagger-ui .btn.authorize").first.click()
    dialog = page.locator(".swagger-ui .dialog-ux")
    await expect(dialog).to_contain_text("API token")
    await dialog.locator("input").first.fill(token)
    await dialog.locator("button.modal-btn.authorize").click()
    await expect(dialog).to_contain_text("Authorized")
    await dialog.locator("button.btn-done").click()

    operation = page.locator("#operations-projects-list_projects_api_v1_projects_get")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()
    # The request carried the token: the admin's projects came back.
    await expect(
        operation.locator(".responses-table .response .response-col_status").first
    ).to_have_text("200")
    await expect(operation.locator(".responses-inner")).to_contain_text("Seen through Swagger")
    await expect(operation.locator(".curl")).to_contain_text("Authorization: Bearer pw_")
    await context.close()
