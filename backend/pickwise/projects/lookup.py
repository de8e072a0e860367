"""Finding a project by what a person types (its slug). Its own module, apart from the
project rules (projects.service, which load the whole assignments machinery), so the CLI's
commands load only this: each `pickwise` command pays for every module it loads before it
starts (tests/cli/test_startup.py)."""

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.errors import NotFound
from pickwise.models import Project
from pickwise.projects import repository


async def get_by_slug_or_404(session: AsyncSession, slug: str) -> Project:
    project = await repository.get_by_slug(session, slug)
    if project is None:
        raise NotFound(f"project {slug!r}: no such project")
    return project
