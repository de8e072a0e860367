"""Deterministic train/test split by prompt, so no prompt is in both.

A prompt goes to test when the first 8 bytes of sha256(json([external_id, seed])), read as a
fraction of 2**64, fall below the test fraction. sha256 rather than Python's `hash`, which is
salted per process; the JSON array keeps ("ab", 1) and ("a", "b1") apart.
"""

import hashlib
import json
import re
from enum import StrEnum

from pickwise.exports.errors import InvalidExportOptions


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"


def prompt_bucket(external_id: str, seed: int) -> float:
    """Where the prompt falls in [0, 1); the same for the same id and seed, everywhere."""
    key = json.dumps([external_id, seed], ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(key).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for_prompt(external_id: str, *, test_fraction: float, seed: int) -> Split:
    check_test_fraction(test_fraction)
    bucket = prompt_bucket(split_unit(external_id), seed)
    return Split.TEST if bucket < test_fraction else Split.TRAIN


# Live conversations (pickwise.conversations): each judged turn is a prompt of its own, with
# the id "conversation:<id>:turn:<turn id>". A conversation's turns share their opening, so they
# split as one unit, "conversation:<id>", which keeps every turn of it on one side.
_CONVERSATION_TURN = re.compile(r"(conversation:[0-9]+):turn:[0-9]+")


def split_unit(external_id: str) -> str:
    """What decides the split of this prompt: its id, or its conversation's."""
    match = _CONVERSATION_TURN.fullmatch(external_id)
    return match.group(1) if match else external_id


def check_test_fraction(test_fraction: float) -> None:
    if not 0.0 <= test_fraction <= 1.0:
        raise InvalidExportOptions("test_fraction must be between 0 and 1")
