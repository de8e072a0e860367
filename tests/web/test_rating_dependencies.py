"""The rating page's answer routes (a choice, a skip, a flag, a change) have FastAPI solve two
dependencies a request: who answers, which opens the answer's unit of work and carries the
units, and the units (`get_units`, what tests override). FastAPI solves each declared
dependency and its own sub-dependencies on every request, even when its value is cached for
the request: the unit and the units declared again by the route made four (~25 µs of CPU
each; docs/benchmarks.md, "i33b", "i33d")."""

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from pickwise.web.rating import router


def _solved(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        yield getattr(sub.call, "__name__", type(sub.call).__name__)
        yield from _solved(sub)


def _route(endpoint: str) -> APIRoute:
    return next(
        route
        for route in router.routes
        if isinstance(route, APIRoute) and route.endpoint.__name__ == endpoint
    )


@pytest.mark.parametrize("endpoint", ["submit_judgment", "skip_pair", "flag_pair"])
def test_an_answer_solves_who_answers_and_the_units_only(endpoint: str) -> None:
    assert list(_solved(_route(endpoint).dependant)) == ["answering_with_claim", "get_units"]


@pytest.mark.parametrize("endpoint", ["change_judgment", "change_to_skip"])
def test_a_change_solves_who_answers_and_the_units_only(endpoint: str) -> None:
    assert list(_solved(_route(endpoint).dependant)) == ["answering", "get_units"]
