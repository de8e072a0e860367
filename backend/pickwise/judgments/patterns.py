"""A rater's own choice patterns: the private "what your choices teach" summary."""

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.text_features import ChoiceRecord, PatternLine, choice_pattern_summary
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


async def rater_choice_records(
    session: AsyncSession, project_id: int, rater_id: int, limit: int = MAX_JUDGMENTS
) -> list[ChoiceRecord]:
    """The rater's latest judgments in the project, with the texts they compared; without
    their prompts (left empty), which the summary's lines never look at."""
    rows = await repository.latest_choices(session, project_id, rater_id, limit)
    return [
        ChoiceRecord("", text_a, text_b, choice, left_side)
        for text_a, text_b, choice, left_side in rows
    ]


async def rater_choice_patterns(
    session: AsyncSession, project_id: int, rater_id: int
) -> ChoicePatterns:
    records = await rater_choice_records(session, project_id, rater_id)
    # Text features are regex work on every answer: keep it off the event loop.
    lines = await asyncio.to_thread(choice_pattern_summary, records)
    decisive = sum(chosen_side(record.choice) is not None for record in records)
    return ChoicePatterns(judged=len(records), decisive=decisive, lines=lines)
