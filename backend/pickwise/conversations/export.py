"""The chosen path of each conversation, for supervised fine-tuning: one row per conversation,
`{"messages": [...]}` (TRL's conversational SFT format), with the system prompt, the
imported opener's earlier turns, and each judged turn's message and the reply the rater kept
(their edit where they made one).

A path stops before a turn whose kept reply should not be imitated: one the rater called
"both bad" and did not rewrite, or whose pair an admin removed. Conversations with no turn
left are not exported. Rows split like the preference export: a conversation by its opening.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.batches.parsing.records import Message
from pickwise.exports.dataset.ndjson import encode_row
from pickwise.exports.dataset.records import PromptRecord
from pickwise.exports.dataset.splits import Split, split_for_prompt
from pickwise.vocabulary import TurnRole

# Judged turns in conversation and turn order, with the reply kept and the latest edit.
_CHOSEN_TURNS = text(
    """
    SELECT c.id, c.system_prompt, c.prefix::text, t.user_content, j.choice, pr.status,
           kept.content, edit.content
    FROM conversations c
    JOIN conversation_turns t ON t.conversation_id = c.id AND t.judged_at IS NOT NULL
    JOIN pairs pr ON pr.id = t.pair_id
    JOIN judgments j ON j.pair_id = t.pair_id
    CROSS JOIN LATERAL (
        SELECT r.content FROM conversation_replies r
        WHERE r.turn_id = t.id AND r.side = t.continue_side AND r.status = 'complete'
        ORDER BY r.attempt DESC LIMIT 1
    ) kept
    LEFT JOIN LATERAL (
        SELECT e.content FROM conversation_edits e
        WHERE e.turn_id = t.id ORDER BY e.id DESC LIMIT 1
    ) edit ON true
    WHERE c.project_id = :project_id
      AND (:include_excluded OR NOT EXISTS (
          SELECT 1 FROM project_rater_exclusions x
          WHERE x.project_id = c.project_id AND x.user_id = c.rater_id
      ))
    ORDER BY c.id, t.depth
    """
)


@dataclass
class ChosenPath:
    conversation_id: int
    messages: list[dict[str, str]]
    turns: int = 0
    closed: bool = False  # a turn not to imitate was met: nothing after it is added

    def add(self, message: str, choice: str, pair_status: str, kept: str, edit: str | None) -> None:
        if self.closed:
            return
        if pair_status == "removed" or (choice == "both_bad" and edit is None):
            self.closed = True
            return
        self.messages.append({"role": "user", "content": message})
        self.messages.append({"role": "assistant", "content": edit if edit is not None else kept})
        self.turns += 1


def _start(conversation_id: int, system: str | None, prefix: list[Any]) -> ChosenPath:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": str(m["role"]), "content": str(m["content"])} for m in prefix]
    return ChosenPath(conversation_id, messages)


async def chosen_paths(
    connection: AsyncConnection, project_id: int, *, include_excluded: bool = False
) -> AsyncIterator[ChosenPath]:
    """Each conversation's chosen path with at least one turn, in conversation order."""
    current: ChosenPath | None = None
    result = await connection.stream(
        _CHOSEN_TURNS, {"project_id": project_id, "include_excluded": include_excluded}
    )
    async for row in result:
        conversation_id, system, prefix, message, choice, status, kept, edit = row
        if current is None or current.conversation_id != conversation_id:
            if current is not None and current.turns:
                yield current
            current = _start(conversation_id, system, json.loads(prefix))
        current.add(message, choice, status, kept, edit)
    if current is not None and current.turns:
        yield current


def path_split(path: ChosenPath, *, test_fraction: float, seed: int) -> Split:
    """The side the conversation's turns take in the preference exports: that of its opening,
    the system prompt and first user message (exports/splits.py)."""
    system = next((m["content"] for m in path.messages if m["role"] == "system"), None)
    first = next(m["content"] for m in path.messages if m["role"] == "user")
    opening = PromptRecord(
        prompt_id=0,
        external_id=f"conversation:{path.conversation_id}",
        system=system,
        turns=(Message(TurnRole.USER, first),),
    )
    return split_for_prompt(opening, test_fraction=test_fraction, seed=seed)


async def sft_ndjson(
    connection: AsyncConnection,
    project_id: int,
    *,
    split: Split | None,
    test_fraction: float,
    seed: int,
    include_excluded: bool = False,
) -> AsyncIterator[bytes]:
    async for path in chosen_paths(connection, project_id, include_excluded=include_excluded):
        side = path_split(path, test_fraction=test_fraction, seed=seed)
        if split is None or side == split:
            yield encode_row({"messages": path.messages})
