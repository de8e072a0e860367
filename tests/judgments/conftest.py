from collections.abc import Iterator

import pytest

from pickwise.assignments.service import chance
from pickwise.core import clock


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    """The test clock at real time (tests move it), and the same left sides every run."""
    clock.reset()
    chance.seed(11)
    yield
    clock.reset()
