import dataclasses
import io
import itertools

import pytest

from pickwise.batches.pairing import canonical_pair, generate_pairs, gold_pairs
from pickwise.batches.parsing.reader import iter_records
from pickwise.batches.parsing.records import ParsedPrompt
from pickwise.vocabulary import PairingStrategy
from tests.batches.import_files import jsonl, pair_record, responses_record


def prompt_with(ids: list[str], prompt_id: str = "p1", gold: str | None = None) -> ParsedPrompt:
    record = responses_record(
        prompt_id, responses=[{"id": i, "model": "m", "content": f"text {i}"} for i in ids]
    )
    if gold is not None:
        record["gold"] = {"winner": gold}
    [prompt] = iter_records(io.BytesIO(jsonl(record)), filename="b.jsonl")
    return prompt


def is_canonical(pairs: list[tuple[str, str]]) -> bool:
    return all(a < b for a, b in pairs) and len(set(pairs)) == len(pairs)


def test_all_gives_every_combination_in_canonical_order() -> None:
    pairs = generate_pairs(prompt_with(["c", "a", "b"]), "all", k=1, seed=0)
    assert pairs == [("a", "b"), ("a", "c"), ("b", "c")]


def test_all_with_many_responses() -> None:
    ids = [f"r{i:02d}" for i in range(10)]
    pairs = generate_pairs(prompt_with(ids), "all", k=1, seed=0)
    assert len(pairs) == 45
    assert is_canonical(pairs)


def test_random_k_is_reproducible_from_seed_and_prompt_id() -> None:
    ids = [f"r{i:02d}" for i in range(12)]
    first = generate_pairs(prompt_with(ids), "random_k", k=5, seed=42)
    again = generate_pairs(prompt_with(ids), "random_k", k=5, seed=42)

    assert first == again
    assert len(first) == 5
    assert is_canonical(first)
    assert set(first) <= set(itertools.combinations(sorted(ids), 2))


def test_random_k_is_pinned_across_runs_and_python_versions() -> None:
    ids = [f"r{i:02d}" for i in range(8)]
    # Pinned: a change here means stored batches could no longer be regenerated.
    assert generate_pairs(prompt_with(ids), "random_k", k=3, seed=7) == [
        ("r00", "r04"),
        ("r01", "r07"),
        ("r03", "r04"),
    ]


def test_random_k_differs_between_seeds_and_prompts() -> None:
    ids = [f"r{i:02d}" for i in range(12)]
    draws = {
        tuple(generate_pairs(prompt_with(ids, prompt_id), "random_k", k=4, seed=seed))
        for prompt_id in ("p1", "p2", "p3")
        for seed in (1, 2, 3)
    }
    assert len(draws) > 5


def test_random_k_larger_than_the_combinations_gives_all() -> None:
    prompt = prompt_with(["a", "b", "c"])
    assert generate_pairs(prompt, "random_k", k=10, seed=1) == generate_pairs(prompt, "all", 1, 1)


def test_random_k_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        generate_pairs(prompt_with(["a", "b"]), "random_k", k=0, seed=1)


def test_gold_pairs_are_always_included_and_count_towards_k() -> None:
    ids = [f"r{i:02d}" for i in range(10)]
    for seed in range(20):
        pairs = generate_pairs(prompt_with(ids, gold="r05"), "random_k", k=3, seed=seed)
        assert len(pairs) == 9  # More gold pairs than k: all gold pairs, nothing else.
        assert all("r05" in pair for pair in pairs)
    prompt = prompt_with(["a", "b", "c", "d"], gold="c")
    for seed in range(20):
        pairs = generate_pairs(prompt, "random_k", k=4, seed=seed)
        assert len(pairs) == 4
        assert {("a", "c"), ("b", "c"), ("c", "d")} <= set(pairs)


def test_gold_pairs_with_more_than_two_responses() -> None:
    prompt = prompt_with(["b", "a", "c"], gold="b")
    assert gold_pairs(prompt) == [("a", "b"), ("b", "c")]
    assert gold_pairs(prompt_with(["a", "b"])) == []


def test_explicit_pairs_are_used_as_given_and_canonicalised() -> None:
    [prompt] = iter_records(io.BytesIO(jsonl(pair_record("p1"))), filename="b.jsonl")
    reversed_pair = dataclasses.replace(prompt, explicit_pairs=(("b", "a"),))
    strategies = tuple(PairingStrategy)
    for strategy in strategies:
        assert generate_pairs(prompt, strategy, k=5, seed=1) == [("a", "b")]
        assert generate_pairs(reversed_pair, strategy, k=5, seed=1) == [("a", "b")]


def test_canonical_pair() -> None:
    assert canonical_pair("b", "a") == ("a", "b") == canonical_pair("a", "b")
