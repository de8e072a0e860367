"""What the import parser hands to the code that writes prompts, responses and pairs."""

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import Any

import orjson

from pickwise.vocabulary import TurnRole

# Bump when the canonical form below changes; otherwise every stored hash turns into a "conflict".
CONTENT_HASH_VERSION = 1
# Built once: json.dumps() with options would build an encoder per call.
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
)


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a prompt's conversation, as imported and as exported."""

    role: TurnRole
    content: str


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    external_id: str
    model: str
    content: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ParsedPrompt:
    """One validated prompt with its candidate responses.

    `turns` holds the conversation without the system prompt and always ends on a user turn.
    `explicit_pairs` is set for ready-made pairs (JSONL pairs shape and CSV): the one pair as
    given, response ids "a" and "b".
    """

    line_no: int
    external_id: str
    system: str | None
    turns: tuple[Message, ...]
    metadata: dict[str, Any]
    responses: tuple[ParsedResponse, ...]
    gold_winner: str | None
    explicit_pairs: tuple[tuple[str, str], ...] | None

    @cached_property
    def content_hash(self) -> str:
        """Identifies the content, not the line: the same prompt imported again hashes the
        same, whatever the file format, key order or id. Computed on first use, because the
        validation pass never needs it (no slots, so cached_property can store it)."""
        return compute_content_hash(
            system=self.system,
            turns=self.turns,
            metadata=self.metadata,
            responses=self.responses,
            gold_winner=self.gold_winner,
            explicit_pairs=self.explicit_pairs,
        )


def compute_content_hash(
    *,
    system: str | None,
    turns: tuple[Message, ...],
    metadata: dict[str, Any],
    responses: tuple[ParsedResponse, ...],
    gold_winner: str | None,
    explicit_pairs: tuple[tuple[str, str], ...] | None,
) -> str:
    """sha256 (hex) of the UTF-8 canonical JSON (sorted keys, no spaces, no ASCII escaping) of

        [version, system, gold_winner, metadata,
         [role, content, role, content, ...],
         [response id, model, content, metadata, ...],   # responses sorted by id
         [a, b, ...] or null]                            # explicit pairs, as given

    Responses are sorted by id so that listing the same responses in another order is not a
    change (with default ids the position is the id, so there it is one).
    """
    canonical: list[Any] = [CONTENT_HASH_VERSION, system, gold_winner, metadata]
    canonical.append([part for turn in turns for part in (turn.role, turn.content)])
    canonical.append(
        [
            part
            for response in sorted(responses, key=attrgetter("external_id"))
            for part in (response.external_id, response.model, response.content, response.metadata)
        ]
    )
    pairs = None if explicit_pairs is None else [p for pair in explicit_pairs for p in pair]
    canonical.append(pairs)
    return hashlib.sha256(canonical_json(canonical)).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The UTF-8 canonical JSON of a value made of what a parsed file holds.

    orjson writes the same bytes as the stdlib encoder above for text, integers within 64
    bits, booleans, null, lists and objects (sorted keys), at a fifth of its CPU: ~20 µs of
    the reader's ~100 a task (docs/benchmarks.md, "i28d"). Floats it writes its own way
    (1e-05 as 0.00001), and a larger integer it refuses: a value holding either takes the
    stdlib encoder, so no stored hash changes (tests/batches/test_content_hash.py)."""
    if not _holds_float(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # An integer beyond 64 bits.
    return _CANONICAL_JSON.encode(value).encode("utf-8")


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
