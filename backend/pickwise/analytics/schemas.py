"""What the analytics endpoints, the dashboard and `pickwise report` show.

Numbers that have no value yet (no gold judgments, an undefined alpha, a feature that never
differed) are null, never NaN. Raters are named by display name and pseudonym, never by email.
"""

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from pickwise.analytics.flags import FlagCode


class Readiness(BaseModel):
    ready: bool = Field(description="False until there is enough data for this section.")
    message: str | None = Field(None, description="Why the section is not ready yet.")


class VotesPerPair(BaseModel):
    votes: int
    pairs: int


class OverlapProgress(BaseModel):
    """What the overlap policy costs (docs/analytics.md, "Adaptive overlap")."""

    policy: dict[str, Any] = Field(description="The overlap settings, as exports record them.")
    summary: str = Field(description="The policy in words.")
    votes_spent: int = Field(description="Judgments on regular pairs (in the queue or flagged).")
    pairs_settled: int = Field(description="Regular pairs in the queue with every slot judged.")
    pairs_settled_early: int = Field(description="Settled with fewer votes than the maximum.")
    pairs_at_max: int = Field(description="Settled at the maximum (adaptive: max raters).")
    votes_still_needed: float = Field(
        description="Estimated votes the pairs in the queue still need, their open slots "
        "included (exact for a fixed project)."
    )
    votes_saved: int = Field(
        description="On settled pairs: k per pair minus the votes they took (k: the "
        "project's raters per pair, what a fixed project would use)."
    )
    votes_saved_projected: float = Field(
        description="k per pair in the queue, minus the votes they have and still need."
    )
    votes_per_pair: list[VotesPerPair] = Field(description="Settled pairs by their votes.")


class ProgressRead(BaseModel):
    pairs_done: int = Field(description="Regular pairs with all their judgments.")
    pairs_in_progress: int
    pairs_open: int
    pairs_flagged: int
    judgments_needed: int = Field(
        description="Slots not yet judged on active pairs (an adaptive project may open more: "
        "see overlap.votes_still_needed)."
    )
    share_done: float | None = Field(description="Done pairs / active pairs.")
    judgments: int = Field(description="Judgments on regular (non-gold) pairs.")
    gold_judgments: int
    raters_active: int = Field(description="Raters with at least one judgment.")
    models: int = Field(description="Distinct model names among the project's responses.")
    overlap: OverlapProgress


class TimelineDay(BaseModel):
    day: date = Field(description="UTC day.")
    judgments: int
    gold_judgments: int


class TimelineRead(BaseModel):
    days: list[TimelineDay] = Field(description="Every day from the first to the last judgment.")


class FlagRead(BaseModel):
    """Why a rater is flagged: "worse than the others, with evidence" (docs/analytics.md)."""

    code: FlagCode
    label: str = Field(description="The code in words, as the dashboard shows it.")
    detail: str = Field(description="The evidence in words: the test and its numbers.")
    test: str = Field(description="The test or rule behind the flag.")
    observed: float | None = Field(description="The rater's value (a share, or seconds).")
    expected: float | None = Field(
        description="What a rater like the others (or without the bias) would have; for "
        "too_fast, the limit."
    )
    judgments: int = Field(description="How many judgments the evidence rests on.")
    p_value: float | None = Field(description="Null for a rule that is not a test.")


class RaterRow(BaseModel):
    user_id: int
    display_name: str
    pseudonym: str
    member: bool = Field(description="Still a member of the project.")
    excluded: bool = Field(
        description="Votes left out of statistics and exports; a former member can be excluded too."
    )
    judgments: int = Field(description="All judgments, gold included.")
    gold_correct: int
    gold_total: int
    gold_accuracy: float | None
    gold_lower: float | None = Field(description="95% Wilson interval.")
    gold_upper: float | None
    majority_agreed: int
    majority_eligible: int
    majority_agreement: float | None = Field(
        description="Share of judgments matching the unique majority of the other raters."
    )
    left_picks: int
    decisive: int = Field(description="A-or-B choices (ties have no side).")
    left_share: float | None
    position_p_value: float | None = Field(description="Exact binomial test of 0.5.")
    median_seconds: float | None
    fast_count: int
    tie_rate: float | None
    both_bad_rate: float | None
    dawid_skene_accuracy: float | None
    agreement_with_others: float | None = Field(
        description="Mean share of the other raters of the same pair who gave the same label."
    )
    agreement_expected: float | None = Field(
        description="The same for a rater like the others, on the same pairs."
    )
    longer_share: float | None = Field(
        description="Share of A-or-B choices that picked the longer answer."
    )
    longer_share_expected: float | None = Field(
        description="The same for a rater like the others, on the same pairs."
    )
    flags: list[FlagRead]
    vote_confusion: list[float] = Field(
        description="What this rater's vote weighs in adaptive overlap's posterior rule: "
        "P(reported label | true label), 9 numbers row-major over A / no preference / B; "
        "Dawid-Skene's estimate shrunk toward the prior (docs/analytics.md, Adaptive overlap)."
    )
    vote_accuracy: float = Field(
        description="The mean of that matrix's diagonal: how often the rater's vote is "
        "taken to name the true label."
    )


