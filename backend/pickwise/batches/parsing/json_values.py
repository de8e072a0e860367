"""Strict JSON decoding, and checks that decoded values can be stored in Postgres."""

import json
import math
import re
from typing import Any

from pickwise.batches.parsing.fields import Problem, describe_path

# Postgres text and jsonb cannot hold NUL, and lone surrogates are not valid UTF-8.
UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")
MAX_NESTING = 64
# JSON escapes that decode to NUL or to a surrogate. Their absence from a line that is valid
# UTF-8 without NUL bytes proves every decoded string storable, which spares the walk below.
UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class _DuplicateKey(ValueError):
    pass


class _NonFiniteNumber(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


class _NumberTooLarge(ValueError):
    pass


def _finite_float(text: str) -> float:
    # float("1e999") is inf, which neither Postgres jsonb nor the content hash accepts.
    value = float(text)
    if math.isinf(value):
        raise _NumberTooLarge(text)
    return value


# One decoder for all lines: json.loads() with hooks would build a new one per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)


def decode_json(text: str) -> tuple[Any, str | None]:
    """Returns (value, None) or (None, why the text is not acceptable JSON)."""
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON: {exc.msg} (at character {exc.pos + 1})"
    except _DuplicateKey as exc:
        return None, f'is not valid JSON: the key "{exc}" appears twice in the same object'
    except _NumberTooLarge as exc:
        return None, f"is not valid JSON we accept: the number {exc} is too large"
    except _NonFiniteNumber as exc:
        return None, f"is not valid JSON: {exc} is not a number JSON allows"
    except RecursionError:
        return None, "is not valid JSON we accept: it is nested too deeply"
    except ValueError as exc:  # e.g. an integer with more digits than Python converts.
        return None, f"is not valid JSON we accept: {exc}"
    return value, None


def may_be_unstorable(json_text: str) -> bool:
    """False when a value decoded from `json_text` surely passes `unstorable_text`."""
    too_many_brackets = json_text.count("[") + json_text.count("{") > MAX_NESTING
    return too_many_brackets or UNSTORABLE_ESCAPE.search(json_text) is not None


def unstorable_text(value: Any, path: str = "") -> list[Problem]:
    """Finds text that cannot be stored, and nesting deeper than MAX_NESTING.

    Iterative, so deep values cannot exhaust the Python stack. Too deep a value is reported
    once, on its top-level field: the full path would be unreadable.
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    too_deep: set[str] = set()
    while stack:
        item, item_path, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, item_path, problems)
        elif isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                top_field = _top_field(item_path)
                if top_field not in too_deep:
                    too_deep.add(top_field)
                    message = f"is nested more than {MAX_NESTING} levels deep"
                    problems.append((describe_path(top_field), message))
                continue
            children: list[tuple[Any, str, int]] = []
            if isinstance(item, dict):
                for key, child in item.items():
                    child_path = f"{item_path}.{key}" if item_path else key
                    _check_text(key, child_path, problems)
                    children.append((child, child_path, depth + 1))
            else:
                for index, child in enumerate(item):
                    children.append((child, f"{item_path}[{index}]", depth + 1))
            # Reversed, so the stack hands them out in reading order.
            stack.extend(reversed(children))
    return problems


def _top_field(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _check_text(text: str, path: str, problems: list[Problem]) -> None:
    found = UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        message = "contains a NUL character (\\u0000), which cannot be stored"
    else:
        message = "contains an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
    problems.append((describe_path(path), message))
