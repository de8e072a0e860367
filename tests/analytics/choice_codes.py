"""Choices as the analytics read them (codes), from choice strings: the tests' own reference
for what the SQL in analytics.repository encodes."""

from collections.abc import Iterable

import numpy as np

from pickwise.analytics.arrays import BoolArray, IntArray, as_int_array
from pickwise.analytics.labels import CHOICE_NAMES


def encode_choices(choices: Iterable[str]) -> IntArray:
    """Map choice strings ("a", "b", "tie", "both_bad") to choice codes; unknown names raise."""
    code_of = {name: code for code, name in enumerate(CHOICE_NAMES)}
    return as_int_array([code_of[choice] for choice in choices])


def encode_a_shown_left(left_sides: Iterable[str]) -> BoolArray:
    """True where response A was shown on the left ("a"), False where B was ("b")."""
    sides = list(left_sides)
    unknown = set(sides) - {"a", "b"}
    if unknown:
        raise ValueError(f"left side must be 'a' or 'b', got {sorted(unknown)}")
    return np.array([side == "a" for side in sides], dtype=np.bool_)
