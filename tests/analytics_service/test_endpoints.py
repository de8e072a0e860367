"""The JSON endpoints return exactly what the pure statistics functions give on the same
votes, read back independently through the ORM."""

import math

import numpy as np
import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.agreement import agreement_by_group, group_agreement
from pickwise.analytics.bradley_terry import bradley_terry_leaderboard
from pickwise.analytics.flags import assess_raters
from pickwise.analytics.labels import preference_labels
from pickwise.analytics.style_control import style_controlled_leaderboard, style_counts
from pickwise.analytics.text_features import ChoiceRecord
from tests.analytics.choice_codes import encode_choices
from tests.analytics.preference_reference import preferences_report
from tests.analytics_service.helpers import crowd_project, rater_judgments, user_ids, votes_of


def close(reported: float | None, expected: float, tolerance: float = 1e-9) -> bool:
    if reported is None:
        return math.isnan(expected)
    return math.isclose(reported, expected, rel_tol=tolerance, abs_tol=tolerance)


async def test_progress_and_timeline(client: AsyncClient, session: AsyncSession) -> None:
    setup = await crowd_project(client, session)
    progress = (await client.get(setup.url("progress"), headers=setup.admin_headers)).json()
    assert progress["pairs_done"] == 60
    assert progress["pairs_open"] == progress["pairs_in_progress"] == 0
    assert progress["share_done"] == 1.0
    assert progress["judgments"] == 180
    assert progress["gold_judgments"] == 30
    assert progress["raters_active"] == 5
    assert progress["models"] == 4
    days = (await client.get(setup.url("timeline"), headers=setup.admin_headers)).json()["days"]
    # Votes fall on every other day; the quiet days in between are there with zeros.
    assert [day["day"] for day in days] == [f"2026-03-0{n}" for n in range(2, 7)]
    assert [day["judgments"] for day in days] == [60, 0, 60, 0, 60]
    assert sum(day["gold_judgments"] for day in days) == 30


async def test_raters_match_rater_quality(client: AsyncClient, session: AsyncSession) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    ids = await user_ids(session, setup.project_id)
    assessment = assess_raters(
        rater_judgments(await votes_of(session, setup.project_id), ids), len(ids)
    )
    quality, flags = assessment.quality, assessment.flags
    comparisons = quality.comparisons
    rows = {row["user_id"]: row for row in body["raters"]}
    assert set(rows) == set(ids)
    for index, user_id in enumerate(ids):
        row = rows[user_id]
        assert row["judgments"] == quality.pace.judgments[index]
        assert row["gold_total"] == quality.gold.total[index] == 6
        assert close(row["gold_accuracy"], quality.gold.accuracy[index])
        assert close(row["gold_lower"], quality.gold.lower[index])
        assert close(row["gold_upper"], quality.gold.upper[index])
        assert close(row["majority_agreement"], quality.majority.share[index])
        assert close(row["left_share"], quality.position.left_share[index])
        assert close(row["position_p_value"], quality.position.p_value[index])
        assert close(row["median_seconds"], quality.pace.median_seconds[index], 1e-6)
        assert row["fast_count"] == quality.pace.fast_count[index]
        assert close(row["tie_rate"], quality.tie_rate[index])
        assert close(row["dawid_skene_accuracy"], quality.dawid_skene_accuracy[index])
        assert close(row["agreement_with_others"], comparisons.agreement.observed[index])
        assert close(row["agreement_expected"], comparisons.agreement.expected[index])
        assert close(row["longer_share"], comparisons.longer_picks.observed[index])
        assert close(row["longer_share_expected"], comparisons.longer_picks.expected[index])
        assert [flag["code"] for flag in row["flags"]] == [f.code for f in flags[index]]
        for shown, flag in zip(row["flags"], flags[index], strict=True):
            assert shown["detail"] == flag.detail and shown["test"] == flag.test
            assert shown["label"] == flag.code.label
            assert shown["judgments"] == flag.judgments
            assert close(shown["observed"], flag.observed)
            assert close(shown["expected"], flag.expected)
            if flag.p_value is not None:
                assert close(shown["p_value"], flag.p_value)
        assert "@" not in str(row)  # never an email
    assert body["fast_threshold_seconds"] == body["thresholds"]["min_median_seconds"] == 5.0


