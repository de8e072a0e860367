"""Untrusted text on every page, in real headless Chromium: no payload ever runs.

Every user-supplied text of a live server's data is an XSS payload (tests/security/payloads,
placed by tests/security/untrusted_data). Each page that shows them is opened as its real
reader, twice: once as served, and once with the page's Content-Security-Policy switched off,
so the escaping and the markdown sanitizer are tested on their own, not only the CSP.

A payload that ran would set `window.__xss` (watched from an init script), open a dialog
(alert/confirm/prompt are replaced, and dialogs are caught), log "xss" to the console, or
request something from another origin (every request is watched). Beyond execution, the
page's DOM must hold no element or attribute that could run script later (event handler
attributes, javascript: or data: URLs, frames, foreign scripts or styles); with the CSP on,
the page must cause no CSP violation (an injected inline script or handler would). And each
payload must be on the page: verbatim wherever it is shown as text (so it was escaped, not
parsed), or by its marker where it went through markdown.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, FilePayload, Page
from sqlalchemy.ext.asyncio import AsyncEngine

from pickwise.auth.deps import SESSION_COOKIE
from tests.security.payloads import PAYLOADS
from tests.security.untrusted_data import (
    COMPLETION,
    FELLOW_NAMES,
    LABELS_PER_PROJECT,
    MAIN_NAME,
    MODEL_NAMES,
    PARTICIPANT_NAME,
    RATER_NAME,
    URL_BREAKERS,
    UntrustedSite,
    seed_untrusted_site,
)

pytestmark = pytest.mark.browser

ALL_TEXTS = tuple(p.text for p in PAYLOADS)
ALL_MARKERS = tuple(p.marker for p in PAYLOADS)
# The import form shows the first 100 problems of a rejected file.
SHOWN_IMPORT_PROBLEMS = 100

WATCH = """
window.__xss = false;
window.__violations = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = () => { window.__xss = "called " + name; };
}
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""

AUDIT = """
() => {
  const problems = [];
  const sameOrigin = (url) => {
    try { return new URL(url, location.href).origin === location.origin; }
    catch { return false; }
  };
  const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href", "data",
    "background", "poster", "srcset", "dynsrc", "lowsrc", "codebase", "ping", "values", "to"]);
  const FORBIDDEN = new Set(["iframe", "frame", "frameset", "object", "embed", "applet",
    "portal", "base", "template", "xmp", "plaintext", "noscript", "isindex", "marquee",
    "math", "img", "image", "video", "audio", "source", "picture", "foreignobject",
    "animate", "set", "use"]);
  for (const element of document.querySelectorAll("*")) {
    const tag = element.localName.toLowerCase();
    for (const attribute of element.attributes) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value.replace(/[\\u0000-\\u0020]+/g, "").toLowerCase();
      if (name.startsWith("on")) problems.push(`<${tag}> with ${name}`);
      if (name === "style" || name === "srcdoc") problems.push(`<${tag}> with ${name}`);
      const isFavicon = tag === "link" && element.rel === "icon" && value === "data:,";
      if (URL_ATTRIBUTES.has(name) && /^(javascript|vbscript|data):/.test(value) && !isFavicon) {
        problems.push(`<${tag} ${name}="${attribute.value.slice(0, 60)}">`);
      }
    }
    if (FORBIDDEN.has(tag)) problems.push(`<${tag}>`);
    if (tag === "script") {
      const ours = element.src && sameOrigin(element.src)
        && new URL(element.src).pathname.startsWith("/static/");
      if (!ours) problems.push(`foreign <script>: ${element.outerHTML.slice(0, 80)}`);
    }
    if (tag === "style" && !element.nonce) problems.push("<style> without the page's nonce");
    if (tag === "meta" && element.httpEquiv) problems.push("<meta http-equiv>");
    if (tag === "link" && element.rel !== "icon"
        && !(element.rel === "stylesheet" && sameOrigin(element.href))) {
      problems.push(`<link rel=${element.rel} href=${element.href}>`);
    }
    if (tag === "form" && element.hasAttribute("action") && !sameOrigin(element.action)) {
      problems.push(`<form action=${element.action}>`);
    }
  }
  const values = [...document.querySelectorAll("input, textarea")].map((e) => e.value);
  return {
    problems,
    text: document.documentElement.textContent + "\\n" + values.join("\\n"),
    xss: window.__xss,
    violations: window.__violations,
  };
}
"""


