"""Deterministic train/test split by conversation, so no prompt is in both splits.

The unit is the prompt's conversation, not its id: the same system prompt and turns imported
under two ids (the import docs suggest a new id for repeated prompt text) must land on the
same side. Each text is whitespace-normalised (runs of whitespace become one space, ends
trimmed), and the conversation is the JSON array [system, [[role, content], ...]] of the
normalised texts (no system prompt is ""). A prompt goes to test when the first 8 bytes of
sha256(json([conversation, seed])), read as a fraction of 2**64, fall below the test
fraction. sha256 rather than Python's `hash`, which is salted per process.
"""

import hashlib
import json
import re
from array import array
from dataclasses import replace
from enum import StrEnum

import numpy as np

from pickwise.exports.dataset.records import InvalidExportOptions, PromptRecord


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"


def normalize_whitespace(text: str) -> str:
    return " ".join(text.split())


def conversation(prompt: PromptRecord) -> list[object]:
    """What decides a prompt's split: its normalised system prompt and turns, not its id."""
    return [
        normalize_whitespace(prompt.system or ""),
        [[turn.role, normalize_whitespace(turn.content)] for turn in prompt.turns],
    ]


def prompt_bucket(prompt: PromptRecord, seed: int) -> float:
    """Where the prompt falls in [0, 1); the same for the same conversation and seed,
    everywhere, whatever the prompt's id."""
    key = json.dumps([conversation(prompt), seed], ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(key).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for_prompt(prompt: PromptRecord, *, test_fraction: float, seed: int) -> Split:
    check_test_fraction(test_fraction)
    bucket = prompt_bucket(split_unit(prompt), seed)
    return Split.TEST if bucket < test_fraction else Split.TRAIN


# Live conversations (pickwise.conversations): each judged turn is a prompt of its own, with
# the id "conversation:<id>:turn:<turn id>" and the whole conversation before it as turns.
# All turns of a conversation begin alike, so they split by that beginning: the system
# prompt and the first user message, as that one-turn prompt would. Every turn of a
# conversation lands on one side, and so does every conversation that opens alike.
_CONVERSATION_TURN = re.compile(r"conversation:[0-9]+:turn:[0-9]+")


def split_unit(prompt: PromptRecord) -> PromptRecord:
    """The prompt whose conversation decides this one's split: itself, or for a live
    conversation's turn, its opening."""
    if len(prompt.turns) > 1 and _CONVERSATION_TURN.fullmatch(prompt.external_id):
        return replace(prompt, turns=prompt.turns[:1])
    return prompt


def check_test_fraction(test_fraction: float) -> None:
    if not 0.0 <= test_fraction <= 1.0:
        raise InvalidExportOptions("test_fraction must be between 0 and 1")


class RepeatedPrompts:
    """Counts prompts whose conversation another exported prompt id has too.

    Keeps 8 bytes per prompt (a digest of its conversation), not the texts.
    """

    def __init__(self) -> None:
        self._digests = array("Q")

    def add(self, prompt: PromptRecord) -> None:
        """Call once per prompt id."""
        key = json.dumps(conversation(prompt), ensure_ascii=False).encode("utf-8")
        self._digests.append(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    @property
    def prompts(self) -> int:
        return len(self._digests)

    def repeated(self) -> int:
        """Prompt ids that share their conversation with at least one other prompt id."""
        _, counts = np.unique(np.frombuffer(self._digests, dtype=np.uint64), return_counts=True)
        return int(counts[counts > 1].sum())
