"""Hand-built vote streams: every id and text is predictable, so rows can be checked exactly."""

import itertools
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pickwise.batches.parsing.records import Message
from pickwise.exports.dataset.records import PromptRecord, VoteRecord
from pickwise.vocabulary import CanonicalSide, Choice

SCALE = ("slightly", "clearly", "much")
SHOWN_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_prompt(
    external_id: str,
    text: str = "What is the capital of France?",
    *,
    system: str | None = None,
    history: Sequence[str] = (),
    prompt_id: int | None = None,
) -> PromptRecord:
    """`history` alternates user, assistant, user, ... before the final user `text`."""
    roles = itertools.cycle(("user", "assistant"))
    turns = [Message(role, content) for role, content in zip(roles, history, strict=False)]
    turns.append(Message("user", text))
    return PromptRecord(
        prompt_id=prompt_id if prompt_id is not None else zlib.crc32(external_id.encode()),
        external_id=external_id,
        system=system,
        turns=tuple(turns),
    )


class VoteFactory:
    """Gives pairs increasing ids and judgments increasing ids, as the export query sorts them."""

    def __init__(self, criteria_names: tuple[str, ...] = ()) -> None:
        self._pair_ids = itertools.count(101)
        self._judgment_ids = itertools.count(1001)
        # The export's criteria, as the export query would give them.
        self.criteria_names = criteria_names

    def pair(
        self,
        prompt: PromptRecord,
        choices: Sequence[Choice],
        *,
        strengths: Sequence[int | None] | None = None,
        scale: tuple[str, ...] = SCALE,
        criteria: dict[str, str] | None = None,
        rationale: str | None = None,
        shown_left: CanonicalSide = "a",
        is_gold: bool = False,
        responses: tuple[str, str] | None = None,
    ) -> list[VoteRecord]:
        pair_id = next(self._pair_ids)
        response_a, response_b = responses or (
            f"answer A of pair {pair_id}",
            f"answer B of pair {pair_id}",
        )
        strengths = strengths if strengths is not None else [None] * len(choices)
        return [
            VoteRecord(
                judgment_id=next(self._judgment_ids),
                pair_id=pair_id,
                prompt=prompt,
                response_a_id=pair_id * 10 + 1,
                response_b_id=pair_id * 10 + 2,
                response_a=response_a,
                response_b=response_b,
                model_a="model-alpha",
                model_b="model-beta",
                choice=choice,
                strength=strength,
                strength_scale=scale,
                rationale=rationale,
                criteria=dict(criteria or {}),
                rater_pseudonym=f"rater-{index + 1}",
                shown_left=shown_left,
                shown_at=SHOWN_AT + timedelta(minutes=index),
                submitted_at=SHOWN_AT + timedelta(minutes=index, seconds=30),
                is_gold=is_gold,
                batch_id=7,
                criteria_names=self.criteria_names,
            )
            for index, (choice, strength) in enumerate(zip(choices, strengths, strict=True))
        ]


def mixed_stream(prompt_count: int = 40) -> list[VoteRecord]:
    """Many prompts with a mix of outcomes: enough for a train/test split to have both."""
    factory = VoteFactory()
    outcomes: list[list[Choice]] = [
        ["a", "a", "b"],
        ["b", "b", "b"],
        ["tie", "tie", "a"],
        ["a", "b"],
        ["both_bad", "both_bad", "a"],
    ]
    votes: list[VoteRecord] = []
    for index in range(prompt_count):
        prompt = make_prompt(f"prompt-{index:03d}", f"Question number {index}?")
        choices = outcomes[index % len(outcomes)]
        votes += factory.pair(prompt, choices, strengths=[index % 3] * len(choices))
    return votes
