import numpy as np
import pytest

from pickwise.analytics.preference_model import PREFERENCE_FEATURES, fit_preference_model
from pickwise.analytics.text_features import ChoiceRecord
from tests.analytics.preference_reference import preference_design, preferences_report

INJECTED = {
    "length": 0.4,
    "lists": 0.3,
    "headings": 0.15,
    "code_blocks": 0.2,
    "hedging": -0.25,
    "refusal": -0.9,
    "apology": -0.2,
    "agreement": 0.35,
    "questions_back": -0.15,
    "left_position": 0.1,
}


def simulate_differences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    length = rng.normal(0.0, 1.0, n)  # log2 length ratio
    presence = rng.choice([-1.0, 0.0, 1.0], size=(n, 8), p=[0.2, 0.6, 0.2])
    left = rng.choice([-1.0, 1.0], n)
    design = np.column_stack([length, presence, left])
    weights = np.array([INJECTED[name] for name in PREFERENCE_FEATURES])
    chose_a = rng.random(n) < 1 / (1 + np.exp(-design @ weights))
    return design, chose_a, weights


def test_recovers_injected_weights_with_intervals() -> None:
    design, chose_a, weights = simulate_differences(50_000, seed=4)

    report = fit_preference_model(design, chose_a)

    recovered = np.array([weight.weight for weight in report.weights])
    print("recovered weights:", dict(zip(PREFERENCE_FEATURES, recovered.round(3), strict=True)))
    assert [weight.name for weight in report.weights] == list(PREFERENCE_FEATURES)
    np.testing.assert_array_equal(np.sign(recovered), np.sign(weights))
    np.testing.assert_allclose(recovered, weights, atol=0.05)
    covered = [
        w.lower <= truth <= w.upper for w, truth in zip(report.weights, weights, strict=True)
    ]
    assert sum(covered) >= 8
    print(
        f"held-out accuracy {report.held_out_accuracy:.3f}, baseline {report.baseline_accuracy:.3f}"
    )
    assert report.held_out_accuracy > report.baseline_accuracy + 0.1
    assert (report.judgments, report.folds) == (50_000, 5)


def test_held_out_accuracy_is_reproducible_with_a_seed() -> None:
    design, chose_a, _ = simulate_differences(2_000, seed=5)

    first = fit_preference_model(design, chose_a, seed=3)
    again = fit_preference_model(design, chose_a, seed=3)

    assert first.held_out_accuracy == again.held_out_accuracy


def test_a_feature_that_never_differs_has_no_weight() -> None:
    design, chose_a, _ = simulate_differences(2_000, seed=6)
    design[:, PREFERENCE_FEATURES.index("code_blocks")] = 0.0

    report = fit_preference_model(design, chose_a)

    code_blocks = report.weights[PREFERENCE_FEATURES.index("code_blocks")]
    assert np.isnan(code_blocks.weight) and np.isnan(code_blocks.lower)
    assert not np.isnan(report.weights[0].weight)


def test_design_rows_from_records() -> None:
    records = [
        ChoiceRecord(
            prompt="Is Python slow?",
            text_a="You're right, it might be.\n\n- point one\n- point two",
            text_b="Sorry, I can't help with that.",
            choice="a",
            left_side="b",
        ),
        ChoiceRecord(prompt="Hi", text_a="one", text_b="two", choice="tie", left_side="a"),
        ChoiceRecord(prompt="Hi", text_a="one", text_b="two three four", choice="b", left_side="a"),
    ]

    design, chose_a = preference_design(records)

    assert design.shape == (2, len(PREFERENCE_FEATURES))
    assert list(chose_a) == [True, False]
    first = dict(zip(PREFERENCE_FEATURES, design[0], strict=True))
    assert first["length"] == pytest.approx(np.log2((9 + 1) / (6 + 1)))
    assert (first["lists"], first["hedging"], first["agreement"]) == (1.0, 1.0, 1.0)
    assert (first["refusal"], first["apology"], first["left_position"]) == (-1.0, -1.0, -1.0)
    assert (first["headings"], first["code_blocks"], first["questions_back"]) == (0.0, 0.0, 0.0)
    assert dict(zip(PREFERENCE_FEATURES, design[1], strict=True))["left_position"] == 1.0


def test_end_to_end_from_texts_finds_the_simulated_taste() -> None:
    # Raters who like lists and dislike refusals, judging generated answers.
    rng = np.random.default_rng(8)
    records = []
    for index in range(3_000):
        traits = (rng.random((2, 2)) < 0.5).astype(int)  # per answer: has a list, refuses
        texts = [_answer(bool(has_list), bool(refuses), rng) for has_list, refuses in traits]
        score = 1.0 * (traits[0, 0] - traits[1, 0]) - 1.5 * (traits[0, 1] - traits[1, 1])
        chose_a = rng.random() < 1 / (1 + np.exp(-score))
        records.append(
            ChoiceRecord(
                prompt=f"Question {index}?",
                text_a=texts[0],
                text_b=texts[1],
                choice="a" if chose_a else "b",
                left_side="a" if rng.random() < 0.5 else "b",
            )
        )

    report = preferences_report(records)

    weights = {weight.name: weight for weight in report.weights}
    assert weights["lists"].weight == pytest.approx(1.0, abs=0.25)
    assert weights["refusal"].weight == pytest.approx(-1.5, abs=0.3)
    assert abs(weights["left_position"].weight) < 0.2  # position played no part
    assert np.isnan(weights["code_blocks"].weight)  # no answer had code


def _answer(has_list: bool, refuses: bool, rng: np.random.Generator) -> str:
    body = " ".join(["word"] * int(rng.integers(20, 40)))
    if refuses:
        body = "I can't help with that request. " + body
    return body + ("\n\n- first\n- second" if has_list else "")
