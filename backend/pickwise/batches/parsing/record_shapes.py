"""Turns one decoded record (a JSON object, or a CSV row as a dict) into a ParsedPrompt.

Two shapes: "responses" (a prompt with a list of candidate responses) and "pairs" (a prompt
with one ready-made pair, response_a and response_b, whose responses get the ids "a" and "b").
"""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pickwise.batches.parsing.conversation import read_conversation
from pickwise.batches.parsing.fields import (
    Problem,
    check_known_fields,
    read_id,
    read_list,
    read_object,
    read_text,
)
from pickwise.batches.parsing.records import ParsedPrompt, ParsedResponse
from pickwise.batches.parsing.report import RecordShape

PROMPT_FIELDS = frozenset({"id", "prompt", "messages", "system", "metadata", "gold"})
RESPONSES_FIELDS = PROMPT_FIELDS | {"responses"}
PAIR_FIELDS = PROMPT_FIELDS | {"response_a", "response_b", "model_a", "model_b"}
PAIR_ONLY_FIELDS = PAIR_FIELDS - PROMPT_FIELDS


# Cached: built for every response of every record otherwise, and these few strings repeat
# (indexes stay below max_responses_per_prompt).
@lru_cache(maxsize=1024)
def _response_path(index: int) -> str:
    return f"responses[{index}]"


@lru_cache(maxsize=1024)
def _default_response_id(index: int) -> str:
    return str(index)


def shape_of(record: Mapping[str, Any], problems: list[Problem]) -> RecordShape | None:
    has_list = "responses" in record
    has_pair = not PAIR_ONLY_FIELDS.isdisjoint(record)
    if has_list and has_pair:
        problems.append(
            ("responses", "give either a responses list or response_a/response_b, not both")
        )
        return None
    if has_list:
        return "responses"
    if has_pair:
        return "pairs"
    problems.append(
        (
            None,
            "needs responses (a list of answers) or response_a and response_b (a ready-made pair)",
        )
    )
    return None


def parse_record(
    shape: RecordShape,
    record: Mapping[str, Any],
    line_no: int,
    max_responses: int,
    problems: list[Problem],
) -> ParsedPrompt | None:
    """Returns the prompt, or None after adding every problem found to `problems`."""
    found_before = len(problems)
    check_known_fields(
        record, RESPONSES_FIELDS if shape == "responses" else PAIR_FIELDS, "", problems
    )
    external_id = read_id(record, "id", "", problems, required=True)
    conversation = read_conversation(record, problems)
    metadata = read_object(record, "metadata", "", problems)
    if shape == "responses":
        responses = _read_response_list(record, max_responses, problems)
        explicit_pairs = None
    else:
        responses = _read_pair(record, problems)
        explicit_pairs = (("a", "b"),)
    gold_winner = _read_gold(record, shape, responses, problems)
    if (
        len(problems) > found_before
        or external_id is None
        or conversation is None
        or metadata is None
        or responses is None
    ):
        return None
    system, turns = conversation
    return ParsedPrompt(
        line_no=line_no,
        external_id=external_id,
        system=system,
        turns=turns,
        metadata=metadata,
        responses=responses,
        gold_winner=gold_winner,
        explicit_pairs=explicit_pairs,
    )


def _read_response_list(
    record: Mapping[str, Any], max_responses: int, problems: list[Problem]
) -> tuple[ParsedResponse, ...] | None:
    items = read_list(record, "responses", "", problems)
    if items is None:
        return None
    if len(items) > max_responses:
        # Not checked one by one: a limit is there to bound the work, too.
        problems.append(("responses", f"has {len(items)} responses; the limit is {max_responses}"))
        return None
    found_before = len(problems)
    if len(items) < 2:
        problems.append(("responses", "needs at least two responses to compare"))
    responses: list[ParsedResponse] = []
    for index, item in enumerate(items):
        path = _response_path(index)
        if not isinstance(item, dict):
            problems.append((path, "must be an object with a model and a content"))
            continue
        check_known_fields(item, ("id", "model", "content", "metadata"), path, problems)
        if "id" in item:
            response_id = read_id(item, "id", path, problems, required=True)
        else:
            response_id = _default_response_id(index)
        model = read_text(item, "model", path, problems, required=True)
        content = read_text(item, "content", path, problems, required=True)
        metadata = read_object(item, "metadata", path, problems)
        if response_id is None or model is None or content is None or metadata is None:
            continue
        responses.append(ParsedResponse(response_id, model, content, metadata))
    if len(problems) > found_before:
        return None
    _check_distinct(responses, problems)
    return None if len(problems) > found_before else tuple(responses)


def _check_distinct(responses: list[ParsedResponse], problems: list[Problem]) -> None:
    """Ids must be unique; contents must differ, or a rater would compare a text with itself."""
    if len({r.external_id for r in responses}) < len(responses):
        index_by_id: dict[str, int] = {}
        for index, response in enumerate(responses):
            earlier = index_by_id.setdefault(response.external_id, index)
            if earlier != index:
                message = f'"{response.external_id}" is already the id of responses[{earlier}]'
                problems.append((f"responses[{index}].id", message))
    if len({r.content.strip() for r in responses}) < len(responses):
        index_by_content: dict[str, int] = {}
        for index, response in enumerate(responses):
            earlier = index_by_content.setdefault(response.content.strip(), index)
            if earlier != index:
                message = (
                    f"is the same as responses[{earlier}].content; "
                    "every response to a prompt must be different"
                )
                problems.append((f"responses[{index}].content", message))


def _read_pair(
    record: Mapping[str, Any], problems: list[Problem]
) -> tuple[ParsedResponse, ...] | None:
    content_a = read_text(record, "response_a", "", problems, required=True)
    content_b = read_text(record, "response_b", "", problems, required=True)
    model_a = read_text(record, "model_a", "", problems, required=True)
    model_b = read_text(record, "model_b", "", problems, required=True)
    if content_a is None or content_b is None or model_a is None or model_b is None:
        return None
    if content_a.strip() == content_b.strip():
        problems.append(
            ("response_b", "is the same as response_a; a pair needs two different responses")
        )
        return None
    return ParsedResponse("a", model_a, content_a, {}), ParsedResponse("b", model_b, content_b, {})


def _read_gold(
    record: Mapping[str, Any],
    shape: RecordShape,
    responses: tuple[ParsedResponse, ...] | None,
    problems: list[Problem],
) -> str | None:
    if "gold" not in record:
        return None
    gold = record["gold"]
    if not isinstance(gold, dict):
        problems.append(("gold", 'must be an object like {"winner": "<response id>"}'))
        return None
    check_known_fields(gold, ("winner",), "gold", problems)
    winner = read_id(gold, "winner", "gold", problems, required=True)
    if winner is None or responses is None:
        return None
    if shape == "pairs" and winner not in ("a", "b"):
        problems.append(("gold.winner", f'must be "a" or "b", not "{winner}"'))
        return None
    ids = [response.external_id for response in responses]
    if winner not in ids:
        listing = ", ".join(f'"{response_id}"' for response_id in ids)
        problems.append(("gold.winner", f'"{winner}" is not the id of a response (ids: {listing})'))
        return None
    return winner
