"""Integer codes for judgment choices and the three preference labels used for agreement.

Choice codes follow the order of ``pickwise.models.rating.CHOICES`` ("a", "b", "tie",
"both_bad"); a test keeps the two in step. Choices are relative to the pair's canonical
response A / B, never to the screen position.
"""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import BoolArray, IntArray, as_int_array

CHOICE_NAMES = ("a", "b", "tie", "both_bad")
CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BOTH_BAD = range(4)
NO_GOLD = -1

# Agreement, Krippendorff's alpha and Dawid-Skene work on three nominal labels. "Both bad"
# states no preference between the two answers, so it shares the label of a tie.
PREFER_A, NO_PREFERENCE, PREFER_B = range(3)
PREFERENCE_NAMES = ("A", "tie", "B")
N_PREFERENCE_LABELS = 3

_PREFERENCE_OF_CHOICE = np.array([PREFER_A, PREFER_B, NO_PREFERENCE, NO_PREFERENCE])


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


def preference_labels(choice_codes: npt.ArrayLike) -> IntArray:
    """Choice codes to the three preference labels (A / tie / B)."""
    return as_int_array(_PREFERENCE_OF_CHOICE[as_int_array(choice_codes)])


def picked_left(choice_codes: npt.ArrayLike, a_shown_left: npt.ArrayLike) -> BoolArray:
    """Whether each judgment picked the left answer (meaningful only for A or B choices)."""
    codes = as_int_array(choice_codes)
    a_left = np.asarray(a_shown_left, dtype=np.bool_)
    return np.asarray((codes == CHOICE_A) == a_left, dtype=np.bool_)


def is_decisive(choice_codes: npt.ArrayLike) -> BoolArray:
    """A or B was chosen (no tie, no both-bad)."""
    codes = as_int_array(choice_codes)
    return np.asarray((codes == CHOICE_A) | (codes == CHOICE_B), dtype=np.bool_)
