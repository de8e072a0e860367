"""What the client returns. Fields the server adds later are kept (extra="allow"), so an older
client keeps working against a newer server."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _ServerModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Project(_ServerModel):
    id: int
    slug: str
    name: str
    description: str = ""
    raters_per_pair: int
    created_at: datetime


class ImportSummary(_ServerModel):
    """One imported batch, as the server counted it."""

    batch_id: int | None  # None: nothing in it was new, and the server added no batch
    nothing_new: bool = False
    filename: str
    rows: int
    prompts_new: int
    prompts_unchanged: int
    responses_new: int
    pairs_new: int
    sha256: str
    summary: str


class Progress(_ServerModel):
    pairs_done: int
    pairs_in_progress: int
    pairs_open: int
    pairs_flagged: int
    judgments_needed: int
    share_done: float | None = None
    judgments: int | None = None
    gold_judgments: int | None = None
    raters_active: int | None = None
    models: int | None = None

    @property
    def complete(self) -> bool:
        """Every active pair has all the judgments it needs (and there is at least one)."""
        return self.judgments_needed == 0 and self.pairs_done > 0


class ModelScore(_ServerModel):
    model: str
    score: float
    lower: float
    upper: float
    rank: int
    votes: int
    score_style_controlled: float | None = None


class Leaderboard(_ServerModel):
    ready: bool
    message: str | None = None
    models: list[ModelScore] = []
    votes: int = 0


class Message(_ServerModel):
    role: str
    content: str


class Shown(_ServerModel):
    side: str  # "left" or "right"
    content: str


class LeasedPair(_ServerModel):
    """A pair leased to the rater (model names are never sent to raters)."""

    assignment_id: int
    pair_id: int
    lease_expires_at: datetime
    system: str | None = None
    turns: list[Message]
    left: Shown
    right: Shown


class Answered(_ServerModel):
    """A stored judgment (`judgment_id` set) or skip / flag (`status` set), with the rater's
    next pair: `next` is None when no work is left for them."""

    assignment_id: int
    judgment_id: int | None = None
    pair_id: int | None = None
    choice: str | None = None  # relative to the pair's canonical A / B
    submitted_at: datetime | None = None
    gold_feedback: str | None = None
    status: str | None = None
    next: LeasedPair | None = None
