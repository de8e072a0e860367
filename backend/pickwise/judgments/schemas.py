from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.assignments.schemas import NextPair, NoWorkLeft
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


class NextFailed(BaseModel):
    """Why no next pair came with an answer that was stored (`?next=true`): the error body
    `GET …/next` would have sent, with its status code."""

    model_config = ConfigDict(extra="allow")

    status: int
    project_id: int = Field(description="Ask `GET /api/v1/projects/{project_id}/next` again.")
    error: str
    detail: str
    field: str | None = None


class AnswerAndNext(BaseModel):
    """`?next=true`: the rater's next pair, or "no work left", or (with `next` null) why
    it could not be leased."""

    next: NextPair | NoWorkLeft | None
    next_error: NextFailed | None = None


class JudgmentAndNext(JudgmentOut, AnswerAndNext):
    pass


class AssignmentDoneAndNext(AssignmentDone, AnswerAndNext):
    pass
