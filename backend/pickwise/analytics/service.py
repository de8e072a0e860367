"""Project analytics: the repository reads, the pure statistics modules compute, and the
results come back as the schemas that the API, the dashboard and ``pickwise report`` show.

Which votes count where:

* Gold pairs are quality checks. They give gold accuracy and anchor Dawid-Skene in the rater
  table, and count nowhere else: not in agreement, the leaderboard or the preferences.
* Excluded raters stay in the rater table, flags included, so an admin can see why they were
  excluded and include them again. Their votes are left out of agreement, the leaderboard and
  the preferences, as exports leave them out.
* Removed pairs count nowhere.

Per-project flag thresholds: a project's ``quality_rules`` JSON object may set any field of
``analytics.flags.FlagThresholds`` (``comparison_p_value``, ``max_position_bias``,
``position_p_value``, ``max_length_bias``, ``min_median_seconds``) to a number, e.g.
``{"min_median_seconds": 8}``. Other keys, and values that are not finite numbers, are
ignored; the rater report lists them under ``ignored_rules``.

The statistics are CPU-bound, so they run in a worker thread and never block the event loop.
"""

import asyncio
import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pickwise.analytics import repository
from pickwise.analytics.agreement import (
    GroupAgreement,
    agreement_by_group,
    agreement_with_majority,
    group_agreement,
    krippendorff_alpha_nominal,
    label_counts_per_item,
    pairwise_agreement,
)
from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array
from pickwise.analytics.bradley_terry import (
    BattleCounts,
    Leaderboard,
    counted_battles,
    leaderboard_from_battles,
)
from pickwise.analytics.flags import FlagReason, FlagThresholds, assess_raters
from pickwise.analytics.labels import PREFER_A, PREFER_B, preference_labels
from pickwise.analytics.preference_model import (
    PREFERENCE_FEATURES,
    PreferenceModelReport,
    answer_properties,
    design_rows,
    fit_preference_model,
)
from pickwise.analytics.rater_judgments import RaterJudgments
from pickwise.analytics.rater_quality import RaterQuality
from pickwise.analytics.schemas import (
    AgreementRead,
    AgreementStats,
    BatchAgreement,
    FeatureWeightRead,
    FlagRead,
    LeaderboardRead,
    ModelRow,
    OverlapProgress,
    PreferencesRead,
    ProgressRead,
    RaterAgreement,
    RaterRow,
    RatersRead,
    ReportRead,
    StyleCoefficient,
    ThresholdsRead,
    TimelineDay,
    TimelineRead,
    VotesPerPair,
)
from pickwise.analytics.style_control import (
    STYLE_FEATURES,
    StyleControlledLeaderboard,
    normalized_style_differences,
    separable_features,
    style_controlled_leaderboard_counts,
    style_counts,
)
from pickwise.assignments.repository import SlotCount, progress_of, slot_histogram
from pickwise.models import Project
from pickwise.overlap import service as overlap
from pickwise.overlap.repository import RaterWeightRow
from pickwise.overlap.weights import VoteWeights, vote_weights

BOOTSTRAP_ROUNDS = 200
# Below this many A-or-B votes the preference weights are mostly noise.
MIN_PREFERENCE_JUDGMENTS = 20
NOT_ENOUGH_DATA = "Not enough data yet"


def _number(value: float) -> float | None:
    """NaN and infinities become null: JSON has no NaN, and "no value" is what they mean."""
    return float(value) if math.isfinite(value) else None


# --- progress and timeline ---------------------------------------------------------------


async def progress(connection: AsyncConnection, project: Project) -> ProgressRead:
    async with AsyncSession(bind=connection) as session:
        histogram = await slot_histogram(session, project.id)
    pairs = progress_of(histogram)
    counts = await repository.judgment_counts(connection, project.id)
    active = pairs["pairs_done"] + pairs["pairs_in_progress"] + pairs["pairs_open"]
    return ProgressRead(
        **pairs,
        share_done=pairs["pairs_done"] / active if active else None,
        judgments=counts.judgments,
        gold_judgments=counts.gold_judgments,
        raters_active=counts.raters_active,
        models=counts.models,
        overlap=_overlap_progress(project, histogram),
    )


