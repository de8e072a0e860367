import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.datastructures import URL, URLPath
from starlette.routing import NoMatchFound

from pickwise import vocabulary
from pickwise.core.resources import FRONTEND_PACKAGE, package_folder

FRONTEND_DIR = package_folder(FRONTEND_PACKAGE)
TEMPLATES_DIR = FRONTEND_DIR / "templates"
STATIC_DIR = FRONTEND_DIR / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# Forms list the values (and their labels) from the one definition of each vocabulary.
templates.env.globals["vocabulary"] = vocabulary


def _route_named(app: Any, name: str) -> Any:
    """The route called `name`, found once per app (kept in its state): the app's url_path_for
    walks every route (and every included router) on each call, 0.2–0.3 ms here, and a rating
    page asks for ~10 paths."""
    found: dict[str, Any] | None = getattr(app.state, "routes_by_name", None)
    if found is None:
        found = app.state.routes_by_name = {}
    if name not in found:
        routes = _every_route(app.router.routes)
        found[name] = next((each for each in routes if getattr(each, "name", None) == name), None)
    return found[name]


def _every_route(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes, with those of included routers (FastAPI's lazily included ones too)."""
    for route in routes:
        included = getattr(route, "effective_route_contexts", None)
        yield from included() if included is not None else (route,)


# The paths made, per app: a rating page shows ~10 links and form actions, most of them the
# same for every page of the project (the route's url_path_for checks and converts each
# parameter each time). Bounded: paths with an assignment's id are new on every page.
KEPT_PATHS = 4096


def url_path(request: Request, name: str, /, **params: Any) -> URLPath:
    """`request.app.url_path_for(name, **params)`, with the route looked up once and the path
    kept."""
    app: Starlette = request.app
    kept: dict[tuple[Any, ...], URLPath] | None = getattr(app.state, "paths", None)
    if kept is None:
        kept = app.state.paths = {}
    key = (name, *params.items())
    path = kept.get(key)
    if path is None:
        if len(kept) >= KEPT_PATHS:
            kept.clear()
        path = kept[key] = _url_path_of(app, name, params)
    return path


def _url_path_of(app: Starlette, name: str, params: dict[str, Any]) -> URLPath:
    route = _route_named(app, name)
    if route is not None:
        try:
            found: URLPath = route.url_path_for(name, **params)
            return found
        except NoMatchFound:
            pass
    return app.url_path_for(name, **params)


@pass_context
def _url_for(context: dict[str, Any], name: str, /, **params: Any) -> URL:
    """The templates' url_for (Starlette's, through `url_path`)."""
    request: Request = context["request"]
    return url_path(request, name, **params).make_absolute_url(base_url=request.base_url)


@pass_context
def _url_path(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """A route's path, for links and form actions within the site: `url_for(...).path`
    without building (and parsing again) the absolute URL, a few µs per link on every page."""
    request: Request = context["request"]
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + url_path(request, name, **params)


templates.env.globals["url_for"] = _url_for
templates.env.globals["url_path"] = _url_path

_WORD_ENDS = re.compile(r"(?<=[_\-./])")


def wrap_points(name: str) -> Markup:
    """A file name that may break after `_`, `-`, `.` and `/` (its "words") rather than in
    the middle of one, so a long name wraps instead of widening the page."""
    return Markup("<wbr>").join(escape(part) for part in _WORD_ENDS.split(name))


templates.env.filters["wrap_points"] = wrap_points


def watch_template_files(environment: str) -> None:
    """Template edits show without a restart in development only: elsewhere Jinja would
    stat each template file (a page has five) on every render to see whether it changed."""
    templates.env.auto_reload = environment == "development"


# The pages a rater loads judgment after judgment, and the pages they extend.
RATER_TEMPLATES = ("rate/", "base.html")


def compile_rater_templates() -> None:
    """Compiles the rating pages now (~80 ms, rate/pair.html about half), not on the first
    rater's request: each worker process keeps its own compiled templates."""
    for name in templates.env.list_templates(filter_func=lambda n: n.startswith(RATER_TEMPLATES)):
        templates.env.get_template(name)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    ctx = {"csp_nonce": getattr(request.state, "csp_nonce", "")}
    ctx.update(context or {})
    return templates.TemplateResponse(
        request=request, name=name, context=ctx, status_code=status_code, headers=headers
    )