class ThresholdsRead(BaseModel):
    comparison_p_value: float
    max_position_bias: float
    position_p_value: float
    max_length_bias: float
    min_median_seconds: float
    overridden: dict[str, float] = Field(
        description="Values taken from the project's quality_rules instead of the defaults."
    )
    ignored_rules: list[str] = Field(
        description="quality_rules keys that are not a threshold name or not a finite number."
    )


class RatersRead(BaseModel):
    raters: list[RaterRow] = Field(description="Flagged raters first, then by judgments.")
    thresholds: ThresholdsRead
    fast_threshold_seconds: float = Field(
        description="fast_count counts judgments under this; the too_fast limit."
    )
    flagged: int


class AgreementStats(BaseModel):
    judgments: int
    items: int = Field(description="Pairs with at least one judgment.")
    agreeing_pairs_with_ties: int
    rater_pairs_with_ties: int
    agreement_with_ties: float | None = Field(
        description="Share of rater pairs on the same item giving the same label (A / tie / B)."
    )
    agreeing_pairs_without_ties: int
    rater_pairs_without_ties: int
    agreement_without_ties: float | None = Field(
        description="The same among raters who both preferred A or B."
    )
    krippendorff_alpha: float | None = Field(description="Nominal alpha over A / tie / B.")


class BatchAgreement(AgreementStats):
    batch_id: int
    filename: str


class RaterAgreement(BaseModel):
    user_id: int
    display_name: str
    pseudonym: str
    judgments: int
    agreement_with_ties: float | None = Field(
        description="Share of this rater's pairs with other raters (same item) that agree."
    )
    rater_pairs_with_ties: int
    agreement_without_ties: float | None
    rater_pairs_without_ties: int
    majority_agreement: float | None
    alpha_without_rater: float | None = Field(
        description="The project's alpha with this rater's judgments left out."
    )


class AgreementRead(Readiness):
    project: AgreementStats | None = None
    batches: list[BatchAgreement] = Field(default_factory=list)
    raters: list[RaterAgreement] = Field(default_factory=list)
    excluded_raters_left_out: int = 0


class ModelRow(BaseModel):
    model: str
    score: float = Field(description="Bradley-Terry score on the Elo-like scale (mean 1000).")
    lower: float = Field(description="Bootstrap percentile interval.")
    upper: float
    rank: int = Field(description="1 + models whose interval lies entirely above this one's.")
    votes: int
    score_style_controlled: float | None = Field(
        description="Score once length and markdown are controlled for."
    )


class StyleCoefficient(BaseModel):
    feature: str
    coefficient: float | None = Field(
        description="Log-odds per root mean square of the normalised difference "
        "(a − b) / (a + b); null when the votes cannot tell it apart from the models (e.g. "
        "the answers never differed on it)."
    )
    lower: float | None
    upper: float | None


class LeaderboardRead(Readiness):
    models: list[ModelRow] = Field(default_factory=list, description="Best score first.")
    win_rate: list[list[float | None]] = Field(
        default_factory=list,
        description="[i][j]: share of points models[i] took from models[j]; null if never met.",
    )
    votes: int = 0
    bootstrap_rounds: int = 0
    style_coefficients: list[StyleCoefficient] = Field(default_factory=list)
    style_converged: bool | None = None
    notes: list[str] = Field(default_factory=list)
    excluded_raters_left_out: int = 0


class FeatureWeightRead(BaseModel):
    name: str
    weight: float | None = Field(description="Log-odds; null when the feature never differed.")
    lower: float | None = Field(description="95% Wald interval.")
    upper: float | None


class PreferencesRead(Readiness):
    weights: list[FeatureWeightRead] = Field(default_factory=list)
    held_out_accuracy: float | None = None
    baseline_accuracy: float | None = Field(
        None, description="Always predicting the more common choice of the training folds."
    )
    judgments: int = Field(0, description="A-or-B judgments used (ties are left out).")
    folds: int = 0
    batch_id: int | None = None
    rater_id: int | None = None
    excluded_raters_left_out: int = 0


class ReportRead(BaseModel):
    progress: ProgressRead
    timeline: TimelineRead
    raters: RatersRead
    agreement: AgreementRead
    leaderboard: LeaderboardRead
    preferences: PreferencesRead