def _overlap_progress(project: Project, histogram: Sequence[SlotCount]) -> OverlapProgress:
    policy = overlap.policy_of(project)
    cost = overlap.cost(project, histogram)
    return OverlapProgress(
        policy=policy.settings(),
        summary=policy.describe(),
        votes_spent=cost.votes_spent,
        pairs_settled=cost.pairs_settled,
        pairs_settled_early=cost.pairs_settled_early,
        pairs_at_max=cost.pairs_at_max,
        votes_still_needed=cost.votes_still_needed,
        votes_saved=cost.votes_saved,
        votes_saved_projected=cost.votes_saved_projected,
        votes_per_pair=[
            VotesPerPair(votes=votes, pairs=pairs) for votes, pairs in cost.votes_per_pair.items()
        ],
    )


async def keep_vote_weights(
    session: AsyncSession, project: Project, computed: BaseModel, computed_at: datetime
) -> None:
    """A fresh report's rater weights become the ones adaptive overlap reads."""
    report = cast(ReportRead, computed)
    rows = [
        RaterWeightRow(row.user_id, row.vote_confusion, row.judgments)
        for row in report.raters.raters
    ]
    await overlap.store_weights(session, project.id, rows, computed_at)


async def timeline(connection: AsyncConnection, project_id: int) -> TimelineRead:
    """Judgments per UTC day, with the quiet days in between filled with zeros."""
    rows = await repository.judgments_per_day(connection, project_id)
    if not rows:
        return TimelineRead(days=[])
    by_day = {day: (regular, gold) for day, regular, gold in rows}
    first, last = rows[0][0], rows[-1][0]
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        regular, gold = by_day.get(day, (0, 0))
        days.append(TimelineDay(day=day, judgments=regular, gold_judgments=gold))
    return TimelineRead(days=days)


# --- raters ------------------------------------------------------------------------------


