from collections.abc import Iterator

import pytest

from pickwise.assignments.service import chance
from pickwise.core import clock


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    """The test clock at real time, and the same left sides and gold draws every run."""
    clock.reset()
    chance.seed(7)
    yield
    clock.reset()
