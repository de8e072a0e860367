"""The demo project `make run` starts with: a few prompts, an admin and two raters."""

from pathlib import Path

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.config import get_settings
from pickwise.models import Project

DEMO_SLUG = "demo"
SAMPLE = Path(__file__).parent / "demo_data" / "sample_batch.jsonl"
ADMIN = ("admin@pickwise.local", "pickwise-admin")
RATERS = [("rater1@pickwise.local", "pickwise-rater"), ("rater2@pickwise.local", "pickwise-rater")]
GUIDELINES = """\
# How to judge

Pick the answer **you would rather receive**. Consider, in this order:

1. **Honesty**: is it correct? Does it admit what it does not know?
2. **Helpfulness**: does it answer what was asked, in the format asked for?
3. **Harmlessness**: does it refuse requests that would hurt someone?

Length is not quality: a short, correct answer beats a long, padded one.
Use *tie* when neither is better, *both bad* when you would want neither.
"""


async def _seed(session: AsyncSession) -> bool:
    from pickwise.batches import service as batches_service
    from pickwise.projects import repository
    from pickwise.projects import service as projects_service
    from pickwise.projects.schemas import ProjectCreate
    from pickwise.users import repository as users_repository
    from pickwise.users import service as users_service
    from pickwise.vocabulary import AccountRole

    if await repository.get_by_slug(session, DEMO_SLUG) is not None:
        return False
    admin = await users_repository.get_by_email(session, ADMIN[0])
    if admin is None:
        admin = await users_service.create_user(
            session,
            email=ADMIN[0],
            display_name="Demo admin",
            role=AccountRole.ADMIN,
            password=ADMIN[1],
        )
    project: Project = await projects_service.create_project(
        session,
        ProjectCreate(
            slug=DEMO_SLUG,
            name="Demo: which answer is better?",
            description="A few prompts from the pickwise explainer.",
            raters_per_pair=2,
            strength_scale=["slightly", "clearly", "much"],
            criteria=["helpfulness", "honesty", "harmlessness"],
            guidelines_md=GUIDELINES,
            gold_rate=0.1,
            gold_feedback=True,
            summary_every=5,
        ),
    )
    for number, (email, password) in enumerate(RATERS, start=1):
        rater = await users_repository.get_by_email(session, email)
        if rater is None:
            await users_service.create_user(
                session,
                email=email,
                display_name=f"Demo rater {number}",
                password=password,
                project_ids=[project.id],
            )
        else:
            await projects_service.add_member(session, project, rater)
    with SAMPLE.open("rb") as stream:
        await batches_service.import_stream(
            session, project, stream, filename=SAMPLE.name, source="cli", user=admin
        )
    return True


async def seed_demo(console: Console) -> None:
    from pickwise.cli.runtime import with_session

    if get_settings().environment == "production":
        console.print("Not seeding the demo project in production.")
        return
    created = await with_session(_seed)()
    console.print(
        ("Created" if created else "Found") + " the demo project. Log in at the address below as"
    )
    console.print(f"  admin:  {ADMIN[0]} / {ADMIN[1]}")
    for email, password in RATERS:
        console.print(f"  rater:  {email} / {password}")