def flag_thresholds(rules: Mapping[str, Any]) -> tuple[FlagThresholds, dict[str, float], list[str]]:
    """Defaults overridden by the project's quality_rules; also which rules were ignored."""
    names = {field.name for field in dataclasses.fields(FlagThresholds)}
    overrides = {
        key: float(value)
        for key, value in rules.items()
        if key in names
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
    ignored = sorted(str(key) for key in rules if key not in overrides)
    return dataclasses.replace(FlagThresholds(), **overrides), overrides, ignored


def _rater_index(people: Sequence[repository.Person], rater_id: IntArray) -> IntArray:
    """Dense rater indices; ``people`` is in user id order and holds everyone who judged."""
    ids = as_int_array([person.user_id for person in people])
    return as_int_array(np.searchsorted(ids, rater_id))


def rater_judgments(
    table: repository.JudgmentTable, people: Sequence[repository.Person]
) -> RaterJudgments:
    return RaterJudgments(
        rater=_rater_index(people, table.rater_id),
        item=table.pair_id,
        choice=table.choice,
        a_shown_left=table.a_shown_left,
        seconds=table.seconds,
        gold_choice=table.gold_choice,
        a_longer=table.a_longer,
    )


def rater_report(
    table: repository.JudgmentTable,
    people: Sequence[repository.Person],
    quality_rules: Mapping[str, Any],
) -> RatersRead:
    """Every rater, excluded or not, measured on all their judgments (gold included)."""
    thresholds, overridden, ignored = flag_thresholds(quality_rules)
    judgments = rater_judgments(table, people)
    assessment = assess_raters(judgments, len(people), thresholds)
    quality, flags = assessment.quality, assessment.flags
    weights = vote_weights(
        judgments.rater,
        judgments.item,
        preference_labels(judgments.choice),
        quality.dawid_skene,
        len(people),
    )
    rows = [
        _rater_row(person, quality, weights, index, flags[index])
        for index, person in enumerate(people)
    ]
    rows.sort(key=lambda row: (not row.flags, -row.judgments, row.display_name, row.user_id))
    return RatersRead(
        raters=rows,
        thresholds=ThresholdsRead(
            **dataclasses.asdict(thresholds), overridden=overridden, ignored_rules=ignored
        ),
        fast_threshold_seconds=thresholds.min_median_seconds,
        flagged=sum(1 for row in rows if row.flags),
    )


def _flag_read(flag: FlagReason) -> FlagRead:
    return FlagRead(
        code=flag.code,
        label=flag.code.label,
        detail=flag.detail,
        test=flag.test,
        observed=_number(flag.observed),
        expected=_number(flag.expected),
        judgments=flag.judgments,
        p_value=None if flag.p_value is None else _number(flag.p_value),
    )


def _rater_row(
    person: repository.Person,
    quality: RaterQuality,
    weights: VoteWeights,
    index: int,
    flags: Sequence[FlagReason],
) -> RaterRow:
    gold, position, pace = quality.gold, quality.position, quality.pace
    comparisons = quality.comparisons
    confusion = [float(value) for value in weights.confusion[index]]
    return RaterRow(
        user_id=person.user_id,
        display_name=person.display_name,
        pseudonym=person.pseudonym,
        member=person.member,
        excluded=person.excluded,
        judgments=int(pace.judgments[index]),
        gold_correct=int(gold.correct[index]),
        gold_total=int(gold.total[index]),
        gold_accuracy=_number(gold.accuracy[index]),
        gold_lower=_number(gold.lower[index]),
        gold_upper=_number(gold.upper[index]),
        majority_agreed=int(quality.majority.agreed[index]),
        majority_eligible=int(quality.majority.eligible[index]),
        majority_agreement=_number(quality.majority.share[index]),
        left_picks=int(position.left_picks[index]),
        decisive=int(position.decisive[index]),
        left_share=_number(position.left_share[index]),
        position_p_value=_number(position.p_value[index]),
        median_seconds=_number(pace.median_seconds[index]),
        fast_count=int(pace.fast_count[index]),
        tie_rate=_number(quality.tie_rate[index]),
        both_bad_rate=_number(quality.both_bad_rate[index]),
        dawid_skene_accuracy=_number(quality.dawid_skene_accuracy[index]),
        agreement_with_others=_number(comparisons.agreement.observed[index]),
        agreement_expected=_number(comparisons.agreement.expected[index]),
        longer_share=_number(comparisons.longer_picks.observed[index]),
        longer_share_expected=_number(comparisons.longer_picks.expected[index]),
        flags=[_flag_read(flag) for flag in flags],
        vote_confusion=confusion,
        vote_accuracy=sum(confusion[::4]) / 3,
    )


async def raters(connection: AsyncConnection, project: Project) -> RatersRead:
    people = await repository.people(connection, project.id)
    table = await repository.judgment_table(connection, project.id)
    return await asyncio.to_thread(rater_report, table, people, project.quality_rules)


# --- agreement ---------------------------------------------------------------------------


def _agreement_stats(result: GroupAgreement) -> dict[str, Any]:
    return {
        "judgments": result.judgments,
        "items": result.items,
        "agreeing_pairs_with_ties": result.with_ties.agreeing_pairs,
        "rater_pairs_with_ties": result.with_ties.rater_pairs,
        "agreement_with_ties": _number(result.with_ties.share),
        "agreeing_pairs_without_ties": result.without_ties.agreeing_pairs,
        "rater_pairs_without_ties": result.without_ties.rater_pairs,
        "agreement_without_ties": _number(result.without_ties.share),
        "krippendorff_alpha": _number(result.krippendorff_alpha),
    }


def _share(agreeing: int, pairs: int) -> float | None:
    return agreeing / pairs if pairs else None


def agreement_report(
    table: repository.JudgmentTable,
    people: Sequence[repository.Person],
    batch_names: Mapping[int, str],
) -> AgreementRead:
    """Agreement on regular pairs among raters who are not excluded.

    Per rater, the pairs they form with other raters on the same pair are the project's rater
    pairs minus those left once their judgments are taken out; so are the agreeing pairs.
    """
    excluded = len(np.unique(table.rater_id[~table.is_gold & table.rater_excluded]))
    kept = table.kept()
    items = table.pair_id[kept]
    labels = preference_labels(table.choice[kept])
    raters = _rater_index(people, table.rater_id[kept])
    project = group_agreement(items, labels)
    if project.with_ties.rater_pairs == 0:
        return AgreementRead(
            ready=False,
            message=f"{NOT_ENOUGH_DATA}: agreement needs pairs judged by at least two raters.",
            excluded_raters_left_out=excluded,
        )
    # Keys are the distinct batch ids (ints), in increasing order.
    by_batch = agreement_by_group(table.batch_id[kept], items, labels)
    batches = [
        BatchAgreement(
            batch_id=cast(int, batch_id),
            filename=batch_names.get(cast(int, batch_id), ""),
            **_agreement_stats(result),
        )
        for batch_id, result in by_batch.items()
    ]
    return AgreementRead(
        ready=True,
        project=AgreementStats(**_agreement_stats(project)),
        batches=batches,
        raters=_rater_agreement(people, raters, items, labels),
        excluded_raters_left_out=excluded,
    )


def _rater_agreement(
    people: Sequence[repository.Person], raters: IntArray, items: IntArray, labels: IntArray
) -> list[RaterAgreement]:
    counts = label_counts_per_item(items, labels)
    _, item_index = np.unique(items, return_inverse=True)
    item_index = item_index.ravel()
    decisive_columns = [PREFER_A, PREFER_B]
    everyone = pairwise_agreement(counts)
    everyone_decisive = pairwise_agreement(counts[:, decisive_columns])
    majority = agreement_with_majority(raters, items, labels, len(people))
    rows = []
    for index in np.unique(raters):
        mine = raters == index
        others = counts.copy()
        np.subtract.at(others, (item_index[mine], labels[mine]), 1)
        without = pairwise_agreement(others)
        without_decisive = pairwise_agreement(others[:, decisive_columns])
        pairs = everyone.rater_pairs - without.rater_pairs
        decisive_pairs = everyone_decisive.rater_pairs - without_decisive.rater_pairs
        person = people[int(index)]
        rows.append(
            RaterAgreement(
                user_id=person.user_id,
                display_name=person.display_name,
                pseudonym=person.pseudonym,
                judgments=int(mine.sum()),
                agreement_with_ties=_share(everyone.agreeing_pairs - without.agreeing_pairs, pairs),
                rater_pairs_with_ties=pairs,
                agreement_without_ties=_share(
                    everyone_decisive.agreeing_pairs - without_decisive.agreeing_pairs,
                    decisive_pairs,
                ),
                rater_pairs_without_ties=decisive_pairs,
                majority_agreement=_number(majority.share[index]),
                alpha_without_rater=_number(krippendorff_alpha_nominal(others)),
            )
        )
    rows.sort(key=lambda row: (-row.judgments, row.display_name, row.user_id))
    return rows


async def agreement(connection: AsyncConnection, project_id: int) -> AgreementRead:
    people = await repository.people(connection, project_id)
    table = await repository.judgment_table(connection, project_id)
    batch_names = await repository.batch_names(connection, project_id)
    return await asyncio.to_thread(agreement_report, table, people, batch_names)


# --- leaderboard -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CountedPairs:
    """Pairs of two different models with counted votes; models index the ``models`` list."""

    models: list[str]
    response_a: IntArray
    response_b: IntArray
    model_a: IntArray
    model_b: IntArray
    outcome_counts: FloatArray  # pairs × 3, votes per bradley_terry.OUTCOME_*


def counted_pairs(
    pairs: repository.PairOutcomes, project_models: Sequence[str]
) -> tuple[CountedPairs, int]:
    """Same-model pairs left out (and their votes counted), models renumbered densely among
    the models that remain."""
    counts = as_float_array(pairs.outcome_counts)
    same = pairs.model_a == pairs.model_b
    same_model_votes = int(counts[same].sum())
    different = ~same
    used, dense = np.unique(
        np.concatenate([pairs.model_a[different], pairs.model_b[different]]), return_inverse=True
    )
    model_a, model_b = np.split(as_int_array(dense.ravel()), 2)
    return (
        CountedPairs(
            models=[project_models[index] for index in used.tolist()],
            response_a=pairs.response_a[different],
            response_b=pairs.response_b[different],
            model_a=model_a,
            model_b=model_b,
            outcome_counts=counts[different],
        ),
        same_model_votes,
    )


def comparison_groups(battles: BattleCounts) -> int:
    """How many groups of models were compared only among themselves (1 = all connected)."""
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = battles.n_models
    compared = coo_matrix(
        (np.ones(len(battles.model_a)), (battles.model_a, battles.model_b)), shape=(n, n)
    )
    groups, _ = connected_components(compared, directed=False)
    return int(groups)


@dataclasses.dataclass(frozen=True)
class StyleInput:
    """One row per pair with counted votes (each row stands for its votes)."""

    model_a: IntArray
    model_b: IntArray
    outcome_counts: FloatArray  # pairs × 3, votes per bradley_terry.OUTCOME_*
    counts_a: FloatArray  # pairs × STYLE_FEATURES, of answer A
    counts_b: FloatArray


def style_report(
    style: StyleInput, n_models: int
) -> tuple[StyleControlledLeaderboard | None, npt.NDArray[np.bool_]]:
    """Style-controlled fit on the features the votes can tell apart from the models.

    The others (e.g. a feature that never differs) have no coefficient: they would make the
    Hessian singular.
    """
    votes = style.outcome_counts.sum(axis=1)
    differences = normalized_style_differences(style.counts_a, style.counts_b, votes)
    varies = separable_features(style.model_a, style.model_b, n_models, differences, votes)
    if not varies.any():
        return None, varies
    result = style_controlled_leaderboard_counts(
        style.model_a,
        style.model_b,
        style.outcome_counts,
        n_models,
        style.counts_a[:, varies],
        style.counts_b[:, varies],
        feature_names=[name for name, used in zip(STYLE_FEATURES, varies, strict=True) if used],
    )
    return result, varies


async def _style_input(connection: AsyncConnection, pairs: CountedPairs) -> StyleInput:
    """Style counts of every answer in a counted pair: each text read and counted once.

    While one block of texts is counted in a worker thread, the next one is read.
    """
    response_ids = as_int_array(np.unique(np.concatenate([pairs.response_a, pairs.response_b])))
    ids: list[IntArray] = []
    counts: list[FloatArray] = []
    loop = asyncio.get_running_loop()
    counting: asyncio.Future[FloatArray] | None = None
    async for block in repository.response_texts(connection, response_ids):
        if counting is not None:
            counts.append(await counting)
        ids.append(as_int_array([response_id for response_id, _ in block]))
        counting = loop.run_in_executor(None, style_counts, [content for _, content in block])
    if counting is not None:
        counts.append(await counting)
    read_ids = as_int_array(np.concatenate(ids)) if ids else as_int_array([])
    styles = (
        as_float_array(np.concatenate(counts))
        if counts
        else as_float_array(np.empty((0, len(STYLE_FEATURES))))
    )
    return StyleInput(
        model_a=pairs.model_a,
        model_b=pairs.model_b,
        outcome_counts=pairs.outcome_counts,
        counts_a=styles[np.searchsorted(read_ids, pairs.response_a)],
        counts_b=styles[np.searchsorted(read_ids, pairs.response_b)],
    )


async def _style_fit(
    connection: AsyncConnection, pairs: CountedPairs
) -> tuple[StyleControlledLeaderboard | None, npt.NDArray[np.bool_]]:
    style_input = await _style_input(connection, pairs)
    return await asyncio.to_thread(style_report, style_input, len(pairs.models))


def _style_coefficients(style: StyleControlledLeaderboard | None) -> list[StyleCoefficient]:
    """One entry per style feature; null for those left out of the fit (they never varied)."""
    fitted = {name: position for position, name in enumerate(style.feature_names)} if style else {}
    coefficients = []
    for name in STYLE_FEATURES:
        position = fitted.get(name)
        if style is None or position is None:
            coefficients.append(
                StyleCoefficient(feature=name, coefficient=None, lower=None, upper=None)
            )
            continue
        coefficients.append(
            StyleCoefficient(
                feature=name,
                coefficient=_number(style.style_coefficients[position]),
                lower=_number(style.coefficient_lower[position]),
                upper=_number(style.coefficient_upper[position]),
            )
        )
    return coefficients


def leaderboard_read(
    models: Sequence[str],
    board: Leaderboard,
    style: StyleControlledLeaderboard | None,
    *,
    bootstrap_rounds: int,
    notes: list[str],
    excluded: int,
) -> LeaderboardRead:
    """Models best first; the win-rate matrix in the same order."""
    order = np.argsort(-board.scores, kind="stable")
    styled = style.scores_with_style_control if style is not None else None
    return LeaderboardRead(
        ready=True,
        models=[
            ModelRow(
                model=models[i],
                score=float(board.scores[i]),
                lower=float(board.lower[i]),
                upper=float(board.upper[i]),
                rank=int(board.ranks[i]),
                votes=int(board.votes[i]),
                score_style_controlled=_number(styled[i]) if styled is not None else None,
            )
            for i in order
        ],
        win_rate=[[_number(board.win_rate[i, j]) for j in order] for i in order],
        votes=int(board.votes.sum() // 2),
        bootstrap_rounds=bootstrap_rounds,
        style_coefficients=_style_coefficients(style),
        style_converged=style.converged if style is not None else None,
        notes=notes,
        excluded_raters_left_out=excluded,
    )


async def leaderboard(
    connection: AsyncConnection,
    project_id: int,
    *,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> LeaderboardRead:
    """Bradley-Terry scores with bootstrap intervals, and the style-controlled scores."""
    project_models = await repository.project_models(connection, project_id)
    pairs, same_model = counted_pairs(
        await repository.pair_outcomes(connection, project_id, project_models), project_models
    )
    excluded = await repository.excluded_raters_with_votes(connection, project_id)
    notes = []
    if same_model:
        notes.append(
            f"{same_model} votes compare two answers of the same model; they are not counted."
        )
    models = pairs.models
    if len(models) < 2:
        return LeaderboardRead(
            ready=False,
            message=f"{NOT_ENOUGH_DATA}: the leaderboard needs votes on pairs of two different "
            "models.",
            notes=notes,
            excluded_raters_left_out=excluded,
        )
    battles = counted_battles(pairs.model_a, pairs.model_b, pairs.outcome_counts, len(models))
    groups = comparison_groups(battles)
    if groups > 1:
        notes.append(
            f"The models fall into {groups} groups that were never compared with each other; "
            "scores are comparable only within a group."
        )
    # The bootstrap runs in a worker thread while the texts are read and counted.
    board, (style, varies) = await asyncio.gather(
        asyncio.to_thread(
            leaderboard_from_battles, battles, bootstrap_rounds=bootstrap_rounds, seed=seed
        ),
        _style_fit(connection, pairs),
    )
    if not varies.all():
        unused = [name for name, used in zip(STYLE_FEATURES, varies, strict=True) if not used]
        notes.append(
            f"Not controlled for: {', '.join(unused)}. In these votes it never differs "
            "between the answers, or only along with the models, so its effect cannot be told "
            "apart from the models' strengths."
        )
    return leaderboard_read(
        models,
        board,
        style,
        bootstrap_rounds=bootstrap_rounds,
        notes=notes,
        excluded=excluded,
    )


# --- what the preferences teach ----------------------------------------------------------


def _weights(report: PreferenceModelReport) -> list[FeatureWeightRead]:
    return [
        FeatureWeightRead(
            name=weight.name,
            weight=_number(weight.weight),
            lower=_number(weight.lower),
            upper=_number(weight.upper),
        )
        for weight in report.weights
    ]


def _answer_properties_of(
    block: Sequence[repository.PairText], known: dict[int, FloatArray]
) -> None:
    """``answer_properties`` of the answers in ``block`` not seen before, into ``known``."""
    unseen: dict[int, tuple[str, str]] = {}
    for pair in block:
        for response_id, text in (
            (pair.response_a_id, pair.text_a),
            (pair.response_b_id, pair.text_b),
        ):
            if response_id not in known:
                unseen[response_id] = (text, pair.prompt)
    texts = [text for text, _ in unseen.values()]
    properties = answer_properties(texts, [prompt for _, prompt in unseen.values()])
    known.update(zip(unseen, properties, strict=True))


async def _preference_design_rows(
    connection: AsyncConnection,
    project_id: int,
    votes: repository.DecisiveVotes,
    *,
    batch_id: int | None,
    rater_id: int | None,
) -> FloatArray:
    """``design_rows`` of every vote; each answer's text is featured once, however many
    pairs and votes it is in."""
    pair_ids = np.unique(votes.pair_id)
    width = len(PREFERENCE_FEATURES) - 1
    properties_a = np.full((len(pair_ids), width), np.nan)
    properties_b = np.full((len(pair_ids), width), np.nan)
    known: dict[int, FloatArray] = {}
    async for block in repository.pair_texts(
        connection, project_id, batch_id=batch_id, rater_id=rater_id
    ):
        await asyncio.to_thread(_answer_properties_of, block, known)
        rows = np.searchsorted(pair_ids, [pair.pair_id for pair in block])
        properties_a[rows] = [known[pair.response_a_id] for pair in block]
        properties_b[rows] = [known[pair.response_b_id] for pair in block]
    of_vote = np.searchsorted(pair_ids, votes.pair_id)
    return design_rows(properties_a[of_vote], properties_b[of_vote], votes.a_shown_left)


async def preferences(
    connection: AsyncConnection,
    project_id: int,
    *,
    batch_id: int | None = None,
    rater_id: int | None = None,
) -> PreferencesRead:
    """Which answer properties predict the choice, from A-or-B votes on regular pairs."""
    votes = await repository.decisive_votes(
        connection, project_id, batch_id=batch_id, rater_id=rater_id
    )
    excluded = (
        0
        if rater_id is not None
        else await repository.excluded_raters_with_votes(connection, project_id, batch_id)
    )
    base: dict[str, Any] = {
        "batch_id": batch_id,
        "rater_id": rater_id,
        "judgments": len(votes.pair_id),
        "excluded_raters_left_out": excluded,
    }
    if len(votes.pair_id) < MIN_PREFERENCE_JUDGMENTS:
        return PreferencesRead(
            ready=False,
            message=f"{NOT_ENOUGH_DATA}: {len(votes.pair_id)} A-or-B votes, the preference "
            f"model needs at least {MIN_PREFERENCE_JUDGMENTS}.",
            **base,
        )
    design = await _preference_design_rows(
        connection, project_id, votes, batch_id=batch_id, rater_id=rater_id
    )
    if not np.any(design != 0):
        return PreferencesRead(
            ready=False,
            message=f"{NOT_ENOUGH_DATA}: the two answers never differ on any feature.",
            **base,
        )
    report = await asyncio.to_thread(fit_preference_model, design, votes.chose_a)
    return PreferencesRead(
        ready=True,
        weights=_weights(report),
        held_out_accuracy=_number(report.held_out_accuracy),
        baseline_accuracy=_number(report.baseline_accuracy),
        folds=report.folds,
        **base,
    )


# --- everything at once ------------------------------------------------------------------


async def report(
    connection: AsyncConnection, project: Project, *, bootstrap_rounds: int = BOOTSTRAP_ROUNDS
) -> ReportRead:
    """All sections from one snapshot; the judgment table is read once for raters and
    agreement, which then need nothing more from the database: they are computed in worker
    threads while the other sections read and compute theirs."""
    people = await repository.people(connection, project.id)
    table = await repository.judgment_table(connection, project.id)
    batch_names = await repository.batch_names(connection, project.id)
    from_table = asyncio.gather(
        asyncio.to_thread(rater_report, table, people, project.quality_rules),
        asyncio.to_thread(agreement_report, table, people, batch_names),
    )
    try:
        progress_read = await progress(connection, project)
        timeline_read = await timeline(connection, project.id)
        board = await leaderboard(connection, project.id, bootstrap_rounds=bootstrap_rounds)
        preferences_read = await preferences(connection, project.id)
    except BaseException:
        from_table.cancel()
        raise
    raters_read, agreement_read = await from_table
    return ReportRead(
        progress=progress_read,
        timeline=timeline_read,
        raters=raters_read,
        agreement=agreement_read,
        leaderboard=board,
        preferences=preferences_read,
    )
