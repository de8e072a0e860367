"""A rater's own choice patterns: the private "what your choices teach" summary."""

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.text_features import (
    PatternLine,
    PatternValues,
    keep_features,
    kept_pattern_values,
    pattern_lines_of_answers,
    pattern_values,
)
from pickwise.judgments import repository
from pickwise.vocabulary import chosen_side

# The summary describes recent habits; a cap keeps the page's memory and time bounded
# however many judgments a rater has made.
MAX_JUDGMENTS = 500


@dataclass(frozen=True)
class ChoicePatterns:
    judged: int  # judgments the lines are based on (at most MAX_JUDGMENTS)
    decisive: int  # of those, the ones that picked a side (ties and "both bad" do not count)
    lines: list[PatternLine]


async def rater_choice_patterns(
    session: AsyncSession, project_id: int, rater_id: int
) -> ChoicePatterns:
    """The summary of the rater's latest judgments in the project. It comes back every so
    many judgments over much the same choices, so the answers' features are kept per process
    by answer id (an answer's text never changes): only the answers not scanned before are
    read from Postgres (~20 ms of its CPU a summary for 1,000 texts otherwise)."""
    rows = await repository.latest_choices(session, project_id, rater_id, MAX_JUDGMENTS)
    answer_ids = {answer_id for row in rows for answer_id in row[:2]}
    values = kept_pattern_values(answer_ids)
    missing = answer_ids - values.keys()
    if missing:
        texts = await repository.answer_texts(session, sorted(missing))
        # Text features are regex work on every answer: keep it off the event loop.
        values.update(await asyncio.to_thread(_scanned, texts))
    # Counting over arrays takes well under a millisecond for 500 choices: no thread for it.
    lines = pattern_lines_of_answers(rows, values)
    decisive = sum(chosen_side(choice) is not None for _, _, choice, _ in rows)
    return ChoicePatterns(judged=len(rows), decisive=decisive, lines=lines)


def _scanned(texts: dict[int, str]) -> dict[int, PatternValues]:
    return {
        answer_id: pattern_values(keep_features(answer_id, text))
        for answer_id, text in texts.items()
    }
