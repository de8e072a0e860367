"""`url_path` (the pages' and templates' url_for) gives the app's own paths."""

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from pickwise.web.templating import _every_route, url_path


def sample_params(route: Any) -> dict[str, Any]:
    convertors = getattr(route, "param_convertors", {})
    return {name: "a/b.css" if name == "path" else 7 for name in convertors}


def test_every_named_route_gets_the_path_the_app_gives(app: FastAPI) -> None:
    request = Request({"type": "http", "app": app, "headers": [], "path": "/"})
    named = [route for route in _every_route(app.router.routes) if getattr(route, "name", None)]
    assert len(named) > 100  # the pages and the API, through FastAPI's included routers

    for route in named:
        params = sample_params(route)
        assert url_path(request, route.name, **params) == app.url_path_for(route.name, **params)
    # Asked again (the route now known), and for a mount's file.
    assert url_path(request, "rate_page", project_id=3) == "/rate/3"
    assert url_path(request, "static", path="css/rate.css") == "/static/css/rate.css"
