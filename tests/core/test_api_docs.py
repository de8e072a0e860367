"""`/api/docs` works offline and under the CSP: every asset is ours, no inline script."""

import re

from httpx import AsyncClient

from pickwise.web.templating import STATIC_DIR

OPENAPI_URL = "/api/openapi.json"


async def test_swagger_ui_page_and_its_assets_are_served_by_pickwise(client: AsyncClient) -> None:
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    html = page.text
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    # No inline script: every <script> has a src on this site.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {
        "swagger-ui-bundle.js",
        "pickwise-init.js",
        "swagger-ui.css",
    }
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    openapi_url = re.search(r'data-openapi-url="([^"]+)"', html)
    assert openapi_url is not None
    schema = await client.get(openapi_url.group(1))
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "pickwise"


async def test_oauth2_redirect_page_has_no_inline_script(client: AsyncClient) -> None:
    page = await client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert '<script src="/static/swagger-ui/oauth2-redirect.js"></script>' in page.text
    assert (await client.get("/static/swagger-ui/oauth2-redirect.js")).status_code == 200


def test_the_vendored_swagger_ui_loads_nothing_from_elsewhere() -> None:
    folder = STATIC_DIR / "swagger-ui"
    init = (folder / "pickwise-init.js").read_text()
    assert "validatorUrl: null" in init  # the default badge would call validator.swagger.io
    css = (folder / "swagger-ui.css").read_text()
    assert "sourceMappingURL" not in css and "@import" not in css


async def test_every_api_operation_declares_the_api_token(client: AsyncClient) -> None:
    """Swagger UI sends the token it was given (Authorize) only to operations that declare the
    scheme: every /api/ operation does, whatever dependency finds its caller."""
    document = (await client.get(OPENAPI_URL)).json()
    assert "API token" in document["components"]["securitySchemes"]
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in operations.items()
        if {"API token": []} not in operation.get("security", [])
    ]
    assert missing == []
