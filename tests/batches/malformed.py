"""Ways to break one line of a valid responses-shaped JSONL file.

Each mutation takes the record to break and the file's first record, and returns the broken
line (bytes, no line ending) and the field the error must name (None: the whole line).
"""

import copy
import json
from collections.abc import Callable
from typing import Any

from pickwise.batches.parsing.report import ImportLimits

Record = dict[str, Any]
Mutation = Callable[[Record, Record], tuple[bytes, str | None]]
# Lines of generated files stay far below this; the "oversized" mutation goes above it.
TEST_LIMITS = ImportLimits(max_line_bytes=200_000)


def encoded(record: Record) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def changed(record: Record, **changes: Any) -> Record:
    result = copy.deepcopy(record)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def as_messages(record: Record, roles: list[str]) -> Record:
    messages = [{"role": role, "content": f"{role} says {i}"} for i, role in enumerate(roles)]
    return changed(record, prompt=None, system=None, messages=messages)


def with_response(record: Record, index: int, **changes: Any) -> Record:
    result = copy.deepcopy(record)
    response = result["responses"][index]
    for key, value in changes.items():
        if value is None:
            response.pop(key, None)
        else:
            response[key] = value
    return result


def response_id(record: Record, index: int) -> Any:
    return record["responses"][index].get("id", str(index))


MUTATIONS: dict[str, Mutation] = {
    "missing id": lambda r, _: (encoded(changed(r, id=None)), "id"),
    "empty id": lambda r, _: (encoded(changed(r, id="")), "id"),
    "id is a list": lambda r, _: (encoded(changed(r, id=[1])), "id"),
    "id is a float": lambda r, _: (encoded(changed(r, id=1.5)), "id"),
    "duplicate id": lambda r, first: (encoded(changed(r, id=first["id"])), "id"),
    "unknown field": lambda r, _: (encoded(changed(r, score=3)), "score"),
    "missing responses": lambda r, _: (encoded(changed(r, responses=None)), None),
    "one response": lambda r, _: (encoded(changed(r, responses=r["responses"][:1])), "responses"),
    "responses is text": lambda r, _: (encoded(changed(r, responses="a, b")), "responses"),
    "empty content": lambda r, _: (
        encoded(with_response(r, -1, content="")),
        f"responses[{len(r['responses']) - 1}].content",
    ),
    "blank content": lambda r, _: (
        encoded(with_response(r, 0, content=" \n ")),
        "responses[0].content",
    ),
    "content is a number": lambda r, _: (
        encoded(with_response(r, 1, content=7)),
        "responses[1].content",
    ),
    "missing model": lambda r, _: (encoded(with_response(r, 0, model=None)), "responses[0].model"),
    "unknown response field": lambda r, _: (
        encoded(with_response(r, 1, rank=1)),
        "responses[1].rank",
    ),
    "response metadata is a list": lambda r, _: (
        encoded(with_response(r, 0, metadata=[1])),
        "responses[0].metadata",
    ),
    "same content twice": lambda r, _: (
        encoded(with_response(r, 1, content=r["responses"][0]["content"])),
        "responses[1].content",
    ),
    "same response id twice": lambda r, _: (
        encoded(with_response(r, 1, id=response_id(r, 0))),
        "responses[1].id",
    ),
    "gold winner unknown": lambda r, _: (
        encoded(changed(r, gold={"winner": "no such response ✗"})),
        "gold.winner",
    ),
    "gold is text": lambda r, _: (encoded(changed(r, gold="0")), "gold"),
    "metadata is a list": lambda r, _: (encoded(changed(r, metadata=["x"])), "metadata"),
    "prompt and messages": lambda r, _: (
        encoded(changed(as_messages(r, ["user"]), prompt="hi")),
        "messages",
    ),
    "no prompt": lambda r, _: (encoded(changed(r, prompt=None, messages=None)), None),
    "empty prompt": lambda r, _: (encoded(changed(r, messages=None, prompt="")), "prompt"),
    "ends on assistant": lambda r, _: (
        encoded(as_messages(r, ["user", "assistant"])),
        "messages[1].role",
    ),
    "starts with assistant": lambda r, _: (
        encoded(as_messages(r, ["system", "assistant", "user"])),
        "messages[1].role",
    ),
    "system in the middle": lambda r, _: (
        encoded(as_messages(r, ["user", "system", "user"])),
        "messages[1].role",
    ),
    "unknown role": lambda r, _: (encoded(as_messages(r, ["human"])), "messages[0].role"),
    "NUL escape": lambda r, _: (
        encoded(with_response(r, 0, content="a\u0000b")),
        "responses[0].content",
    ),
    "NaN": lambda r, _: (
        encoded(changed(r, metadata=None))[:-1] + b', "metadata": {"x": NaN}}',
        None,
    ),
    "truncated JSON": lambda r, _: (encoded(r)[:-5], None),
    "not an object": lambda r, _: (b"[" + encoded(r) + b"]", None),
    "duplicate key": lambda r, _: (encoded(r)[:-1] + b', "id": "again"}', None),
    "NUL byte": lambda r, _: (encoded(r)[:10] + b"\x00" + encoded(r)[10:], None),
    "invalid UTF-8": lambda r, _: (encoded(r)[:-2] + b"\xc3\x28" + encoded(r)[-2:], None),
    "oversized line": lambda r, _: (
        encoded(changed(r, metadata={"padding": "x" * TEST_LIMITS.max_line_bytes})),
        None,
    ),
    "mixed shape": lambda r, _: (
        encoded(
            {
                "id": "pair-" + str(r["id"]),
                "prompt": "q",
                "response_a": "A",
                "response_b": "B",
                "model_a": "m",
                "model_b": "n",
            }
        ),
        None,
    ),
}
