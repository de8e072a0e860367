from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.vocabulary import (
    AssignmentStatus,
    CanonicalSide,
    Choice,
    CriterionChoice,
    DecisionKind,
    FlagReason,
    ShownChoice,
    ShownCriterionChoice,
    SkipReason,
)


class JudgmentIn(BaseModel):
    """A choice as the rater saw it: `left`/`right`, or tie / both bad."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"choice": "left", "strength": 1, "rationale": "More accurate and shorter."},
                {"choice": "tie"},
            ]
        },
    )

    choice: ShownChoice
    strength: int | None = Field(None, ge=0, description="Index on the project's strength scale.")
    rationale: str | None = Field(None, max_length=20_000)
    criteria: dict[str, ShownCriterionChoice] = Field(default_factory=dict)


class SkipIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "cant_judge"}]}
    )

    reason: SkipReason


class FlagIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "harmful", "note": ""}]}
    )

    reason: FlagReason
    note: str = Field("", max_length=5_000)


class JudgmentOut(BaseModel):
    judgment_id: int
    assignment_id: int
    pair_id: int
    choice: Choice
    submitted_at: datetime
    gold_feedback: str | None = Field(
        None, description="Set only when the project gives feedback on a missed gold pair."
    )


class AssignmentDone(BaseModel):
    assignment_id: int
    status: AssignmentStatus


class LastDecision(BaseModel):
    """The rater's last choice or skip in the project, as they made it, while they may still
    change it (`PUT /assignments/{assignment_id}/judgment` or `…/skip`, until
    `changeable_until`)."""

    assignment_id: int
    pair_id: int
    kind: DecisionKind
    choice: ShownChoice | None = Field(None, description="A judgment's choice, as shown.")
    strength: int | None = None
    rationale: str | None = None
    criteria: dict[str, ShownCriterionChoice] = Field(default_factory=dict)
    skip_reason: SkipReason | None = None
    changeable_until: datetime


class NothingToChange(BaseModel):
    assignment_id: None = None
    detail: str = (
        "Nothing of yours in this project can be changed: no choice yet, or the time to change "
        "your last one has passed."
    )


class ReplacedDecisionOut(BaseModel):
    """A choice or skip a rater replaced within the undo window. A choice is relative to the
    pair's canonical A / B, like an export's `winner`; `left_side` says which was shown left."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    assignment_id: int
    rater_id: int
    kind: DecisionKind
    choice: Choice | None
    strength: int | None
    rationale: str | None
    criteria: dict[str, CriterionChoice]
    skip_reason: SkipReason | None
    left_side: CanonicalSide
    decided_at: datetime
    replaced_at: datetime


class PairHistory(BaseModel):
    """What raters replaced on a pair, oldest first (its current judgments are the pair's
    judgments, as exports read them)."""

    pair_id: int
    replaced: list[ReplacedDecisionOut]
