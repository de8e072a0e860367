"""The preference model over in-memory choice records: the tests' reference for what the
service computes from SQL (analytics.service builds the same design from the database)."""

from collections.abc import Sequence

from pickwise.analytics.arrays import BoolArray, FloatArray, as_bool_array
from pickwise.analytics.preference_model import (
    PreferenceModelReport,
    answer_properties,
    design_rows,
    fit_preference_model,
)
from pickwise.analytics.text_features import ChoiceRecord


def preference_design(records: Sequence[ChoiceRecord]) -> tuple[FloatArray, BoolArray]:
    """Feature differences (judgments × PREFERENCE_FEATURES) and chose-A, for A/B choices."""
    decisive = [record for record in records if record.choice in ("a", "b")]
    prompts = [record.prompt for record in decisive]
    design = design_rows(
        answer_properties([record.text_a for record in decisive], prompts),
        answer_properties([record.text_b for record in decisive], prompts),
        [record.left_side == "a" for record in decisive],
    )
    return design, as_bool_array([record.choice == "a" for record in decisive])


def preferences_report(
    records: Sequence[ChoiceRecord], *, folds: int = 5, seed: int = 0
) -> PreferenceModelReport:
    differences, chose_a = preference_design(records)
    return fit_preference_model(differences, chose_a, folds=folds, seed=seed)
