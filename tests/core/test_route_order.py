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
