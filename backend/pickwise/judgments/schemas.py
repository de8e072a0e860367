from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.vocabulary import (
    AssignmentStatus,
    Choice,
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
