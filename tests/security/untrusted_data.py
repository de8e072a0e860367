"""Committed data whose every user-supplied text is an XSS payload (tests/security/payloads).

One main project carries payloads in its name, description, guidelines, strength and
criterion labels, prompts (system and turns), responses, model names, batch file names,
flag notes, rationales, pools, webhooks and chat endpoints. Every payload is also a project
name, a user's display name, a batch file name, a flag note, an API token name and a pool,
webhook and endpoint label; a few small projects spread the labels (at most 30 a project).
"""

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.assignments import service as assignments
from pickwise.auth import service as auth_service
from pickwise.core.security import new_pseudonym, token_digest
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import (
    ApiToken,
    Batch,
    Pair,
    PairFlag,
    Project,
    ProjectMember,
    Prompt,
    Response,
    User,
)
from pickwise.models.generation import GenerationEndpoint
from pickwise.models.pools import PoolParticipant, RaterPool
from pickwise.models.webhooks import Webhook
from tests.factories import make_pairs
from tests.security.payloads import PAYLOADS, Payload, chunks, markdown_document

# Texts that sit in attributes (href, value, aria-label) get the attribute breakers.
URL_BREAKERS = (
    'https://a.example/"><script>__xss=1</script>',
    "https://a.example/'onmouseover='__xss=1'x='",
    'https://a.example/"onfocus="__xss=1"autofocus="',
    "https://a.example/</title><svg/onload=__xss=1>",
)
LABELS_PER_PROJECT = 30  # 20 criteria and 10 strength labels


def by_start(start: str) -> Payload:
    return next(p for p in PAYLOADS if p.body.startswith(start))


MAIN_NAME = by_start("</title>")
RATER_NAME = by_start('"><script>')
ADMIN_NAME = by_start("' onfocus=")
FELLOW_NAMES = (by_start('" onmouseover='), by_start('"autofocus'), by_start("</option>"))
PARTICIPANT_NAME = by_start("<img src=x onerror=__xss=1>")
MODEL_NAMES = (by_start("<svg onload"), by_start("<svg><script>"), by_start("</style><script>"))
COMPLETION = by_start("</textarea>")


@dataclass(frozen=True)
class UntrustedSite:
    main_project_id: int
    label_project_ids: tuple[int, ...]
    rater_cookie: str
    admin_cookie: str
    participant_cookie: str


def _user(display_name: str, role: str = "rater") -> User:
    return User(
        email=f"u{secrets.token_hex(6)}@example.org",
        display_name=display_name,
        role=role,
        pseudonym=new_pseudonym(),
    )


def _batch(project: Project, filename: str) -> Batch:
    return Batch(project_id=project.id, filename=filename, sha256="0" * 64, source="web")


async def _pairs_with_payload_content(
    session: AsyncSession, project: Project, batch: Batch
) -> list[Pair]:
    """One prompt whose system prompt, turns and three answers hold every payload; two pairs
    between answers whose model names are payloads too."""
    document = markdown_document()
    reversed_document = markdown_document(tuple(reversed(PAYLOADS)))
    prompt = Prompt(
        project_id=project.id,
        batch_id=batch.id,
        external_id="untrusted",
        system=document,
        turns=[
            {"role": "user", "content": document},
            {"role": "assistant", "content": reversed_document},
            {"role": "user", "content": document},
        ],
        content_hash="0" * 64,
    )
    session.add(prompt)
    await session.flush()
    answers = [
        Response(
            project_id=project.id,
            prompt_id=prompt.id,
            external_id=str(index),
            model=model.text,
            content=f"Answer {index}\n\n{content}",
        )
        for index, (model, content) in enumerate(
            zip(MODEL_NAMES, (document, reversed_document, document), strict=True)
        )
    ]
    session.add_all(answers)
    await session.flush()
    pairs = [
        Pair(
            project_id=project.id,
            prompt_id=prompt.id,
            batch_id=batch.id,
            response_a_id=answers[0].id,
            response_b_id=answers[other].id,
        )
        for other in (1, 2)
    ]
    session.add_all(pairs)
    await session.flush()
    return pairs


async def _flagged_pair(session: AsyncSession, project: Project, flaggers: list[User]) -> None:
    """A pair waiting for the admin, flagged once per payload with the payload as the note."""
    batch = _batch(project, MAIN_NAME.text)
    session.add(batch)
    await session.flush()
    prompt = Prompt(
        project_id=project.id,
        batch_id=batch.id,
        external_id="flagged",
        system=None,
        turns=[{"role": "user", "content": RATER_NAME.text}],
        content_hash="0" * 64,
    )
    session.add(prompt)
    await session.flush()
    answers = [
        Response(
            project_id=project.id, prompt_id=prompt.id, external_id=str(i), model="m", content=c
        )
        for i, c in enumerate(("first", "second"))
    ]
    session.add_all(answers)
    await session.flush()
    pair = Pair(
        project_id=project.id,
        prompt_id=prompt.id,
        batch_id=batch.id,
        response_a_id=answers[0].id,
        response_b_id=answers[1].id,
        status="flagged",
    )
    session.add(pair)
    await session.flush()
    session.add_all(
        PairFlag(
            project_id=project.id, pair_id=pair.id, rater_id=user.id, reason="other", note=p.text
        )
        for p, user in zip(PAYLOADS, flaggers, strict=True)
    )


