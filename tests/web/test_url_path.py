"""`url_path` (the pages' and templates' url_for) gives the app's own paths."""

import os
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.requests import Request

from pickwise.core.config import get_settings
from pickwise.web import templating
from pickwise.web.templating import (
    TEMPLATES_DIR,
    _every_route,
    templates,
    url_path,
    watch_template_files,
)


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


def test_the_templates_url_path_is_url_for_s_path(app: FastAPI) -> None:
    """Templates link with `url_path(...)`: the same path as `url_for(...).path` (under a
    root path too), without building an absolute URL."""
    globals_ = templates.env.globals
    for root_path in ("", "/under", "/under/"):
        scope = {
            "type": "http",
            "app": app,
            "headers": [(b"host", b"example.test")],
            "path": "/",
            "root_path": root_path,
            "scheme": "https",
            "server": ("example.test", 443),
            "query_string": b"",
        }
        context = {"request": Request(scope)}
        for name, params in (
            ("rate_page", {"project_id": 3}),
            ("rate_flag", {"project_id": 3, "assignment_id": 41}),
            ("static", {"path": "css/rate.css"}),
        ):
            expected = globals_["url_for"](context, name, **params).path
            assert globals_["url_path"](context, name, **params) == expected
            assert expected.endswith(str(url_path(context["request"], name, **params)))


@pytest.mark.parametrize(
    ("environment", "watched"), [("development", True), ("test", False), ("production", False)]
)
def test_template_files_are_watched_in_development_only(environment: str, watched: bool) -> None:
    file = TEMPLATES_DIR / "rate" / "summary.html"
    stat = file.stat()
    try:
        watch_template_files(environment)
        assert templates.env.auto_reload is watched
        page = templates.env.get_template("rate/summary.html")
        # The file looks changed (its time only): loaded again only when watched.
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert (templates.env.get_template("rate/summary.html") is page) is not watched
    finally:
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        watch_template_files(get_settings().environment)


def test_a_path_asked_again_is_not_made_again(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rating page asks for the same ~10 paths on every page: each is made once per app
    (the route's url_path_for checks and converts every parameter), and kept within a bound
    (paths with an assignment's id are new on every page)."""
    made: list[str] = []
    url_path_for = type(app).url_path_for

    def counted(self: FastAPI, name: str, /, **params: Any) -> Any:
        made.append(name)
        return url_path_for(self, name, **params)

    # Paths made through the app itself, not the route found once (counted the same).
    monkeypatch.setattr(templating, "_route_named", lambda *_: None)
    monkeypatch.setattr(type(app), "url_path_for", counted)
    request = Request({"type": "http", "app": app, "headers": [], "path": "/"})
    for _ in range(3):  # projects no other test asks about
        assert url_path(request, "rate_page", project_id=90301) == "/rate/90301"
        assert url_path(request, "rate_page", project_id=90302) == "/rate/90302"
    assert made == ["rate_page", "rate_page"]

    monkeypatch.setattr(templating, "KEPT_PATHS", 5)
    for assignment_id in range(20):
        path = url_path(request, "rate_flag", project_id=3, assignment_id=assignment_id)
        assert path == f"/rate/3/assignments/{assignment_id}/flag"
    assert len(app.state.paths) <= 5
