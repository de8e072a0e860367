import re

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.labels import (
    CHOICE_NAMES,
    NO_PREFERENCE,
    PREFER_A,
    PREFER_B,
    picked_left,
    preference_labels,
)
from tests.analytics.choice_codes import encode_a_shown_left, encode_choices


async def test_choice_codes_follow_the_database_choices(session: AsyncSession) -> None:
    """The codes cover exactly the choices the database's CHECK constraint allows, in order."""
    definition = await session.scalar(
        text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"),
        {"name": "ck_judgments_choice"},
    )
    assert definition is not None
    assert tuple(re.findall(r"'([^']+)'::character varying", definition)) == CHOICE_NAMES


def test_encoding_and_preference_labels() -> None:
    codes = encode_choices(["a", "b", "tie", "both_bad"])

    assert list(preference_labels(codes)) == [PREFER_A, PREFER_B, NO_PREFERENCE, NO_PREFERENCE]
    with pytest.raises(KeyError):
        encode_choices(["left"])


def test_left_picks_depend_on_the_side_shown() -> None:
    codes = encode_choices(["a", "a", "b", "b"])
    a_left = encode_a_shown_left(["a", "b", "a", "b"])

    np.testing.assert_array_equal(picked_left(codes, a_left), [True, False, False, True])
    with pytest.raises(ValueError):
        encode_a_shown_left(["left"])
