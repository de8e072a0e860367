"""The order routers are included in (app.py) decides only how fast a route is found, never
which: every route is the first one its own path and method match."""

from typing import Any

from fastapi import FastAPI
from starlette.routing import Match

from pickwise.web.templating import _every_route


def _sample_path(route: Any) -> str:
    params = {name: 7 for name in getattr(route, "param_convertors", {})}
    if "path" in params:
        params["path"] = "css/rate.css"
    return str(route.url_path_for(route.name, **params))


def _first_match(routes: list[Any], path: str, method: str) -> Any:
    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
    return next(route for route in routes if route.matches(scope)[0] == Match.FULL)


def test_every_route_is_reached_by_its_own_path(app: FastAPI) -> None:
    routes = list(_every_route(app.router.routes))
    checked = 0
    for route in routes:
        methods = getattr(route, "methods", None)
        if not methods:
            continue  # mounts (static files)
        path = _sample_path(route)
        for method in methods - {"HEAD"}:
            found = _first_match(routes, path, method)
            assert found is route, f"{method} {path}: {route.name} is hidden by {found.name}"
            checked += 1
    assert checked > 100


# The routers a rating page's answer may be tried against first: the health probes, the rater
# loop's API and the conversations' (app.py says why those go first); then its own.
TRIED_BEFORE_THE_RATING_PAGE = {
    "pickwise.health.router",
    "pickwise.assignments.router",
    "pickwise.judgments.router",
    "pickwise.conversations.router",
    "pickwise.web.rating",  # its own routes before the form's
}


def test_a_rating_form_is_matched_right_after_the_rater_loop_and_conversations(
    app: FastAPI,
) -> None:
    """Each answer on the rating page is a request matched against every route before its
    own: behind the other pages' and the admin API's routers (70 routes) it paid ~0.1 ms a
    judgment more than the API's judgment (8)."""
    routes = list(_every_route(app.router.routes))
    path = str(app.url_path_for("rate_submit", project_id=7, assignment_id=7))
    found = _first_match(routes, path, "POST")
    tried = routes[: routes.index(found)]
    # The app's own routes (the API docs, the static files' mount) aside.
    modules = {route.endpoint.__module__ for route in tried if hasattr(route, "endpoint")}
    assert modules - {"fastapi.applications", "pickwise.app"} <= TRIED_BEFORE_THE_RATING_PAGE
    assert found.endpoint.__module__ == "pickwise.web.rating"
