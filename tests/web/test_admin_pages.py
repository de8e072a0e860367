"""Admin pages: projects (create, settings, members, flags, import), users and invites."""

import json
import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import (
    Batch,
    Pair,
    PairFlag,
    PairSlot,
    Project,
    ProjectMember,
    Prompt,
    User,
)
from pickwise.web.admin_projects import router as projects_pages
from pickwise.web.admin_users import router as users_pages
from tests.factories import (
    PASSWORD,
    add_member,
    bearer_headers,
    is_excluded,
    make_pairs,
    make_project,
    make_user,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def log_in(client: AsyncClient, email: str) -> str:
    """Logs in with the cookie and returns the session's CSRF token."""
    response = await client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303
    match = CSRF.search((await client.get("/")).text)
    assert match
    return match.group(1)


async def admin_client(client: AsyncClient, session: AsyncSession) -> tuple[User, str]:
    admin = await make_user(session, role="admin", password=PASSWORD)
    return admin, await log_in(client, admin.email)


def settings_form(csrf: str, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "name": "Helpfulness",
        "description": "Which answer helps more?",
        "raters_per_pair": "3",
        "lease_seconds": "900",
        "allow_tie": "true",
        "strength_scale": "slightly, clearly , much",
        "rationale_mode": "required",
        "criteria": "honesty, clarity",
        "guidelines_md": "# Rules\r\nBe fair.",
        "pairing_strategy": "random_k",
        "pairs_per_prompt": "2",
        "pairing_seed": "7",
        "gold_rate": "0.1",
        "gold_feedback": "true",
        "summary_every": "0",
        "overlap_mode": "fixed",
        "overlap_min": "2",
        "overlap_max": "5",
        "overlap_rule": "leader_share",
        "overlap_stop_votes": "2",
        "overlap_stop_share": "0.75",
        "overlap_stop_posterior": "0.88",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


def project_path(app: FastAPI, project: Project, query: str = "") -> str:
    return str(app.url_path_for("admin_project", project_id=str(project.id))) + query


async def flag_pair(session: AsyncSession, pair: Pair, rater: User, note: str) -> None:
    pair.status = "flagged"
    session.add(
        PairFlag(
            project_id=pair.project_id,
            pair_id=pair.id,
            rater_id=rater.id,
            reason="other",
            note=note,
        )
    )
    await session.flush()


async def count(session: AsyncSession, model: Any, project: Project) -> int:
    query = select(func.count()).select_from(model).where(model.project_id == project.id)
    return int(await session.scalar(query) or 0)


def jsonl(*rows: dict[str, Any] | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def prompt_row(external_id: str, answer: str = "answer") -> dict[str, Any]:
    return {
        "id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [
            {"id": f"r{i}", "model": f"m{i}", "content": f"{answer} {i}"} for i in range(3)
        ],
    }


def imported_rows() -> float:
    return REGISTRY.get_sample_value("pickwise_import_rows_total") or 0.0


async def upload(
    client: AsyncClient, project: Project, csrf: str, data: bytes, name: str = "b.jsonl"
) -> Response:
    return await client.post(
        f"/admin/projects/{project.id}/import",
        data={"csrf_token": csrf},
        files={"file": (name, data, "application/x-ndjson")},
    )


async def test_admin_pages_render_and_escape_user_text(
    client: AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    admin, _ = await admin_client(client, session)
    rater = await make_user(session)
    project = await make_project(session, raters_per_pair=2)
    project.name = "<script>alert(1)</script>"
    await add_member(session, project, rater)
    pairs = await make_pairs(session, project, 3)
    await flag_pair(session, pairs[0], rater, note="<b>rude</b>")

    page = await client.get(project_path(app, project))
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;rude&lt;/b&gt;" in page.text and "Question 0?" in page.text
    assert 'accept=".jsonl,.ndjson,.csv"' in page.text
    # The file name may wrap after its dots, dashes and underscores.
    assert "factory.<wbr>jsonl" in page.text and rater.email in page.text
    assert re.search(r"Judgments needed</dt><dd[^>]*>4<", page.text)  # 2 open pairs × k=2
    assert 'href="/static/css/admin.css"' in page.text

    new = await client.get("/admin/projects/new")
    assert new.status_code == 200 and 'name="slug"' in new.text
    users = await client.get("/admin/users")
    assert users.status_code == 200 and rater.email in users.text and admin.email in users.text
    assert "&lt;script&gt;" in users.text  # the project list per user


async def test_raters_get_403_on_every_admin_route(
    client: AsyncClient, session: AsyncSession
) -> None:
    rater = await make_user(session, password=PASSWORD)
    project = await make_project(session)
    await add_member(session, project, rater)
    (pair,) = await make_pairs(session, project, 1)
    headers = await bearer_headers(session, rater)
    # Each refused request rolls the request's session back: keep the data made so far.
    await session.commit()
    ids = {"project_id": project.id, "user_id": rater.id, "pair_id": pair.id, "invite_id": 1}
    rater_email = rater.email
    checked = 0
    for route in [*projects_pages.routes, *users_pages.routes]:
        path = route.path.format(**ids)  # type: ignore[attr-defined]
        for method in route.methods:  # type: ignore[attr-defined]
            response = await client.request(
                method, path, headers=headers, data={"x": "1"} if method == "POST" else None
            )
            assert response.status_code == 403, (method, path, response.status_code)
            checked += 1
    assert checked >= 13
    # Nothing happened on the way (the refusals expired the objects: use the ids).
    member = await session.get(ProjectMember, (ids["project_id"], ids["user_id"]))
    assert member is not None
    # The same for a rater logged in with the cookie: an HTML page, not JSON.
    await log_in(client, rater_email)
    page = await client.get("/admin/users")
    assert page.status_code == 403 and "Not allowed" in page.text


async def test_create_project_with_the_form(
    client: AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    _, csrf = await admin_client(client, session)
    form = settings_form(csrf, slug="helpful-1", allow_tie=None)
    response = await client.post("/admin/projects", data=form)
    assert response.status_code == 303
    project = await session.scalar(select(Project).where(Project.slug == "helpful-1"))
    assert project is not None
    assert response.headers["location"] == project_path(app, project, "?done=created")
    assert project.raters_per_pair == 3 and project.lease_seconds == 900
    assert project.allow_tie is False and project.allow_both_bad is False
    assert project.strength_scale == ["slightly", "clearly", "much"]
    assert project.criteria == ["honesty", "clarity"]
    assert project.guidelines_md == "# Rules\nBe fair."
    assert (project.pairing_strategy, project.pairs_per_prompt, project.pairing_seed) == (
        "random_k",
        2,
        7,
    )
    assert project.gold_rate == 0.1 and project.gold_feedback and project.summary_every == 0
    page = await client.get(response.headers["location"])
    assert "Project created." in page.text


async def test_bad_project_input_rerenders_naming_the_field(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    await make_project(session, slug="taken")
    bad = settings_form(csrf, slug="Not A Slug", raters_per_pair="0", strength_scale="a, a")
    response = await client.post("/admin/projects", data=bad)
    assert response.status_code == 422
    assert 'id="raters_per_pair-error"' in response.text and "Raters per pair" in response.text
    assert 'id="slug-error"' in response.text and "lower-case letters" in response.text
    assert "labels must be distinct" in response.text
    assert 'value="Not A Slug"' in response.text  # what was typed is kept
    taken = await client.post("/admin/projects", data=settings_form(csrf, slug="taken"))
    assert taken.status_code == 409
    assert 'id="slug-error"' in taken.text and "already exists" in taken.text
    assert await session.scalar(select(func.count()).select_from(Project)) == 1


async def test_settings_edit_persists_and_resizes_slots(
    client: AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session, slug="keep-me")
    await make_pairs(session, project, 2)
    path = f"/admin/projects/{project.id}/settings"

    bad = await client.post(path, data=settings_form(csrf, gold_rate="2", lease_seconds=""))
    assert bad.status_code == 422
    assert 'id="gold_rate-error"' in bad.text and 'id="lease_seconds-error"' in bad.text
    assert "The settings were not saved" in bad.text and 'value="2"' in bad.text
    await session.refresh(project)
    assert project.raters_per_pair == 1 and project.name != "Helpfulness"

    ok = await client.post(path, data=settings_form(csrf, slug="ignored", allow_both_bad="true"))
    assert ok.status_code == 303
    assert ok.headers["location"] == project_path(app, project, "?done=settings")
    await session.refresh(project)
    assert project.slug == "keep-me" and project.name == "Helpfulness"
    assert project.raters_per_pair == 3 and project.allow_both_bad
    assert project.strength_scale == ["slightly", "clearly", "much"]
    assert await count(session, PairSlot, project) == 2 * 3
    page = await client.get(ok.headers["location"])
    assert "Settings saved." in page.text and 'value="slightly, clearly, much"' in page.text


async def test_settings_switch_to_adaptive_overlap_and_explain_it(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session, raters_per_pair=3)
    await make_pairs(session, project, 2)
    path = f"/admin/projects/{project.id}/settings"
    page = await client.get(f"/admin/projects/{project.id}")
    assert "Changing these mid-project" in page.text and "not yet settled" in page.text
    assert 'name="overlap_mode"' in page.text and 'name="overlap_stop_posterior"' in page.text

    bad = await client.post(path, data=settings_form(csrf, overlap_min="4", overlap_max="3"))
    assert bad.status_code == 422
    assert 'id="overlap_max-error"' in bad.text and "at least the minimum (4)" in bad.text

    form = settings_form(
        csrf,
        overlap_mode="adaptive",
        overlap_max="4",
        overlap_rule="posterior",
        overlap_stop_posterior="0.9",
    )
    assert (await client.post(path, data=form)).status_code == 303
    await session.refresh(project)
    assert (project.overlap_mode, project.overlap_max, project.overlap_rule) == (
        "adaptive",
        4,
        "posterior",
    )
    assert project.overlap_stop_posterior == 0.9
    assert await count(session, PairSlot, project) == 2 * 2  # the open pairs: the minimum


async def test_members_add_exclude_include_remove(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    ann = await make_user(session, email="Ann@Example.org")
    bob = await make_user(session)
    base = f"/admin/projects/{project.id}/members"

    by_email = await client.post(base, data={"csrf_token": csrf, "email": " ann@example.org "})
    by_pick = await client.post(base, data={"csrf_token": csrf, "user_id": str(bob.id)})
    assert by_email.status_code == by_pick.status_code == 303
    assert await session.get(ProjectMember, (project.id, ann.id)) is not None
    assert await session.get(ProjectMember, (project.id, bob.id)) is not None

    unknown = await client.post(base, data={"csrf_token": csrf, "email": "who@example.org"})
    assert unknown.status_code == 404 and "No account uses who@example.org" in unknown.text
    empty = await client.post(base, data={"csrf_token": csrf})
    assert empty.status_code == 422 and "Pick a user" in empty.text

    excluded = await client.post(f"{base}/{ann.id}/exclude", data={"csrf_token": csrf})
    assert excluded.status_code == 303
    assert await is_excluded(session, project.id, ann.id)
    page = await client.get(excluded.headers["location"])
    assert "Member excluded from exports." in page.text and "Include in exports" in page.text
    assert (await client.post(f"{base}/{ann.id}/include", data={"csrf_token": csrf})).is_redirect
    assert not await is_excluded(session, project.id, ann.id)

    removed = await client.post(f"{base}/{bob.id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert await session.get(ProjectMember, (project.id, bob.id)) is None


async def test_flagged_pairs_are_restored_or_removed(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    rater = await make_user(session)
    first, second = await make_pairs(session, project, 2)
    await flag_pair(session, first, rater, note="mentions a phone number")
    await flag_pair(session, second, rater, note="")

    page = await client.get(f"/admin/projects/{project.id}")
    assert "mentions a phone number" in page.text and "No flagged pairs." not in page.text
    restore = await client.post(
        f"/admin/projects/{project.id}/flags/{first.id}",
        data={"csrf_token": csrf, "resolution": "restored"},
    )
    remove = await client.post(
        f"/admin/projects/{project.id}/flags/{second.id}",
        data={"csrf_token": csrf, "resolution": "removed"},
    )
    assert restore.status_code == remove.status_code == 303
    await session.refresh(first)
    await session.refresh(second)
    assert (first.status, second.status) == ("active", "removed")
    flags = list(await session.scalars(select(PairFlag).where(PairFlag.project_id == project.id)))
    assert sorted(flag.resolution or "" for flag in flags) == ["removed", "restored"]
    page = await client.get(remove.headers["location"])
    assert "Pair removed." in page.text and "No flagged pairs." in page.text


async def test_import_upload_succeeds_then_rejects_with_line_numbers(
    client: AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    admin, csrf = await admin_client(client, session)
    project = await make_project(session)
    rows_before = imported_rows()

    ok = await upload(client, project, csrf, jsonl(prompt_row("p1"), prompt_row("p2")))
    assert ok.status_code == 303
    assert imported_rows() == rows_before + 2 + 6 + 6  # prompts, responses, pairs
    batch = await session.scalar(select(Batch).where(Batch.project_id == project.id))
    assert batch is not None and batch.source == "web" and batch.created_by_id == admin.id
    assert ok.headers["location"] == project_path(app, project, f"?imported={batch.id}")
    page = await client.get(ok.headers["location"])
    assert "2 new, 0 unchanged prompts; 6 responses; 6 pairs" in page.text
    assert batch.sha256[:12] in page.text and admin.display_name in page.text

    # The same file again: the page says nothing was new, and no batch is added.
    again = await upload(client, project, csrf, jsonl(prompt_row("p1"), prompt_row("p2")))
    assert again.status_code == 303
    assert again.headers["location"] == project_path(app, project, "?unchanged=2")
    page = await client.get(again.headers["location"])
    assert "Nothing new: all 2 prompts of the file are already in this project" in page.text
    assert (
        len(list(await session.scalars(select(Batch).where(Batch.project_id == project.id)))) == 1
    )

    broken = jsonl(prompt_row("p3"), *["{not json"] * 120)
    rejected = await upload(client, project, csrf, broken)
    assert rejected.status_code == 422
    assert "120 problems" in rejected.text and "… and 20 more." in rejected.text
    assert re.search(r'<td class="num">2</td>', rejected.text)  # the first bad line
    assert rejected.text.count("<tr>") >= 100

    # Rejected half-way (a changed prompt under a known id): nothing of it stays.
    conflict = jsonl(prompt_row("p4"), prompt_row("p1", answer="changed"))
    rejected = await upload(client, project, csrf, conflict)
    assert rejected.status_code == 422 and "already exists" in rejected.text
    assert await count(session, Batch, project) == 1
    assert await count(session, Prompt, project) == 2
    assert imported_rows() == rows_before + 14  # nothing new, nothing rejected, counted

    no_file = await upload(client, project, csrf, b"", name="")
    assert no_file.status_code == 422 and "Choose a file" in no_file.text


async def test_create_user_with_the_form(client: AsyncClient, session: AsyncSession) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    form = {
        "csrf_token": csrf,
        "email": "new.rater@example.org",
        "display_name": "New Rater",
        "role": "rater",
        "password": "long enough pw",
        "project_ids": [str(project.id)],
    }
    created = await client.post("/admin/users", data=form)
    assert created.status_code == 303
    user = await session.scalar(select(User).where(User.email == "new.rater@example.org"))
    assert user is not None and user.role == "rater"
    assert await session.get(ProjectMember, (project.id, user.id)) is not None
    page = await client.get(created.headers["location"])
    assert "Created New Rater" in page.text

    again = await client.post("/admin/users", data=form)
    assert again.status_code == 409
    assert 'id="user_email-error"' in again.text and "already exists" in again.text
    short = await client.post(
        "/admin/users", data={**form, "email": "x@example.org", "password": "short"}
    )
    assert short.status_code == 422 and 'id="user_password-error"' in short.text
    assert "long enough pw" not in again.text  # a password is never echoed back
    # A project gone since the form was shown: named beside the projects, nothing created.
    gone = await client.post(
        "/admin/users", data={**form, "email": "late@example.org", "project_ids": ["987654"]}
    )
    assert gone.status_code == 404 and 'id="user_project_ids-error"' in gone.text
    assert "project 987654 does not exist" in gone.text
    assert await session.scalar(select(User).where(User.email == "late@example.org")) is None


async def test_invite_link_is_shown_and_works(client: AsyncClient, session: AsyncSession) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    form = {
        "csrf_token": csrf,
        "email": "guest@example.org",
        "role": "rater",
        "project_id": str(project.id),
        "valid_days": "3",
    }
    response = await client.post("/admin/users/invites", data=form)
    assert response.status_code == 200
    match = re.search(
        r'<code class="secret" id="new-invite-link">(http://test/invite/[^<]+)</code>',
        response.text,
    )
    assert match
    bad = await client.post("/admin/users/invites", data={**form, "valid_days": "0"})
    assert bad.status_code == 422 and 'id="invite_valid_days-error"' in bad.text

    client.cookies.clear()
    invite_page = await client.get(match.group(1))
    assert invite_page.status_code == 200 and "guest@example.org" in invite_page.text
    accepted = await client.post(
        match.group(1), data={"display_name": "Guest", "password": "guest password"}
    )
    assert accepted.status_code == 303
    user = await session.scalar(select(User).where(User.email == "guest@example.org"))
    assert user is not None
    assert await session.get(ProjectMember, (project.id, user.id)) is not None


async def test_cookie_post_without_csrf_token_is_refused(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    project_id = project.id
    await session.commit()  # a refused request rolls back to here and expires the objects
    form = settings_form(csrf, slug="no-csrf")
    del form["csrf_token"]
    assert (await client.post("/admin/projects", data=form)).status_code == 403
    wrong = await client.post(
        f"/admin/projects/{project_id}/import",
        data={"csrf_token": "forged"},
        files={"file": ("b.jsonl", jsonl(prompt_row("p1")), "application/x-ndjson")},
    )
    assert wrong.status_code == 403
    assert await session.scalar(select(Project).where(Project.slug == "no-csrf")) is None
    batches = select(func.count()).select_from(Batch).where(Batch.project_id == project_id)
    assert await session.scalar(batches) == 0


async def test_closing_a_project_ends_its_leases_and_opening_brings_them_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    project = await make_project(session)
    await make_pairs(session, project, 1)
    rater = await make_user(session)
    await add_member(session, project, rater)
    headers = await bearer_headers(session, rater)
    lease = (await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)).json()

    closed = await client.post(
        f"/admin/projects/{project.id}/closed", data={"csrf_token": csrf, "closed": "true"}
    )

    assert closed.status_code == 303
    page = (await client.get(closed.headers["location"])).text
    assert "Project closed" in page and "Open it again" in page
    slot = await session.scalar(
        select(PairSlot)
        .where(PairSlot.pair_id == lease["pair_id"])
        .execution_options(populate_existing=True)
    )
    assert slot is not None and slot.state == "open"
    refused = await client.post(
        f"/api/v1/assignments/{lease['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=headers,
    )
    assert refused.status_code == 409 and refused.json()["error"] == "ProjectClosed"
    opened = await client.post(
        f"/admin/projects/{project.id}/closed", data={"csrf_token": csrf, "closed": "false"}
    )
    assert "Project open for rating again" in (await client.get(opened.headers["location"])).text


async def test_deactivating_a_user_from_the_users_page(
    client: AsyncClient, session: AsyncSession
) -> None:
    admin, csrf = await admin_client(client, session)
    rater = await make_user(session)
    page = (await client.get("/admin/users")).text
    assert f"Deactivate {rater.display_name}" in page
    assert f"/admin/users/{admin.id}/active" not in page  # not oneself

    answer = await client.post(
        f"/admin/users/{rater.id}/active", data={"csrf_token": csrf, "active": "false"}
    )

    assert answer.status_code == 303
    await session.refresh(rater)
    assert rater.is_active is False
    assert f"Reactivate {rater.display_name}" in (await client.get("/admin/users")).text


async def test_pending_invites_are_listed_and_withdrawn_from_the_page(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, csrf = await admin_client(client, session)
    form = {"csrf_token": csrf, "email": "wait@example.org", "role": "rater", "valid_days": "5"}
    made = await client.post("/admin/users/invites", data=form)
    link = re.search(r'id="new-invite-link">(http://test/invite/[^<]+)</code>', made.text)
    assert link

    page = (await client.get("/admin/users")).text
    row = page[page.index('id="pending-invites"') :]
    assert "wait@example.org" in row
    # The same link again, to copy later, and a button to withdraw it.
    assert f">{link.group(1)}</code>" in row
    action = re.search(r'action="(/admin/users/invites/\d+/revoke)"', row)
    assert action

    withdrawn = await client.post(action.group(1), data={"csrf_token": csrf})
    assert withdrawn.status_code == 303
    page = (await client.get(withdrawn.headers["location"])).text
    assert "Invite withdrawn: its link no longer works." in page
    assert "No invites are waiting" in page
    client.cookies.clear()
    refused = await client.get(link.group(1))
    assert refused.status_code == 403 and "withdrawn" in refused.text
