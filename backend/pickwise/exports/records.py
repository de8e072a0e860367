"""What the export query yields: one frozen record per judgment, with its prompt and pair.

The query sorts them by (prompt external id, pair id, judgment id), so the votes of one pair
arrive together and the export can aggregate them without holding the whole project in memory.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

Choice = Literal["a", "b", "tie", "both_bad"]
Side = Literal["a", "b"]
CriterionChoice = Literal["a", "b", "tie"]

CHOICES: tuple[str, ...] = get_args(Choice)
SIDES: tuple[str, ...] = get_args(Side)
CRITERION_CHOICES: tuple[str, ...] = get_args(CriterionChoice)


class InvalidRecordError(ValueError):
    """A record breaks an invariant the database should already guarantee: a bug upstream."""


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """The conversation both responses answer: user/assistant turns ending on a user turn."""

    prompt_id: int
    external_id: str
    system: str | None
    turns: tuple[Message, ...]

    def __post_init__(self) -> None:
        if not self.turns:
            raise InvalidRecordError(f"prompt {self.external_id!r} has no turns")
        for index, turn in enumerate(self.turns):
            expected = "user" if index % 2 == 0 else "assistant"
            if turn.role != expected:
                raise InvalidRecordError(
                    f"prompt {self.external_id!r}: turn {index} is {turn.role!r}, "
                    f"expected {expected!r} (turns alternate, starting with the user)"
                )
        if self.turns[-1].role != "user":
            raise InvalidRecordError(f"prompt {self.external_id!r} must end on a user turn")

    @property
    def has_system(self) -> bool:
        # An empty system prompt says nothing; exporting it would only make rows conversational.
        return bool(self.system)

    @property
    def is_single_user_turn(self) -> bool:
        """True when the prompt fits a plain string: one user turn and no system prompt."""
        return not self.has_system and len(self.turns) == 1


@dataclass(frozen=True, slots=True)
class VoteRecord:
    """One judgment. `choice` is relative to the pair's canonical A/B, not to screen position."""

    judgment_id: int
    pair_id: int
    prompt: PromptRecord
    response_a_id: int
    response_b_id: int
    response_a: str
    response_b: str
    model_a: str
    model_b: str
    choice: Choice
    strength: int | None
    strength_scale: tuple[str, ...]
    rationale: str | None
    criteria: dict[str, str]
    rater_pseudonym: str
    shown_left: Side
    shown_at: datetime
    submitted_at: datetime
    is_gold: bool
    batch_id: int

    def __post_init__(self) -> None:
        where = f"judgment {self.judgment_id}"
        if self.choice not in CHOICES:
            raise InvalidRecordError(f"{where}: unknown choice {self.choice!r}")
        if self.shown_left not in SIDES:
            raise InvalidRecordError(f"{where}: shown_left must be 'a' or 'b'")
        if self.strength is not None and not 0 <= self.strength < len(self.strength_scale):
            raise InvalidRecordError(
                f"{where}: strength {self.strength} is outside the project's scale "
                f"of {len(self.strength_scale)} labels"
            )
        for criterion, choice in self.criteria.items():
            if choice not in CRITERION_CHOICES:
                raise InvalidRecordError(f"{where}: criterion {criterion!r} has choice {choice!r}")

    @property
    def strength_label(self) -> str | None:
        return None if self.strength is None else self.strength_scale[self.strength]