async def test_rater_flags_catch_the_left_clicker(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    rows = {row["user_id"]: row for row in body["raters"]}
    clicker = rows[setup.left_clicker_id]
    assert {"position_bias", "too_fast"} <= {flag["code"] for flag in clicker["flags"]}
    assert clicker["left_share"] == 1.0
    assert body["raters"][0]["user_id"] == setup.left_clicker_id  # flagged first
    for rater_id in setup.good_rater_ids:
        assert "position_bias" not in {flag["code"] for flag in rows[rater_id]["flags"]}
    assert body["thresholds"]["overridden"] == {}


async def test_quality_rules_override_thresholds(
    client: AsyncClient, session: AsyncSession
) -> None:
    rules = {
        "min_median_seconds": 1.5,
        "max_position_bias": 0.6,
        "colour": 3,
        "comparison_p_value": "x",
        "min_dawid_skene_accuracy": 0.5,  # a rule that no longer exists
    }
    setup = await crowd_project(client, session, quality_rules=rules)
    body = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    assert body["thresholds"]["min_median_seconds"] == 1.5
    # The judgments counted as fast are those under the same limit.
    assert body["fast_threshold_seconds"] == 1.5
    assert body["thresholds"]["comparison_p_value"] == 0.005  # the default: "x" is no number
    assert body["thresholds"]["overridden"] == {"min_median_seconds": 1.5, "max_position_bias": 0.6}
    assert body["thresholds"]["ignored_rules"] == [
        "colour",
        "comparison_p_value",
        "min_dawid_skene_accuracy",
    ]
    clicker = next(r for r in body["raters"] if r["user_id"] == setup.left_clicker_id)
    # A left share of 1.0 is a bias of 0.5, within the relaxed 0.6; 1-2 s is over 1.5 s half
    # the time, so the median may or may not flag, but position bias cannot.
    assert "position_bias" not in {flag["code"] for flag in clicker["flags"]}


async def test_agreement_matches_group_agreement(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("agreement"), headers=setup.admin_headers)).json()
    assert body["ready"] is True
    kept = [v for v in await votes_of(session, setup.project_id) if not v.is_gold]
    items = np.array([v.pair_id for v in kept])
    labels = preference_labels(encode_choices(v.choice for v in kept))
    expected = group_agreement(items, labels)
    project = body["project"]
    assert project["judgments"] == 180 and project["items"] == 60
    assert project["rater_pairs_with_ties"] == expected.with_ties.rater_pairs == 180
    assert project["agreeing_pairs_with_ties"] == expected.with_ties.agreeing_pairs
    assert project["agreeing_pairs_without_ties"] == expected.without_ties.agreeing_pairs
    assert close(project["krippendorff_alpha"], expected.krippendorff_alpha)
    by_batch = agreement_by_group([v.batch_id for v in kept], items, labels)
    assert [b["batch_id"] for b in body["batches"]] == list(by_batch)
    assert body["batches"][0]["filename"] == "battles.jsonl"
    # Each pair has 3 raters = 3 rater pairs, each counted for both of its raters.
    assert sum(r["rater_pairs_with_ties"] for r in body["raters"]) == 2 * 180
    clicker = next(r for r in body["raters"] if r["user_id"] == setup.left_clicker_id)
    # The random clicker lowers agreement: alpha rises once their votes are taken out.
    assert clicker["alpha_without_rater"] > project["krippendorff_alpha"]
    for row in body["raters"]:
        others = [v for v in kept if v.rater_id != row["user_id"]]
        alpha = group_agreement(
            [v.pair_id for v in others], preference_labels(encode_choices(v.choice for v in others))
        ).krippendorff_alpha
        assert close(row["alpha_without_rater"], alpha)


