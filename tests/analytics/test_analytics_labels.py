import numpy as np
import pytest

from pickwise.analytics.labels import (
    CHOICE_NAMES,
    NO_PREFERENCE,
    PREFER_A,
    PREFER_B,
    encode_a_shown_left,
    encode_choices,
    picked_left,
    preference_labels,
)
from pickwise.models.rating import CHOICES


def test_choice_codes_follow_the_database_choices() -> None:
    assert CHOICE_NAMES == CHOICES


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
