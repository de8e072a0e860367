"""What the export reads: one frozen record per judgment (`VoteRecord`), or per pair with the
choices of its votes (`PairVotes`), each with its prompt.

Both come sorted by (prompt external id, pair id, judgment id), so the votes of one pair
arrive together and the export can aggregate them without holding the whole project in memory.
Choices and sides hold the vocabularies' values as read from the database (checked here).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pickwise.batches.parsing.records import Message
from pickwise.core.errors import BadRequest
from pickwise.vocabulary import (
    CanonicalSide,
    Choice,
    CriterionChoice,
    Decision,
    ShownSide,
    TurnRole,
    chosen_side,
)

# Members are strings: a value read from the database is found in these sets.
CHOICES = frozenset(Choice)
SIDES = frozenset(CanonicalSide)
CRITERION_CHOICES = frozenset(CriterionChoice)
DECISIONS = frozenset(Decision)


class InvalidRecordError(ValueError):
    """A record breaks an invariant the database should already guarantee: a bug upstream."""


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
            expected = TurnRole.USER if index % 2 == 0 else TurnRole.ASSISTANT
            if turn.role != expected:
                raise InvalidRecordError(
                    f"prompt {self.external_id!r}: turn {index} is {str(turn.role)!r}, "
                    f"expected {str(expected)!r} (turns alternate, starting with the user)"
                )
        if self.turns[-1].role != TurnRole.USER:
            raise InvalidRecordError(f"prompt {self.external_id!r} must end on a user turn")

    @property
    def has_system(self) -> bool:
        # An empty system prompt says nothing; exporting it would only make rows conversational.
        return bool(self.system)

    @property
    def is_single_user_turn(self) -> bool:
        """True when the prompt fits a plain string: one user turn and no system prompt."""
        return not self.has_system and len(self.turns) == 1


def _check_decision(pair_id: int, decision: str | None) -> None:
    if decision is not None and decision not in DECISIONS:
        raise InvalidRecordError(f"pair {pair_id}: unknown decision {str(decision)!r}")


def _check_vote(judgment_id: int, choice: str, strength: int | None, scale_size: int) -> None:
    if choice not in CHOICES:
        raise InvalidRecordError(f"judgment {judgment_id}: unknown choice {str(choice)!r}")
    if strength is not None and not 0 <= strength < scale_size:
        raise InvalidRecordError(
            f"judgment {judgment_id}: strength {strength} is outside the project's scale "
            f"of {scale_size} labels"
        )


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
    criteria: dict[str, CriterionChoice]
    rater_pseudonym: str
    shown_left: CanonicalSide
    shown_at: datetime
    submitted_at: datetime
    is_gold: bool
    batch_id: int
    # Every criterion the export writes, in order: each row gets all of them (one fixed set of
    # keys per file), "" where this vote gave none. Must hold every key of `criteria`.
    criteria_names: tuple[str, ...] = ()
    # The pair's adjudicated decision, if an admin recorded one (it overrides the votes).
    adjudication: Decision | None = None

    def __post_init__(self) -> None:
        where = f"judgment {self.judgment_id}"
        _check_vote(self.judgment_id, self.choice, self.strength, len(self.strength_scale))
        _check_decision(self.pair_id, self.adjudication)
        if self.shown_left not in SIDES:
            raise InvalidRecordError(f"{where}: shown_left must be 'a' or 'b'")
        for criterion, choice in self.criteria.items():
            if choice not in CRITERION_CHOICES:
                raise InvalidRecordError(
                    f"{where}: criterion {criterion!r} has choice {str(choice)!r}"
                )
        unnamed = set(self.criteria) - set(self.criteria_names)
        if unnamed:
            raise InvalidRecordError(
                f"{where}: criteria {sorted(unnamed)} are not among the export's criteria_names"
            )

    @property
    def left_response_id(self) -> int:
        return self.response_a_id if self.shown_left == CanonicalSide.A else self.response_b_id

    @property
    def winner_as_shown(self) -> str:
        """The choice in the rater's words: the answer they picked by where it was shown."""
        side = chosen_side(self.choice)
        if side is None:
            return self.choice  # a tie or both bad reads the same either way
        return ShownSide.LEFT if side == self.shown_left else ShownSide.RIGHT

    @property
    def strength_label(self) -> str | None:
        return None if self.strength is None else self.strength_scale[self.strength]


@dataclass(frozen=True, slots=True)
class PairVotes:
    """One pair with the choices of its selected votes, in judgment id order.

    All that aggregation reads: the database export gets one per pair in a single row, instead
    of one `VoteRecord` per judgment that repeats the pair's texts; `from_votes` builds it from
    records. `strengths` are indexes on `strength_scale` (None where a vote gave none). A pair
    an admin adjudicated carries the decision, and may have no selected votes at all.
    """

    pair_id: int
    prompt: PromptRecord
    response_a: str
    response_b: str
    model_a: str
    model_b: str
    judgment_ids: tuple[int, ...]
    choices: tuple[Choice, ...]
    strengths: tuple[int | None, ...]
    strength_scale: tuple[str, ...]
    adjudication: Decision | None = None

    def __post_init__(self) -> None:
        count = len(self.judgment_ids)
        _check_decision(self.pair_id, self.adjudication)
        empty = not count and self.adjudication is None
        if empty or len(self.choices) != count or len(self.strengths) != count:
            raise InvalidRecordError(
                f"pair {self.pair_id}: votes must have an id, choice, strength"
            )
        scale = len(self.strength_scale)
        for judgment_id, choice, strength in zip(
            self.judgment_ids, self.choices, self.strengths, strict=True
        ):
            _check_vote(judgment_id, choice, strength, scale)

    @classmethod
    def from_votes(cls, votes: Sequence[VoteRecord]) -> "PairVotes":
        """The votes of one pair (as `PairGrouper` cuts them) as one record."""
        first = votes[0]
        return cls(
            pair_id=first.pair_id,
            prompt=first.prompt,
            response_a=first.response_a,
            response_b=first.response_b,
            model_a=first.model_a,
            model_b=first.model_b,
            judgment_ids=tuple(vote.judgment_id for vote in votes),
            choices=tuple(vote.choice for vote in votes),
            strengths=tuple(vote.strength for vote in votes),
            strength_scale=first.strength_scale,
            adjudication=first.adjudication,
        )


class InvalidExportOptions(BadRequest):
    """Bad export options are the caller's mistake (400); a bad record is a bug upstream."""