def _integrations(project: Project) -> list[object]:
    rows: list[object] = []
    for number, payload in enumerate(PAYLOADS):
        url = URL_BREAKERS[number % len(URL_BREAKERS)]
        rows.append(
            RaterPool(
                project_id=project.id,
                name=payload.text,
                token_hash=token_digest(secrets.token_urlsafe(16)),
                token_prefix="tok",
                quota=1,
                completion_code=payload.text,
                completion_url=url,
            )
        )
        rows.append(
            Webhook(
                project_id=project.id,
                url=url,
                description=payload.text,
                secret="s",
                events=["batch.imported"],
            )
        )
        rows.append(
            GenerationEndpoint(
                project_id=project.id, name=f"m{number}", base_url=url, model=payload.text
            )
        )
    return rows


async def _judge(session: AsyncSession, project: Project, rater: User, rationale: str) -> None:
    assignment = await assignments.next_lease(session, project, rater)
    assert assignment is not None
    await judgments.submit(
        session,
        assignment.assignment_id,
        rater,
        JudgmentIn(choice="left", strength=1, rationale=rationale),
    )


async def seed_untrusted_site(engine: AsyncEngine) -> UntrustedSite:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        admin = _user(ADMIN_NAME.text, role="admin")
        rater = _user(RATER_NAME.text)
        fellows = [_user(name.text) for name in FELLOW_NAMES]
        participant = _user(PARTICIPANT_NAME.text)
        people = [_user(p.text) for p in PAYLOADS]
        session.add_all([admin, rater, participant, *fellows, *people])
        main = Project(
            slug="untrusted",
            name=MAIN_NAME.text,
            description="\n".join(p.text for p in PAYLOADS),
            guidelines_md=markdown_document(),
            strength_scale=[p.text for p in PAYLOADS[:10]],
            criteria=[p.text for p in PAYLOADS[10:30]],
            raters_per_pair=5,
        )
        named = [Project(slug=f"named-{p.number}", name=p.text) for p in PAYLOADS]
        session.add_all([main, *named])
        await session.flush()

        label_projects = []
        for number, chunk in enumerate(chunks(LABELS_PER_PROJECT)):
            project = named[chunk[0].number]
            project.criteria = [p.text for p in chunk[:20]]
            project.strength_scale = [p.text for p in chunk[20:]]
            label_projects.append(project)
            await make_pairs(session, project, 1, models=(f"a{number}", f"b{number}"))
        # Half the people are members (the members table), half are not (the add-member list).
        members = [rater, participant, *fellows, *people[::2]]
        session.add_all(ProjectMember(project_id=main.id, user_id=u.id) for u in members)
        session.add_all(ProjectMember(project_id=p.id, user_id=rater.id) for p in named)

        content_batch = _batch(main, PAYLOADS[0].text)
        session.add_all([content_batch, *(_batch(main, p.text) for p in PAYLOADS[1:])])
        await session.flush()
        await _pairs_with_payload_content(session, main, content_batch)
        await assignments.create_slots(session, main, content_batch.id)
        await _flagged_pair(session, main, people)
        session.add_all(_integrations(main))
        session.add_all(
            ApiToken(token_hash=token_digest(p.text), prefix="pw_x", name=p.text, user_id=rater.id)
            for p in PAYLOADS
        )
        await session.flush()

        # Votes, so the dashboard shows its raters, agreement and leaderboard.
        for fellow, payload in zip(fellows, PAYLOADS, strict=False):
            for _ in range(2):
                await _judge(session, main, fellow, payload.text)
        # A study participant who has finished: the completion page shows the pool's code.
        study = RaterPool(
            project_id=main.id,
            name=COMPLETION.text,
            token_hash=token_digest(secrets.token_urlsafe(16)),
            token_prefix="tok",
            quota=1,
            completion_code=COMPLETION.text,
            completion_url=URL_BREAKERS[0],
        )
        session.add(study)
        await session.flush()
        session.add(PoolParticipant(pool_id=study.id, user_id=participant.id, external_id="p-1"))
        await _judge(session, main, participant, COMPLETION.text)

        cookies = [
            (await auth_service.start_session(session, user))[0]
            for user in (rater, admin, participant)
        ]
        await session.commit()
        return UntrustedSite(
            main_project_id=main.id,
            label_project_ids=tuple(p.id for p in label_projects),
            rater_cookie=cookies[0],
            admin_cookie=cookies[1],
            participant_cookie=cookies[2],
        )
