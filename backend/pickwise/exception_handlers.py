"""The error base class mapped to HTTP, once: JSON for /api/, an HTML page for the rest."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from psycopg import errors as pg_errors
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pickwise.core.errors import (
    DatabaseUnavailable,
    InvalidInput,
    NotAuthenticated,
    PickwiseError,
    TransientConflict,
)
from pickwise.web.templating import render

logger = logging.getLogger(__name__)
# Retryable answers (503) and how soon to retry, in seconds.
RETRY_AFTER = {DatabaseUnavailable: "5", TransientConflict: "1"}


class ErrorRead(BaseModel):
    """Every API error: the error's class name and what went wrong. A 422 adds `errors`
    (the problems one by one); an import rejection adds `error_count` as well."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str
    field: str | None = Field(
        None,
        description="The input the error is about, when it is about one; `detail` starts "
        "with it too.",
    )


# Documented on every /api/ operation, so the schema describes the error bodies clients get
# (FastAPI's default 422 schema, a list of pydantic errors, is not what the handler sends).
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorRead, "description": description}
    for status, description in (
        (400, "The request cannot be handled as sent."),
        (401, "No login, or the API token is invalid, expired or revoked."),
        (403, "The caller may not do this (for example: admins only)."),
        (404, "No such object, or none the caller may see."),
        (409, "The request conflicts with the current state."),
        (422, "Invalid input; `errors` lists the problems."),
        (
            503,
            "The database is unavailable (DatabaseUnavailable), or the request collided with "
            "a concurrent one and was undone (TransientConflict); nothing was stored. Retry "
            "after Retry-After seconds.",
        ),
    )
}


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def browser_page(request: Request) -> bool:
    """A page asked for by a browser (its Accept names HTML): errors the framework raises
    before any route runs (no such path, a method the path does not take) get the site's
    error page rather than a bare JSON body laid out as text."""
    return wants_html(request) and "text/html" in request.headers.get("accept", "")


_FRAMEWORK_DETAILS = {
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not browser_page(request):
        return await http_exception_handler(request, exc)
    detail = _FRAMEWORK_DETAILS.get(exc.status_code, str(exc.detail))
    return render(
        request,
        "error.html",
        {"status_code": exc.status_code, "detail": detail, "error": "HTTPException"},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def handle_pickwise_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PickwiseError)
    if wants_html(request):
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return render(
            request,
            "error.html",
            {"status_code": exc.status_code, "detail": exc.detail, "error": type(exc).__name__},
            status_code=exc.status_code,
        )
    body = exc.body()
    retry_after = RETRY_AFTER.get(type(exc))
    headers = {"Retry-After": retry_after} if retry_after else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


# SQLSTATE class 40 (transaction rollback): Postgres undid the transaction so that others
# could go on. psycopg's classes for them do not share a base, so the code decides.
_TRANSIENT = {"40P01": "deadlock detected", "40001": "could not serialize access"}


async def handle_database_down(request: Request, exc: Exception) -> Response:
    """An OperationalError is the database being unreachable, except for the rollbacks of
    class 40: the database is fine, this transaction lost a race and can be sent again."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if sqlstate.startswith("40"):
        what = _TRANSIENT.get(sqlstate, f"transaction rolled back, SQLSTATE {sqlstate}")
        logger.warning("transient conflict on %s %s: %s", request.method, request.url.path, what)
        return await handle_pickwise_error(request, TransientConflict(what))
    return await handle_pickwise_error(request, DatabaseUnavailable())


async def handle_unstorable_value(request: Request, exc: Exception) -> Response:
    """A value the request carried that Postgres cannot hold is the client's mistake (422),
    not a server error: an id or number beyond its column's range, or text with a NUL
    character (which psycopg refuses before sending, so that error has no SQLSTATE)."""
    assert isinstance(exc, DataError)
    cause = exc.orig
    if isinstance(cause, pg_errors.NumericValueOutOfRange) or (
        isinstance(cause, pg_errors.DataError) and cause.sqlstate is None
    ):
        problem = InvalidInput(
            "A value in the request cannot be stored: a number is out of range "
            "or a text contains a NUL character."
        )
        return await handle_pickwise_error(request, problem)
    raise exc


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"] if part != "body")
        problems.append(f"{location}: {error['msg']}")
    if browser_page(request):
        return await handle_pickwise_error(request, InvalidInput("; ".join(problems)))
    return JSONResponse(
        {"error": "InvalidInput", "detail": "; ".join(problems), "errors": problems},
        status_code=422,
    )


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PickwiseError, handle_pickwise_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(OperationalError, handle_database_down)
    app.add_exception_handler(PoolTimeoutError, handle_database_down)
    app.add_exception_handler(DataError, handle_unstorable_value)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
