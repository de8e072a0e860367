"""Hypothesis strategies for valid import records, with the ParsedPrompt each must parse to."""

from dataclasses import dataclass
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from pickwise.batches.parsing.records import (
    Message,
    ParsedPrompt,
    ParsedResponse,
    compute_content_hash,
)

# Any text Postgres can store (no NUL, no lone surrogates).
any_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20
)
filled_text = any_text.filter(lambda text: bool(text.strip()))
# Raw CSV cells read line breaks as "\n", so "\r" does not survive a CSV round trip.
filled_csv_text = filled_text.filter(lambda text: "\r" not in text)
id_text = filled_text.filter(lambda text: text == text.strip())
prompt_ids = st.one_of(id_text, st.integers(min_value=-(10**12), max_value=10**12))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=8,
)
metadata_objects = st.dictionaries(any_text, json_values, max_size=3)


@dataclass(frozen=True)
class Expected:
    """What a generated record must parse to (apart from its line number)."""

    external_id: str
    system: str | None
    turns: tuple[Message, ...]
    metadata: dict[str, Any]
    responses: tuple[ParsedResponse, ...]
    gold_winner: str | None
    explicit_pairs: tuple[tuple[str, str], ...] | None

    def matches(self, prompt: ParsedPrompt) -> bool:
        return (
            prompt.external_id,
            prompt.system,
            prompt.turns,
            prompt.metadata,
            prompt.responses,
            prompt.gold_winner,
            prompt.explicit_pairs,
            prompt.content_hash,
        ) == (
            self.external_id,
            self.system,
            self.turns,
            self.metadata,
            self.responses,
            self.gold_winner,
            self.explicit_pairs,
            self.content_hash,
        )

    @property
    def content_hash(self) -> str:
        return compute_content_hash(
            system=self.system,
            turns=self.turns,
            metadata=self.metadata,
            responses=self.responses,
            gold_winner=self.gold_winner,
            explicit_pairs=self.explicit_pairs,
        )


@st.composite
def conversations(
    draw: st.DrawFn, text: st.SearchStrategy[str] = filled_text
) -> tuple[dict[str, Any], str | None, tuple[Message, ...]]:
    """(the record's prompt fields, system prompt, turns) in any of the accepted spellings."""
    system = draw(st.none() | text)
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        prompt = draw(text)
        fields["prompt"] = prompt
        turns: tuple[Message, ...] = (Message("user", prompt),)
        if system is not None:
            fields["system"] = system
        return fields, system, turns
    turn_count = draw(st.sampled_from([1, 3, 5]))
    contents = draw(st.lists(filled_text, min_size=turn_count, max_size=turn_count))
    turns = tuple(
        Message("user" if index % 2 == 0 else "assistant", content)
        for index, content in enumerate(contents)
    )
    messages = [{"role": turn.role, "content": turn.content} for turn in turns]
    if system is not None:
        if draw(st.booleans()):
            messages.insert(0, {"role": "system", "content": system})
        else:
            fields["system"] = system
    fields["messages"] = messages
    return fields, system, turns


@st.composite
def responses_records(draw: st.DrawFn) -> tuple[dict[str, Any], Expected]:
    record_id = draw(prompt_ids)
    record, system, turns = draw(conversations())
    record["id"] = record_id
    count = draw(st.integers(min_value=2, max_value=6))
    contents = draw(st.lists(filled_text, min_size=count, max_size=count, unique_by=str.strip))
    models = draw(st.lists(filled_text, min_size=count, max_size=count))
    given_ids = draw(st.lists(st.none() | prompt_ids, min_size=count, max_size=count))
    ids = [str(index) if given is None else str(given) for index, given in enumerate(given_ids)]
    assume(len(set(ids)) == count)
    metadatas = draw(st.lists(st.none() | metadata_objects, min_size=count, max_size=count))
    items: list[dict[str, Any]] = []
    for given, model, content, metadata in zip(given_ids, models, contents, metadatas, strict=True):
        item: dict[str, Any] = {"model": model, "content": content}
        if given is not None:
            item["id"] = given
        if metadata is not None:
            item["metadata"] = metadata
        items.append(dict(draw(st.permutations(list(item.items())))))
    record["responses"] = items
    metadata = draw(st.none() | metadata_objects)
    if metadata is not None:
        record["metadata"] = metadata
    winner = draw(st.none() | st.integers(min_value=0, max_value=count - 1))
    if winner is not None:
        record["gold"] = {
            "winner": given_ids[winner] if given_ids[winner] is not None else ids[winner]
        }
    expected = Expected(
        external_id=str(record_id),
        system=system,
        turns=turns,
        metadata=metadata or {},
        responses=tuple(
            ParsedResponse(i, m, c, meta or {})
            for i, m, c, meta in zip(ids, models, contents, metadatas, strict=True)
        ),
        gold_winner=None if winner is None else ids[winner],
        explicit_pairs=None,
    )
    return dict(draw(st.permutations(list(record.items())))), expected


@st.composite
def pair_records(draw: st.DrawFn) -> tuple[dict[str, Any], Expected]:
    """Ready-made pairs whose text also survives CSV (see filled_csv_text)."""
    record_id = draw(
        st.one_of(
            filled_csv_text.filter(lambda t: t == t.strip()),
            prompt_ids.filter(lambda i: isinstance(i, int)),
        )
    )
    record, system, turns = draw(conversations(filled_csv_text))
    record["id"] = record_id
    content_a, content_b = draw(
        st.lists(filled_csv_text, min_size=2, max_size=2, unique_by=str.strip)
    )
    model_a, model_b = draw(st.lists(filled_csv_text, min_size=2, max_size=2))
    record |= {"response_a": content_a, "response_b": content_b}
    record |= {"model_a": model_a, "model_b": model_b}
    metadata = draw(st.none() | metadata_objects)
    if metadata is not None:
        record["metadata"] = metadata
    winner = draw(st.sampled_from([None, "a", "b"]))
    if winner is not None:
        record["gold"] = {"winner": winner}
    expected = Expected(
        external_id=str(record_id),
        system=system,
        turns=turns,
        metadata=metadata or {},
        responses=(
            ParsedResponse("a", model_a, content_a, {}),
            ParsedResponse("b", model_b, content_b, {}),
        ),
        gold_winner=winner,
        explicit_pairs=(("a", "b"),),
    )
    return dict(draw(st.permutations(list(record.items())))), expected
