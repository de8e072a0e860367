import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from pickwise import __version__
from pickwise.analytics.router import router as analytics_router
from pickwise.assignments.router import router as next_pair_router
from pickwise.auth.router import router as auth_router
from pickwise.batches.router import router as batches_router
from pickwise.batches.search_catchup import running_catch_up
from pickwise.conversations.generation import generator
from pickwise.conversations.router import router as conversations_router
from pickwise.core.background import listening
from pickwise.core.config import get_settings
from pickwise.core.db import dispose_engines
from pickwise.core.logging import RequestContextMiddleware, configure_logging
from pickwise.core.metrics import MetricsMiddleware
from pickwise.core.middleware import LoadSheddingMiddleware, SecurityHeadersMiddleware
from pickwise.core.wakeups import SEARCH_CATCH_UP_CHANNEL, WEBHOOKS_CHANNEL
from pickwise.exception_handlers import API_ERROR_RESPONSES, register_exception_handlers
from pickwise.exports.router import router as exports_router
from pickwise.generation.router import router as generation_router
from pickwise.health.router import router as health_router
from pickwise.judgments.router import router as judgments_router
from pickwise.pools.router import router as pools_router
from pickwise.projects.router import router as projects_router
from pickwise.review.router import router as review_router
from pickwise.users.router import router as users_router
from pickwise.web.account import router as account_router
from pickwise.web.admin_projects import router as admin_projects_router
from pickwise.web.admin_users import router as admin_users_router
from pickwise.web.conversations_admin import router as conversations_admin_router
from pickwise.web.converse import router as converse_pages_router
from pickwise.web.dashboard import router as dashboard_router
from pickwise.web.explorer import router as explorer_router
from pickwise.web.exports_page import router as exports_page_router
from pickwise.web.integrations import router as integrations_page_router
from pickwise.web.pages import router as pages_router
from pickwise.web.pair_page import router as pair_page_router
from pickwise.web.participants import router as participant_pages_router
from pickwise.web.rating import router as rating_page_router
from pickwise.web.templating import STATIC_DIR, compile_rater_templates, watch_template_files
from pickwise.webhooks.router import router as webhooks_router
from pickwise.webhooks.worker import running_worker


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves, the webhook worker sends deliveries and the search catch-up makes
    imported answers searchable, in the background, woken by notifications of new work on one
    listening connection; at the end they stop, and that connection and the connection pools
    (database, model endpoints) are closed."""
    # Each worker process builds for itself what requests then reuse: done here, before it
    # serves, rather than by the first requests of each kind (the first rating page of a new
    # worker took ~0.2 s of CPU more than the next, in the window raters and benches see).
    build_included_routes(app)
    compile_rater_templates()
    # What importing and building the app made (some 200,000 objects) lives as long as the
    # process: frozen, the garbage collector never scans it again. A full collection under
    # load took 0.2-0.4 s of CPU, a pause for every request in flight; frozen, about 0.05 s.
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *thresholds[1:])
    try:
        async with (
            listening([WEBHOOKS_CHANNEL, SEARCH_CATCH_UP_CHANNEL]) as listener,
            running_worker(wake=listener.wake(WEBHOOKS_CHANNEL)),
            running_catch_up(wake=listener.wake(SEARCH_CATCH_UP_CHANNEL)),
        ):
            yield
    finally:
        gc.set_threshold(*thresholds)
        await generator.close()
        await dispose_engines()


# A request's objects die young, freed as soon as it ends, and count towards a collection of
# the youngest generation only while they live. At Python's default (700 more allocations than
# frees) the paced rater loop's requests in flight set one off every ~7 judgments, and with
# them the older generations' (23 in 2 minutes, and a full one, 20-30 ms under load, a pause
# for every request in flight). At 7,000 the same run made 2 young collections and no other:
# GC time ~0.25 ms a judgment before, ~0.01 after (docs/benchmarks.md, "i27c"). What leaks
# into cycles is still collected, only later.
YOUNG_GC_THRESHOLD = 7_000


def build_included_routes(app: FastAPI) -> None:
    """FastAPI (0.16x) makes an included router's routes (each one's dependency graph and
    pydantic adapters) the first time a request is matched against that router: ~0.2 s of
    CPU for the routers tried before the rating page's. Walking the routes makes them all."""
    for route in app.router.routes:
        routes = getattr(route, "effective_route_contexts", None)
        if routes is not None:
            for _ in routes():
                pass


def create_app() -> FastAPI:
    configure_logging()
    watch_template_files(get_settings().environment)
    app = FastAPI(
        title="pickwise",
        version=__version__,
        description="Collect human pairwise preferences for reward-model and DPO training.",
        # /api/docs is served below from vendored files, so the CSP can stay strict.
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    _add_api_docs(app)
    register_exception_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(LoadSheddingMiddleware, limit=get_settings().max_requests_in_flight)
    # Every log line of the request carries its id, the shed 503 included.
    app.add_middleware(RequestContextMiddleware)
    # Outermost of ours, so the shed 503 carries the security headers too.
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        # Liveness and readiness probes: two plain paths, cheap to try first.
        health_router,
        # A request is tried against every route of the routers before its own: the rater
        # loop's routes come next (after six routers, matching a judgment cost ~0.3 ms of
        # CPU, 5-7 % of the request), then those a hundred streaming conversations send their
        # events, votes and messages through (matching them last cost ~0.5 ms a request),
        # then the rating page's, each of whose answers is a request (from sixteenth place,
        # behind 70 routes, matching a form took ~0.19 ms; the API's judgment ~0.04).
        # tests/core/test_route_order.py checks no route hides another.
        next_pair_router,
        judgments_router,
        conversations_router,
        rating_page_router,
        conversations_admin_router,
        auth_router,
        users_router,
        projects_router,
        batches_router,
        exports_router,
        analytics_router,
        pages_router,
        converse_pages_router,
        exports_page_router,
        dashboard_router,
        admin_projects_router,
        admin_users_router,
        account_router,
        # Integrations (issue 8).
        pools_router,
        participant_pages_router,
        integrations_page_router,
        generation_router,
        webhooks_router,
        # Review and curation (issue 17).
        review_router,
        explorer_router,
        pair_page_router,
    ):
        api = router.prefix.startswith("/api/")
        app.include_router(router, responses=API_ERROR_RESPONSES if api else None)
    return app


SWAGGER_STATIC = "/static/swagger-ui"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def _add_api_docs(app: FastAPI) -> None:
    """Swagger UI from `frontend/static/swagger-ui` (swagger-ui-dist, vendored): no CDN and no
    inline script, so it renders under the nonce CSP and without internet access."""

    @app.get("/api/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        openapi_url = escape(app.openapi_url or "", quote=True)
        return HTMLResponse(
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(app.title)} API</title>\n"
            f'<link rel="stylesheet" href="{SWAGGER_STATIC}/swagger-ui.css">\n'
            f'<link rel="icon" type="image/png" href="{SWAGGER_STATIC}/favicon-32x32.png">\n'
            "</head>\n<body>\n"
            f'<div id="swagger-ui" data-openapi-url="{openapi_url}" '
            f'data-oauth2-redirect-url="{OAUTH2_REDIRECT_URL}"></div>\n'
            f'<script src="{SWAGGER_STATIC}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{SWAGGER_STATIC}/pickwise-init.js"></script>\n'
            "</body>\n</html>\n"
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def api_docs_oauth2_redirect() -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html>\n<html lang="en">\n<body>\n'
            f'<script src="{SWAGGER_STATIC}/oauth2-redirect.js"></script>\n</body>\n</html>\n'
        )
