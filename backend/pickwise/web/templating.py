import re
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from pickwise import vocabulary
from pickwise.core.resources import FRONTEND_PACKAGE, package_folder

FRONTEND_DIR = package_folder(FRONTEND_PACKAGE)
TEMPLATES_DIR = FRONTEND_DIR / "templates"
STATIC_DIR = FRONTEND_DIR / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# Forms list the values (and their labels) from the one definition of each vocabulary.
templates.env.globals["vocabulary"] = vocabulary

_WORD_ENDS = re.compile(r"(?<=[_\-./])")


def wrap_points(name: str) -> Markup:
    """A file name that may break after `_`, `-`, `.` and `/` (its "words") rather than in
    the middle of one, so a long name wraps instead of widening the page."""
    return Markup("<wbr>").join(escape(part) for part in _WORD_ENDS.split(name))


templates.env.filters["wrap_points"] = wrap_points


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {"csp_nonce": getattr(request.state, "csp_nonce", "")}
    ctx.update(context or {})
    return templates.TemplateResponse(
        request=request, name=name, context=ctx, status_code=status_code
    )
