from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pickwise import __version__
from pickwise.assignments.router import router as rating_router
from pickwise.auth.router import router as auth_router
from pickwise.batches.router import router as batches_router
from pickwise.core.exception_handlers import register_exception_handlers
from pickwise.core.middleware import SecurityHeadersMiddleware
from pickwise.exports.router import router as exports_router
from pickwise.health.router import router as health_router
from pickwise.projects.router import router as projects_router
from pickwise.users.router import router as users_router
from pickwise.web.exports_page import router as exports_page_router
from pickwise.web.pages import router as pages_router
from pickwise.web.templating import STATIC_DIR


def create_app() -> FastAPI:
    app = FastAPI(
        title="pickwise",
        version=__version__,
        description="Collect human pairwise preferences for reward-model and DPO training.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    register_exception_handlers(app)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        health_router,
        auth_router,
        users_router,
        projects_router,
        batches_router,
        exports_router,
        rating_router,
        pages_router,
        exports_page_router,
    ):
        app.include_router(router)
    return app
