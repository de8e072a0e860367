from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from pickwise.core.errors import DatabaseUnavailable, NotAuthenticated, PickwiseError


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


async def handle_pickwise_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PickwiseError)
    if wants_html(request):
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        from pickwise.web.templating import render

        return render(
            request,
            "error.html",
            {"status_code": exc.status_code, "detail": exc.detail, "error": type(exc).__name__},
            status_code=exc.status_code,
        )
    body = {"error": type(exc).__name__, "detail": exc.detail, **exc.extra}
    headers = {"Retry-After": "5"} if isinstance(exc, DatabaseUnavailable) else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def handle_database_down(request: Request, exc: Exception) -> Response:
    return await handle_pickwise_error(request, DatabaseUnavailable())


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"] if part != "body")
        problems.append(f"{location}: {error['msg']}")
    return JSONResponse(
        {"error": "InvalidInput", "detail": "; ".join(problems), "errors": problems},
        status_code=422,
    )


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PickwiseError, handle_pickwise_error)
    app.add_exception_handler(OperationalError, handle_database_down)
    app.add_exception_handler(PoolTimeoutError, handle_database_down)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
