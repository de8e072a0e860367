"""Every dependency of every route is async. FastAPI runs a plain `def` dependency in its
thread pool: a thread hop (two context switches, the GIL passed back and forth) on every
request that uses it, which on a busy worker is a wait for a thread to be scheduled. The
units of work (`get_units`) were one, on the rater loop's submit and on every live
conversation request, including the path to a reply's first token."""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from pickwise.app import create_app


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(included.routes)


def _is_async(call: Any) -> bool:
    if inspect.isfunction(call) or inspect.ismethod(call) or inspect.isclass(call):
        return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
    method = type(call).__call__  # an instance, such as fastapi.security.HTTPBearer()
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def _sync_dependencies(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not _is_async(sub.call):
            yield getattr(sub.call, "__qualname__", repr(sub.call))
        yield from _sync_dependencies(sub)


def test_no_route_depends_on_a_plain_function() -> None:
    routes = list(_routes(create_app().routes))
    assert len(routes) > 100  # the walk reaches the included routers' routes
    found = {
        f"{sorted(route.methods)[0]} {route.path}: {name}"
        for route in routes
        for name in _sync_dependencies(route.dependant)
    }
    assert not found, sorted(found)[:10]
