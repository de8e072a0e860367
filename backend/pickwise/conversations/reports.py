"""What the admin sees of a conversation project: requests and tokens per endpoint, turns per
conversation and where raters stop."""

from collections import Counter
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.conversations.schemas import ConversationStats, EndpointUsage, StopPoint
from pickwise.vocabulary import ConversationStatus

_USAGE = text(
    """
    SELECT r.endpoint_id, r.endpoint_name, r.model,
           coalesce(sum(r.requests), 0),
           count(*),
           count(*) FILTER (WHERE r.status = 'failed'),
           coalesce(sum(r.prompt_tokens), 0),
           coalesce(sum(r.completion_tokens), 0),
           count(*) FILTER (WHERE r.status = 'complete' AND r.completion_tokens IS NULL),
           coalesce(sum(r.requests) FILTER (WHERE r.started_at >= :today), 0),
           coalesce(sum(coalesce(r.prompt_tokens, 0) + coalesce(r.completion_tokens, 0))
                    FILTER (WHERE r.started_at >= :today), 0)
    FROM conversation_replies r
    JOIN conversation_turns t ON t.id = r.turn_id
    JOIN conversations c ON c.id = t.conversation_id
    WHERE c.project_id = :project_id
    GROUP BY r.endpoint_id, r.endpoint_name, r.model
    ORDER BY r.endpoint_name, r.model
    """
)

# Each conversation with its judged turns and where its last turn stands.
_CONVERSATIONS = text(
    """
    SELECT c.status,
           (SELECT count(*) FROM conversation_turns t
            WHERE t.conversation_id = c.id AND t.judged_at IS NOT NULL) AS judged,
           coalesce(h.depth, 0) AS depth,
           h.judged_at IS NOT NULL AS head_judged,
           (SELECT count(*) FROM (
                SELECT DISTINCT ON (r.side) r.status FROM conversation_replies r
                WHERE r.turn_id = h.id ORDER BY r.side, r.attempt DESC
            ) current WHERE current.status = 'complete') AS complete_sides
    FROM conversations c
    LEFT JOIN LATERAL (
        SELECT t.id, t.depth, t.judged_at FROM conversation_turns t
        WHERE t.conversation_id = c.id ORDER BY t.depth DESC LIMIT 1
    ) h ON true
    WHERE c.project_id = :project_id
    """
)


async def endpoint_usage(
    session: AsyncSession, project_id: int, now: datetime
) -> list[EndpointUsage]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await session.execute(_USAGE, {"project_id": project_id, "today": today})
    return [
        EndpointUsage(
            endpoint_id=row[0],
            endpoint_name=row[1],
            model=row[2],
            requests=int(row[3]),
            replies=int(row[4]),
            failed=int(row[5]),
            prompt_tokens=int(row[6]),
            completion_tokens=int(row[7]),
            replies_without_usage=int(row[8]),
            requests_today=int(row[9]),
            tokens_today=int(row[10]),
        )
        for row in rows
    ]


async def conversation_stats(session: AsyncSession, project_id: int) -> ConversationStats:
    rows = (await session.execute(_CONVERSATIONS, {"project_id": project_id})).all()
    statuses = Counter(row.status for row in rows)
    per_turn: dict[int, StopPoint] = {}
    for row in rows:
        point = per_turn.setdefault(
            row.depth,
            StopPoint(
                turn=row.depth,
                ended_by_rater=0,
                reached_cap=0,
                open_waiting_for_replies=0,
                open_before_voting=0,
                open_after_voting=0,
            ),
        )
        if row.status == ConversationStatus.COMPLETE:
            point.reached_cap += 1
        elif row.status == ConversationStatus.ENDED:
            point.ended_by_rater += 1
        elif row.head_judged:
            point.open_after_voting += 1
        elif row.complete_sides == 2:
            point.open_before_voting += 1
        else:
            point.open_waiting_for_replies += 1
    return ConversationStats(
        conversations=len(rows),
        active=statuses[ConversationStatus.ACTIVE],
        ended=statuses[ConversationStatus.ENDED],
        complete=statuses[ConversationStatus.COMPLETE],
        judged_turns=sum(int(row.judged) for row in rows),
        turns_per_conversation=dict(sorted(Counter(int(row.judged) for row in rows).items())),
        stops=[per_turn[depth] for depth in sorted(per_turn)],
    )
