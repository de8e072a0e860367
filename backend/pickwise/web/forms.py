"""What the HTML forms share: reading fields, naming problems per field, redirecting after a
successful POST (303, with a fixed notice key in the query string, never free text)."""

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from pickwise.core.errors import PickwiseError

# Where a problem that is about no single input is shown.
WHOLE_FORM = "form"


def form_text(form: FormData, name: str) -> str:
    """A text input's value; "" when it is missing or is a file."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first problem per field, keyed by the field's name."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else WHOLE_FORM
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and name == "slug":
            message = "use lower-case letters, digits and dashes, starting with a letter or digit"
        errors.setdefault(name, message)
    return errors


def error_by_field(exc: PickwiseError, fields: Iterable[str]) -> dict[str, str]:
    """A service's refusal beside the input it names; the whole form's when it names none of
    the form's inputs."""
    if exc.field is not None and exc.field in fields:
        return {exc.field: exc.message}
    return {WHOLE_FORM: exc.detail}


def problems(exc: ValidationError) -> list[str]:
    """Each problem as one line, led by where it is ("quota: ...")."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def redirect_to(
    request: Request, route: str, query: dict[str, Any] | None = None, **params: Any
) -> RedirectResponse:
    path = str(request.app.url_path_for(route, **{k: str(v) for k, v in params.items()}))
    if query:
        path += "?" + urlencode(query)
    return RedirectResponse(path, status_code=303)
