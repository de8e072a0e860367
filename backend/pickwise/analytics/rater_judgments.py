"""The per-judgment input of the rater measures: flat arrays, one entry per judgment."""

from dataclasses import dataclass

from pickwise.analytics.arrays import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class RaterJudgments:
    rater: IntArray
    item: IntArray
    choice: IntArray  # choice codes (labels.CHOICE_*), relative to canonical A / B
    a_shown_left: BoolArray
    seconds: FloatArray  # time from showing the pair to submitting
    gold_choice: IntArray  # CHOICE_A / CHOICE_B on gold pairs, NO_GOLD elsewhere
    # +1 where answer A is the longer one, −1 where B is, 0 where they are as long.
    a_longer: IntArray