@dataclass(frozen=True)
class Visit:
    """A page, who reads it, and which payloads it must show."""

    name: str
    reader: str  # "rater", "admin" or "participant"
    path: str
    verbatim: tuple[str, ...] = ()  # shown as escaped text: exactly as typed
    markers: tuple[str, ...] = ()  # went through markdown: at least the marker survives


@dataclass
class Watcher:
    """What the browser saw that only running script (or a leak) could cause."""

    origin: str
    events: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", self._request)
        context.on("page", self._page)

    def _page(self, page: Page) -> None:
        page.on("dialog", self._dialog)
        page.on("console", lambda message: self._console(message.text))
        page.on("pageerror", lambda error: self.events.append(f"page error: {error}"))

    def _request(self, request: Any) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url.startswith("data:")):
            self.events.append(f"request to {url}")

    async def _dialog(self, dialog: Any) -> None:
        self.events.append(f"dialog {dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def _console(self, text: str) -> None:
        if "xss" in text.lower():
            self.events.append(f"console: {text}")

    def take(self) -> list[str]:
        events, self.events = self.events, []
        return events


def visits(site: UntrustedSite) -> list[Visit]:
    main = site.main_project_id
    everyone = (*ALL_TEXTS, MAIN_NAME.text)
    pages = [
        Visit("rater home", "rater", "/", verbatim=(*everyone, RATER_NAME.text)),
        Visit(
            "rating page",
            "rater",
            f"/rate/{main}",
            verbatim=(MAIN_NAME.text, *(p.text for p in PAYLOADS[:30])),
            markers=ALL_MARKERS,
        ),
        Visit("guidelines", "rater", f"/rate/{main}/guidelines", markers=ALL_MARKERS),
        Visit("summary", "rater", f"/rate/{main}/summary", verbatim=(MAIN_NAME.text,)),
        Visit("rater's tokens", "rater", "/account/tokens", verbatim=ALL_TEXTS),
        Visit(
            "completion page",
            "participant",
            f"/participants/{main}/done",
            verbatim=(COMPLETION.text, PARTICIPANT_NAME.text),
        ),
        Visit("admin home", "admin", "/", verbatim=everyone),
        Visit(
            "admin project page",
            "admin",
            f"/admin/projects/{main}",
            # Description, labels, batch files, members and candidates, flag notes.
            verbatim=(*everyone, RATER_NAME.text, PARTICIPANT_NAME.text),
        ),
        Visit("users page", "admin", "/admin/users", verbatim=everyone),
        Visit(
            "dashboard",
            "admin",
            f"/admin/projects/{main}/dashboard",
            verbatim=(
                MAIN_NAME.text,
                PARTICIPANT_NAME.text,
                PAYLOADS[0].text,  # the batch's file name, in the agreement table
                *(p.text for p in FELLOW_NAMES),
                *(p.text for p in MODEL_NAMES),
            ),
        ),
        Visit("export page", "admin", f"/admin/projects/{main}/export", verbatim=everyone),
        Visit(
            "integrations page",
            "admin",
            f"/admin/projects/{main}/integrations",
            verbatim=(*everyone, *URL_BREAKERS),
        ),
    ]
    for number, project_id in enumerate(site.label_project_ids):
        chunk = PAYLOADS[number * LABELS_PER_PROJECT : (number + 1) * LABELS_PER_PROJECT]
        pages.append(
            Visit(
                f"rating page with labels {number}",
                "rater",
                f"/rate/{project_id}",
                verbatim=tuple(p.text for p in chunk),
            )
        )
    return pages


@pytest.fixture
async def site(committed_engine: AsyncEngine) -> UntrustedSite:
    return await seed_untrusted_site(committed_engine)


@pytest.fixture(params=[True, False], ids=["csp-on", "csp-off"])
async def contexts(
    request: pytest.FixtureRequest, browser: Browser, live_server: str, site: UntrustedSite
) -> AsyncIterator[tuple[dict[str, BrowserContext], Watcher, bool]]:
    """One browser context per reader, logged in with their session cookie."""
    csp = bool(request.param)
    watcher = Watcher(live_server)
    cookies = {
        "rater": site.rater_cookie,
        "admin": site.admin_cookie,
        "participant": site.participant_cookie,
    }
    opened: dict[str, BrowserContext] = {}
    try:
        for reader, cookie in cookies.items():
            context = await browser.new_context(bypass_csp=not csp)
            await context.add_init_script(WATCH)
            # As the login sets it: HttpOnly, so no script could read it anyway.
            await context.add_cookies(
                [
                    {
                        "name": SESSION_COOKIE,
                        "value": cookie,
                        "url": live_server,
                        "httpOnly": True,
                        "sameSite": "Lax",
                    }
                ]
            )
            watcher.attach(context)
            opened[reader] = context
        yield opened, watcher, csp
    finally:
        for context in opened.values():
            await context.close()


async def audit(page: Page, visit: Visit, watcher: Watcher, csp: bool) -> list[str]:
    found: dict[str, Any] = await page.evaluate(AUDIT)
    problems = [*found["problems"], *watcher.take()]
    if found["xss"] is not False:
        problems.append(f"window.__xss = {found['xss']!r}")
    if csp and found["violations"]:
        problems.append(f"CSP violations: {sorted(set(found['violations']))}")
    text = found["text"]
    problems += [f"not shown verbatim: {t[:60]!r}" for t in visit.verbatim if t not in text]
    problems += [f"marker missing: {m}" for m in visit.markers if m not in text]
    return [f"{visit.name} ({page.url}): {problem}" for problem in problems]


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    page.set_default_timeout(30_000)
    response = await page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, (url, response and response.status)
    return page


def import_file_with_payload_fields() -> bytes:
    """A file whose every line has a payload as an unknown field name: the rejection lists
    each one back to the admin."""
    answers = [{"model": "m", "content": "a"}, {"model": "n", "content": "b"}]
    lines = [
        json.dumps({"id": p.marker, "prompt": "q", "responses": answers, p.text: 1})
        for p in PAYLOADS
    ]
    return ("\n".join(lines) + "\n").encode()


async def test_no_payload_runs_on_any_page(
    contexts: tuple[dict[str, BrowserContext], Watcher, bool], live_server: str, site: UntrustedSite
) -> None:
    readers, watcher, csp = contexts
    failures: list[str] = []
    for visit in visits(site):
        page = await open_page(readers[visit.reader], live_server + visit.path)
        failures += await audit(page, visit, watcher, csp)
        await page.close()

    # A refused choice shows the rater's reason again, in the textarea.
    page = await open_page(readers["rater"], f"{live_server}/rate/{site.main_project_id}")
    async with page.expect_navigation():
        await page.evaluate(
            """(reason) => {
                const form = document.getElementById("choice-form");
                form.querySelector("textarea[name=rationale]").value = reason;
                const choice = Object.assign(document.createElement("input"),
                    {type: "hidden", name: "choice", value: "left"});
                form.append(choice);
                form.submit();  // skips rate.js, which would stop a choice without a strength
            }""",
            "\n".join(ALL_TEXTS),
        )
    refused = Visit("refused choice", "rater", "", verbatim=ALL_TEXTS)
    failures += await audit(page, refused, watcher, csp)
    await page.close()

    # A rejected import names every bad field, and the fields are payloads.
    page = await open_page(readers["admin"], f"{live_server}/admin/projects/{site.main_project_id}")
    await page.set_input_files(
        "#file",
        files=[
            FilePayload(
                name="payloads.jsonl",
                mimeType="application/x-ndjson",
                buffer=import_file_with_payload_fields(),
            )
        ],
    )
    async with page.expect_navigation():
        await page.locator("#import button[type=submit]").click()
    shown = tuple(p.text for p in PAYLOADS[:SHOWN_IMPORT_PROBLEMS])
    failures += await audit(
        page, Visit("rejected import", "admin", "", verbatim=shown), watcher, csp
    )
    await page.close()

    assert not failures, "\n".join(failures)
