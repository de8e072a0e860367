"""Integer codes for judgment choices and the three preference labels used for agreement.

A choice's code is its position in the `Choice` vocabulary (the values the database allows).
Choices are relative to the pair's canonical response A / B, never to the screen position.
"""

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import BoolArray, IntArray, as_int_array
from pickwise.vocabulary import Choice

CHOICE_NAMES: tuple[Choice, ...] = tuple(Choice)
CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BOTH_BAD = (
    CHOICE_NAMES.index(choice) for choice in (Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD)
)
NO_GOLD = -1

# Agreement, Krippendorff's alpha and Dawid-Skene work on three nominal labels. "Both bad"
# states no preference between the two answers, so it shares the label of a tie.
PREFER_A, NO_PREFERENCE, PREFER_B = range(3)
N_PREFERENCE_LABELS = 3

_PREFERENCE_OF = {
    Choice.A: PREFER_A,
    Choice.B: PREFER_B,
    Choice.TIE: NO_PREFERENCE,
    Choice.BOTH_BAD: NO_PREFERENCE,
}
_PREFERENCE_OF_CHOICE = np.array([_PREFERENCE_OF[choice] for choice in CHOICE_NAMES])


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