async def test_leaderboard_matches_bradley_terry_and_style_control(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("leaderboard"), headers=setup.admin_headers)).json()
    assert body["ready"] is True and body["bootstrap_rounds"] == 200
    kept = [v for v in await votes_of(session, setup.project_id) if not v.is_gold]
    models = sorted({v.model_a for v in kept} | {v.model_b for v in kept})
    index = {model: position for position, model in enumerate(models)}
    model_a = [index[v.model_a] for v in kept]
    model_b = [index[v.model_b] for v in kept]
    choices = encode_choices(v.choice for v in kept)
    expected = bradley_terry_leaderboard(model_a, model_b, choices, len(models))
    style = style_controlled_leaderboard(
        model_a,
        model_b,
        choices,
        len(models),
        style_counts([v.text_a for v in kept]),
        style_counts([v.text_b for v in kept]),
    )
    assert body["votes"] == 180
    for row in body["models"]:
        i = index[row["model"]]
        assert close(row["score"], expected.scores[i])
        assert close(row["lower"], expected.lower[i])
        assert close(row["upper"], expected.upper[i])
        assert row["rank"] == expected.ranks[i]
        assert row["votes"] == expected.votes[i]
        assert close(row["score_style_controlled"], style.scores_with_style_control[i], 1e-5)
    order = [index[row["model"]] for row in body["models"]]
    for r, i in enumerate(order):
        for c, j in enumerate(order):
            assert close(body["win_rate"][r][c], expected.win_rate[i, j])
    coefficients = {c["feature"]: c for c in body["style_coefficients"]}
    for k, feature in enumerate(style.feature_names):
        assert close(coefficients[feature]["coefficient"], style.style_coefficients[k], 1e-5)
        assert close(coefficients[feature]["lower"], style.coefficient_lower[k], 1e-4)


async def test_leaderboard_order_on_a_clear_cut_project(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("leaderboard"), headers=setup.admin_headers)).json()
    assert [row["model"] for row in body["models"]] == ["alpha", "beta", "gamma", "delta"]
    scores = [row["score"] for row in body["models"]]
    assert math.isclose(sum(scores) / 4, 1000.0)
    assert body["models"][0]["rank"] == 1
    assert body["models"][-1]["rank"] > 1
    for row in body["models"]:
        assert row["lower"] <= row["score"] <= row["upper"]


@pytest.mark.parametrize("one_rater", [False, True])
async def test_preferences_match_preferences_report(
    client: AsyncClient, session: AsyncSession, one_rater: bool
) -> None:
    setup = await crowd_project(client, session)
    kept = [v for v in await votes_of(session, setup.project_id) if not v.is_gold]
    params = {"batch_id": kept[0].batch_id}
    if one_rater:
        params["rater_id"] = setup.good_rater_ids[1]
        kept = [v for v in kept if v.rater_id == params["rater_id"]]
    response = await client.get(
        setup.url("preferences"), params=params, headers=setup.admin_headers
    )
    body = response.json()
    assert body["ready"] is True, body
    records = [ChoiceRecord(v.prompt, v.text_a, v.text_b, v.choice, v.left_side) for v in kept]
    expected = preferences_report(records)
    assert body["judgments"] == expected.judgments
    assert close(body["held_out_accuracy"], expected.held_out_accuracy)
    assert close(body["baseline_accuracy"], expected.baseline_accuracy)
    for reported, weight in zip(body["weights"], expected.weights, strict=True):
        assert reported["name"] == weight.name
        assert close(reported["weight"], weight.weight, 1e-6)
        assert close(reported["upper"], weight.upper, 1e-6)


async def test_preferences_of_another_batch_are_empty(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    kept = [v for v in await votes_of(session, setup.project_id) if not v.is_gold]
    response = await client.get(
        setup.url("preferences"),
        params={"batch_id": kept[0].batch_id + 1000},
        headers=setup.admin_headers,
    )
    body = response.json()
    assert body["ready"] is False and body["judgments"] == 0
    assert body["message"].startswith("Not enough data yet")
