"""Deterministic train/test split by prompt, so no prompt is in both.

A prompt goes to test when the first 8 bytes of sha256(json([external_id, seed])), read as a
fraction of 2**64, fall below the test fraction. sha256 rather than Python's `hash`, which is
salted per process; the JSON array keeps ("ab", 1) and ("a", "b1") apart.
"""

import hashlib
import json
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
    return Split.TEST if prompt_bucket(external_id, seed) < test_fraction else Split.TRAIN


def check_test_fraction(test_fraction: float) -> None:
    if not 0.0 <= test_fraction <= 1.0:
        raise InvalidExportOptions("test_fraction must be between 0 and 1")
