"""How many raters each pair was to get: the project's overlap policy, as an export records it
(manifest.json and the dataset card), next to how many votes each exported pair has."""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OverlapNote:
    """The policy when the export was made (a policy changed mid-project applied to the pairs
    still open then; the votes per pair show what each pair got)."""

    settings: Mapping[str, object]
    summary: str


def votes_per_pair(counts: Mapping[int, int]) -> dict[str, int]:
    """{votes: pairs}, by votes, with string keys (JSON objects have no others)."""
    return {str(votes): counts[votes] for votes in sorted(counts)}


def votes_per_pair_in_words(counts: Mapping[int, int]) -> str:
    """E.g. "2 votes: 812 pairs, 3 votes: 120 pairs"."""
    return ", ".join(
        f"{_count(votes, 'vote')}: {_count(counts[votes], 'pair')}" for votes in sorted(counts)
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"
