from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pickwise.vocabulary import (
    OverlapMode,
    PairingStrategy,
    PairOrder,
    ProjectKind,
    RationaleMode,
    StoppingRule,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


OVERLAP_DESCRIPTIONS = {
    "overlap_mode": "fixed: every pair gets raters_per_pair raters. adaptive: overlap_min "
    "raters, then one more at a time, up to overlap_max, while the stopping rule says the "
    "votes are not settled (docs/analytics.md, Adaptive overlap). A change applies to pairs "
    "not yet settled; settled pairs keep their votes.",
    "overlap_min": "Adaptive: the raters every pair gets.",
    "overlap_max": "Adaptive: the most raters a pair gets (at least overlap_min).",
    "overlap_rule": "Adaptive: when a pair is settled.",
    "overlap_stop_votes": "leader_share: the votes the leading choice needs (m).",
    "overlap_stop_share": "leader_share: the share of the pair's votes it needs (s).",
    "overlap_stop_posterior": "posterior: the probability the leading choice needs.",
}


def max_at_least_min(maximum: int | None, info: ValidationInfo) -> int | None:
    minimum = info.data.get("overlap_min")
    if maximum is not None and minimum is not None and maximum < minimum:
        raise ValueError(f"must be at least the minimum ({minimum})")
    return maximum


def clean_labels(labels: list[str]) -> list[str]:
    """Strength or criterion labels: trimmed, none blank, no two alike."""
    cleaned = [label.strip() for label in labels]
    if any(not label for label in cleaned):
        raise ValueError("labels must not be empty")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError("labels must be distinct")
    return cleaned


class ProjectSettings(BaseModel):
    raters_per_pair: int = Field(
        1, ge=1, le=100, description="Distinct raters each pair needs (k)."
    )
    lease_seconds: int = Field(600, ge=10, le=86400, description="How long a rater holds a pair.")
    allow_tie: bool = True
    allow_both_bad: bool = True
    strength_scale: list[str] = Field(
        default_factory=list,
        description='Labels weakest first, e.g. ["slightly", "clearly", "much"]; empty = none.',
        max_length=10,
    )
    rationale_mode: RationaleMode = RationaleMode.OPTIONAL
    criteria: list[str] = Field(default_factory=list, max_length=20)
    guidelines_md: str = Field("", max_length=200_000)
    pairing_strategy: PairingStrategy = PairingStrategy.ALL
    pairs_per_prompt: int = Field(1, ge=1, le=1000)
    pairing_seed: int = Field(
        0, description="Draws the random pairs (random_k) and the shuffled order of new pairs."
    )
    pair_order: PairOrder = Field(
        PairOrder.SHUFFLED,
        description="How new pairs are opened to raters: shuffled across prompts (from the "
        "seed) or in file order. Pairs already started are finished first either way, and no "
        "rater gets two pairs of one prompt in a row while other work is open.",
    )
    gold_rate: float = Field(0.0, ge=0.0, le=1.0)
    gold_feedback: bool = False
    summary_every: int = Field(20, ge=0, le=10_000)
    undo_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="How long a rater may change (or withdraw) their last choice or skip; "
        "0 = never.",
    )
    overlap_mode: OverlapMode = Field(
        OverlapMode.FIXED, description=OVERLAP_DESCRIPTIONS["overlap_mode"]
    )
    overlap_min: int = Field(2, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_min"])
    overlap_max: int = Field(5, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_max"])
    overlap_rule: StoppingRule = Field(
        StoppingRule.LEADER_SHARE, description=OVERLAP_DESCRIPTIONS["overlap_rule"]
    )
    overlap_stop_votes: int = Field(
        2, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_stop_votes"]
    )
    overlap_stop_share: float = Field(
        0.75, gt=0.0, le=1.0, description=OVERLAP_DESCRIPTIONS["overlap_stop_share"]
    )
    overlap_stop_posterior: float = Field(
        0.88, ge=0.5, lt=1.0, description=OVERLAP_DESCRIPTIONS["overlap_stop_posterior"]
    )

    @field_validator("strength_scale", "criteria")
    @classmethod
    def _labels_not_blank(cls, labels: list[str]) -> list[str]:
        return clean_labels(labels)

    @field_validator("overlap_max")
    @classmethod
    def _max_at_least_min(cls, maximum: int, info: ValidationInfo) -> int:
        max_at_least_min(maximum, info)
        return maximum


class ProjectCreate(ProjectSettings):
    slug: str = Field(pattern=SLUG_PATTERN, description="Lower-case letters, digits and dashes.")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)


class ProjectUpdate(BaseModel):
    """Only the fields sent are changed."""

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    raters_per_pair: int | None = Field(None, ge=1, le=100)
    lease_seconds: int | None = Field(None, ge=10, le=86400)
    allow_tie: bool | None = None
    allow_both_bad: bool | None = None
    strength_scale: list[str] | None = Field(None, max_length=10)
    rationale_mode: RationaleMode | None = None
    criteria: list[str] | None = Field(None, max_length=20)
    guidelines_md: str | None = Field(None, max_length=200_000)
    pairing_strategy: PairingStrategy | None = None
    pairs_per_prompt: int | None = Field(None, ge=1, le=1000)
    pairing_seed: int | None = None
    pair_order: PairOrder | None = None
    gold_rate: float | None = Field(None, ge=0.0, le=1.0)
    gold_feedback: bool | None = None
    summary_every: int | None = Field(None, ge=0, le=10_000)
    undo_seconds: int | None = Field(None, ge=0, le=86400)
    is_archived: bool | None = Field(
        None,
        description="Close the project (true): raters' leases end at once and nothing more is "
        "collected; false opens it again.",
    )
    overlap_mode: OverlapMode | None = Field(None, description=OVERLAP_DESCRIPTIONS["overlap_mode"])
    overlap_min: int | None = Field(
        None, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_min"]
    )
    overlap_max: int | None = Field(
        None, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_max"]
    )
    overlap_rule: StoppingRule | None = Field(
        None, description=OVERLAP_DESCRIPTIONS["overlap_rule"]
    )
    overlap_stop_votes: int | None = Field(
        None, ge=1, le=100, description=OVERLAP_DESCRIPTIONS["overlap_stop_votes"]
    )
    overlap_stop_share: float | None = Field(
        None, gt=0.0, le=1.0, description=OVERLAP_DESCRIPTIONS["overlap_stop_share"]
    )
    overlap_stop_posterior: float | None = Field(
        None, ge=0.5, lt=1.0, description=OVERLAP_DESCRIPTIONS["overlap_stop_posterior"]
    )

    # The same rules as on creation; otherwise a list accepted here fails ProjectRead after
    # the update, and the caller gets a 500 instead of a 422.
    @field_validator("strength_scale", "criteria")
    @classmethod
    def _labels_not_blank(cls, labels: list[str] | None) -> list[str] | None:
        return None if labels is None else clean_labels(labels)

    @field_validator("overlap_max")
    @classmethod
    def _max_at_least_min(cls, maximum: int | None, info: ValidationInfo) -> int | None:
        return max_at_least_min(maximum, info)


class ProjectRead(ProjectSettings):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    description: str
    kind: ProjectKind = Field(
        ProjectKind.PAIRS, description="conversations: set up with PUT .../conversation-settings."
    )
    is_archived: bool
    created_at: datetime


class MemberAdd(BaseModel):
    user_id: int


class MemberRead(BaseModel):
    user_id: int
    email: str
    display_name: str
    role: str
    excluded: bool
