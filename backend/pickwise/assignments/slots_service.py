"""Opening pairs to raters: the slots a pair gets and where they join the queue.

Its own module, apart from the rest of handing out pairs (assignments.service), so an import
(batches.service) loads only what it calls: `pickwise import` pays for every module it loads
before it starts (tests/cli/test_startup.py).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import slots_repository
from pickwise.assignments.slots_repository import QueueRules
from pickwise.core.db import driver_connection
from pickwise.models import Project
from pickwise.overlap.rules import OverlapPolicy


def queue_rules(project: Project) -> QueueRules:
    return QueueRules.of(project)


async def create_slots(
    session: AsyncSession,
    project: Project,
    batch_id: int | None = None,
    *,
    raised_only: bool = False,
) -> int:
    """Give every non-gold pair (of one batch, or of the project; with ``raised_only``, of
    the pairs that want more votes than that) the slots it lacks: the project's k (fixed) or
    its minimum raters (adaptive), or the pair's votes wanted if more; new pairs join the end
    of the queue, in the project's pair order."""
    return await slots_repository.create_slots(
        await driver_connection(session),
        project.id,
        OverlapPolicy.of(project).initial_slots,
        queue_rules(project),
        batch_id,
        raised_only=raised_only,
    )
