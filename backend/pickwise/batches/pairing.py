"""Which pairs of a prompt's responses raters compare.

Here a pair is two response external ids, sorted, so that each pair is drawn and stored
once. Which of the two is the pair's A is decided when it is written: the response listed
first in the file (it gets the smaller database id; see docs/import-format.md, "Pairs").
A pair is gold exactly when it contains the prompt's gold winner.
"""

import hashlib
import itertools
import random

from pickwise.batches.parsing.records import ParsedPrompt
from pickwise.vocabulary import PairingStrategy

Pair = tuple[str, str]


def canonical_pair(first: str, second: str) -> Pair:
    return (first, second) if first < second else (second, first)


def gold_pairs(prompt: ParsedPrompt) -> list[Pair]:
    """The gold winner against every other response."""
    winner = prompt.gold_winner
    if winner is None:
        return []
    others = (r.external_id for r in prompt.responses if r.external_id != winner)
    return sorted(canonical_pair(winner, other) for other in others)


def generate_pairs(
    prompt: ParsedPrompt, strategy: PairingStrategy, k: int, seed: int
) -> list[Pair]:
    """The pairs to create for `prompt`, sorted.

    Ready-made pairs (`explicit_pairs`) are used as given, whatever the strategy. "all" makes
    every combination. "random_k" draws k distinct pairs, the same ones for the same seed and
    prompt id on any machine; gold pairs are always included and count towards k (if a prompt
    has more gold pairs than k, all of them are kept).
    """
    if prompt.explicit_pairs is not None:
        return sorted({canonical_pair(a, b) for a, b in prompt.explicit_pairs})
    ids = sorted(response.external_id for response in prompt.responses)
    every_pair = list(itertools.combinations(ids, 2))
    if strategy == PairingStrategy.ALL:
        return every_pair
    if strategy != PairingStrategy.RANDOM_K:
        raise ValueError(f"unknown pair strategy {str(strategy)!r}")
    if k < 1:
        raise ValueError("k must be at least 1")
    chosen = set(gold_pairs(prompt))
    candidates = [pair for pair in every_pair if pair not in chosen]
    wanted = max(k - len(chosen), 0)
    rng = random.Random(_prompt_seed(seed, prompt.external_id))
    # Ranking by random() rather than random.sample(): random() is the one part of the
    # random module whose output Python promises not to change between versions.
    ranked = sorted(candidates, key=lambda _pair: rng.random())
    chosen.update(ranked[:wanted])
    return sorted(chosen)


def _prompt_seed(seed: int, prompt_external_id: str) -> int:
    # Not hash(): string hashes are salted per process, so pairs would differ on every run.
    digest = hashlib.sha256(f"{seed}\x00{prompt_external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
