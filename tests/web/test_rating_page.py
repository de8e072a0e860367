"""The rating page through HTTP: cookie login, plain forms answered with the next pair."""

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2.runtime
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.text_features import forget_kept_features
from pickwise.assignments import repository as assignments_repository
from pickwise.assignments.service import next_lease
from pickwise.assignments.standing import ProjectClosed
from pickwise.auth import repository as auth_repository
from pickwise.auth.deps import SESSION_COOKIE
from pickwise.core import clock
from pickwise.core.db import get_engine, session_factory
from pickwise.core.security import token_digest
from pickwise.judgments import service as judgments
from pickwise.models import (
    Assignment,
    IdempotencyKey,
    Judgment,
    Pair,
    PairFlag,
    Project,
    ProjectMember,
    Prompt,
    User,
    UserSession,
)
from pickwise.models.pools import PoolParticipant, RaterPool
from pickwise.web import rating
from pickwise.web.rating import FLASH_COOKIE
from tests.conftest import Wire
from tests.factories import PASSWORD, add_member, make_pairs, make_project, make_user

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture(autouse=True)
def reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


async def rater_on_project(
    client: AsyncClient, session: AsyncSession, **settings: object
) -> tuple[User, Project]:
    """A rater who is a member of a new project and logged in with the session cookie."""
    rater = await make_user(session, password=PASSWORD)
    project = await make_project(session, **settings)
    await add_member(session, project, rater)
    response = await client.post("/login", data={"email": rater.email, "password": PASSWORD})
    assert response.status_code == 303
    return rater, project


def form_of(html: str, form_class_or_id: str) -> tuple[str, dict[str, str]]:
    """(action, hidden fields) of the form whose opening tag mentions `form_class_or_id`."""
    start = html.index(form_class_or_id)
    start = html.rindex("<form", 0, start)
    end = html.index("</form>", start)
    block = html[start:end]
    action = re.search(r'action="([^"]+)"', block)
    assert action
    return action.group(1), dict(HIDDEN.findall(block))


async def open_page(client: AsyncClient, app: FastAPI, project: Project) -> Response:
    response = await client.get(app.url_path_for("rate_page", project_id=project.id))
    assert response.status_code == 200, response.text
    return response


async def choose(
    client: AsyncClient, html: str, choice: str, **fields: str
) -> tuple[Response, dict[str, str]]:
    action, hidden = form_of(html, 'id="choice-form"')
    data = {**hidden, "choice": choice, **fields}
    return await client.post(action, data=data), data


def shown_assignment(html: str) -> int:
    """The assignment whose pair the page shows."""
    found = re.search(r'data-assignment="(\d+)"', html)
    assert found, "the page shows no pair"
    return int(found.group(1))


def answered_with_the_page(response: Response, app: FastAPI, project: Project) -> str:
    """A form's answer: the rating page itself (no redirect), marked for rate.js to show the
    page's own address, and never cached (a stale copy carries a used idempotency key)."""
    assert response.status_code == 200, response.text
    page_url = app.url_path_for("rate_page", project_id=project.id)
    assert f'data-page-url="{page_url}"' in response.text
    assert response.headers["cache-control"] == "no-store"
    # The navigation marks the rating page as the current one, as at its own address.
    assert f'<a href="{page_url}" aria-current="page">Rate</a>' in response.text
    return response.text


async def leased(session: AsyncSession, rater: User) -> Assignment:
    assignment = await session.scalar(
        select(Assignment).where(Assignment.rater_id == rater.id, Assignment.status == "leased")
    )
    assert assignment is not None
    return assignment


async def judgments_of(session: AsyncSession, rater: User) -> list[Judgment]:
    return list(await session.scalars(select(Judgment).where(Judgment.rater_id == rater.id)))


async def test_page_shows_the_pair_but_never_the_model_names(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session)
    (pair,) = await make_pairs(session, project, 1, models=("secret-model-x", "secret-model-y"))
    prompt = await session.get(Prompt, pair.prompt_id)
    assert prompt is not None
    prompt.system = "You are **terse**."
    await session.flush()

    html = (await open_page(client, app, project)).text

    assert "secret-model" not in html
    assert "Answer 0 to question 0." in html and "Answer 1 to question 0." in html
    assert "Question 0?" in html
    assert '<details class="system-prompt">' in html and "<strong>terse</strong>" in html
    # Each side in the words of both layouts: left/right side by side, top/bottom stacked.
    for label in (
        'side-wide">Left</span><span class="side-stacked">Top</span> is better',
        'side-wide">Right</span><span class="side-stacked">Bottom</span> is better',
        "Tie",
        "Both are bad",
        "Skip this pair",
    ):
        assert label in html
    _, hidden = form_of(html, 'id="choice-form"')
    assert hidden["csrf_token"] and len(hidden["idempotency_key"]) == 36
    assert '<main id="main"' in html and 'aria-label="Your progress"' in html


async def test_submitting_the_form_stores_the_judgment(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    assignment = await leased(session, rater)

    response, _ = await choose(client, html, "left")

    # The next pair comes in the answer itself: one request per judgment.
    after = answered_with_the_page(response, app, project)
    (judgment,) = await judgments_of(session, rater)
    assert judgment.assignment_id == assignment.id
    assert judgment.choice == assignment.left_side  # "left" stored as the canonical a / b
    assert "Saved. Here is the next pair." in after
    following = await leased(session, rater)
    assert following.id != assignment.id and shown_assignment(after) == following.id
    # The page's own address shows the same pair, and the message only once.
    again = (await open_page(client, app, project)).text
    assert shown_assignment(again) == following.id and "Saved." not in again


async def test_double_submit_with_the_same_token_stores_one_judgment(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text

    first, data = await choose(client, html, "right")
    # A reload of the answer (without JavaScript) sends the same form again.
    second = await client.post(form_of(html, 'id="choice-form"')[0], data=data)

    shown_first = answered_with_the_page(first, app, project)
    shown_second = answered_with_the_page(second, app, project)
    assert len(await judgments_of(session, rater)) == 1
    # The same answer again, and the same next pair: the one leased after the first.
    assert "Saved. Here is the next pair." in shown_second
    assert shown_assignment(shown_first) == shown_assignment(shown_second)
    assert shown_assignment(shown_first) == (await leased(session, rater)).id
    held = select(func.count()).where(Assignment.rater_id == rater.id)
    assert await session.scalar(held) == 2  # the judged pair and the next: no third lease


async def test_a_choice_fingerprints_its_form_once(
    client: AsyncClient, app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's claim and its answer share the form's fingerprint (made once a choice)."""
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text
    made: list[str] = []
    fingerprint = rating._form_fingerprint

    def counted(request: Any, form: Any) -> str:
        made.append(fingerprint(request, form))
        return made[-1]

    monkeypatch.setattr(rating, "_form_fingerprint", counted)
    first, data = await choose(client, html, "left")
    assert len(made) == 1
    # The same form again is still the same answer, not another judgment.
    await client.post(form_of(html, 'id="choice-form"')[0], data=data)
    assert made[0] == made[1] and len(made) == 2
    assert len(await judgments_of(session, rater)) == 1
    assert "Saved. Here is the next pair." in answered_with_the_page(first, app, project)


async def test_strength_rationale_and_criteria(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(
        client,
        session,
        strength_scale=["slightly", "clearly", "much"],
        rationale_mode="required",
        criteria=["honesty", "clarity"],
        allow_tie=False,
    )
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    assert 'name="strength" value="2"' in html and "much" in html
    assert 'name="criterion-1" value="left"' in html and "clarity" in html
    assert "required>" in html  # the rationale
    assert 'name="choice" value="tie"' not in html

    refused, _ = await choose(
        client, html, "left", rationale="Clearer.", **{"criterion-0": "right"}
    )

    assert refused.status_code == 422
    assert "Pick how much better the answer you chose is" in refused.text
    assert ">Clearer.</textarea>" in refused.text  # what the rater typed is kept
    assert re.search(r'name="criterion-0" value="right"\s+checked', refused.text)
    assert await judgments_of(session, rater) == []

    assignment = await leased(session, rater)
    response, _ = await choose(
        client,
        refused.text,
        "left",
        strength="1",
        rationale="  Clearer.  ",
        **{"criterion-0": "right", "criterion-1": "tie"},
    )

    answered_with_the_page(response, app, project)
    (judgment,) = await judgments_of(session, rater)
    right = "b" if assignment.left_side == "a" else "a"
    assert (judgment.strength, judgment.rationale) == (1, "Clearer.")
    assert judgment.criteria == {"honesty": right, "clarity": "tie"}


async def test_tie_ignores_a_strength_left_selected(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session, strength_scale=["a bit", "a lot"])
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text

    response, _ = await choose(client, html, "tie", strength="1")

    answered_with_the_page(response, app, project)
    (judgment,) = await judgments_of(session, rater)
    assert (judgment.choice, judgment.strength) == ("tie", None)


async def test_skip_and_flag(client: AsyncClient, app: FastAPI, session: AsyncSession) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text
    skipped = await leased(session, rater)

    action, hidden = form_of(html, 'class="skip-form"')
    response = await client.post(action, data={**hidden, "reason": "needs_expertise"})

    html = answered_with_the_page(response, app, project)
    await session.refresh(skipped)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "needs_expertise")
    assert "Skipped. Here is the next pair." in html
    flagged = await leased(session, rater)
    assert shown_assignment(html) == flagged.id != skipped.id

    action, hidden = form_of(html, 'class="flag-form"')
    response = await client.post(
        action, data={**hidden, "reason": "personal_data", "note": "A phone number."}
    )

    html = answered_with_the_page(response, app, project)
    flag = await session.scalar(select(PairFlag).where(PairFlag.pair_id == flagged.pair_id))
    assert flag is not None and (flag.reason, flag.note) == ("personal_data", "A phone number.")
    pair = await session.get(Pair, flagged.pair_id)
    assert pair is not None and pair.status == "flagged"
    assert "Flagged for review" in html
    assert shown_assignment(html) == (await leased(session, rater)).id


async def test_skip_without_a_reason_is_explained(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text

    action, hidden = form_of(html, 'class="skip-form"')
    response = await client.post(action, data=hidden)

    html = answered_with_the_page(response, app, project)
    assert "Pick a reason to skip" in html
    still = await leased(session, rater)
    assert still.status == "leased" and shown_assignment(html) == still.id
    # The form's key was claimed with who asks and given back with the refusal: the same form
    # sent again with a reason (the back button) is a first request, and is stored.
    assert await session.get(IdempotencyKey, (rater.id, hidden["idempotency_key"])) is None
    response = await client.post(action, data={**hidden, "reason": "needs_expertise"})
    assert "Skipped." in answered_with_the_page(response, app, project)
    await session.refresh(still)
    assert (still.status, still.skip_reason) == ("skipped", "needs_expertise")


async def test_late_submit_says_so_and_shows_the_next_pair(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session, lease_seconds=60)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    mine = await leased(session, rater)
    clock.advance(timedelta(minutes=5))
    other = await make_user(session)
    await add_member(session, project, other)
    taken = await next_lease(session, project, other)
    assert taken is not None and taken.pair_id == mine.pair_id

    response, _ = await choose(client, html, "left")

    page = answered_with_the_page(response, app, project)
    assert "Your time on this pair ran out" in page
    assert 'id="choice-form"' in page
    following = await leased(session, rater)
    assert following.pair_id != mine.pair_id and shown_assignment(page) == following.id
    assert await judgments_of(session, rater) == []


async def test_a_form_without_the_csrf_token_is_refused(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text
    action, hidden = form_of(html, 'id="choice-form"')
    del hidden["csrf_token"]
    rater_id = rater.id  # the refused request rolls the session back

    response = await client.post(action, data={**hidden, "choice": "left"})

    assert response.status_code == 403
    stored = select(func.count()).where(Judgment.rater_id == rater_id)
    assert await session.scalar(stored) == 0


async def test_a_form_refused_before_its_work_gives_its_key_back(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    # The form's key is claimed with who asks, before the form is read: a choice form sent
    # without a choice is refused then, and the claim is given back, so no key stays claimed
    # without an answer and the same form (the back button) can still be sent with a choice.
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    action, hidden = form_of(html, 'id="choice-form"')
    mine = await leased(session, rater)

    for _ in range(2):
        response = await client.post(action, data=hidden)
        assert response.status_code == 422
        assert "Choose one of the answer buttons." in response.text
        assert shown_assignment(response.text) == mine.id
        assert await session.get(IdempotencyKey, (rater.id, hidden["idempotency_key"])) is None
    assert await judgments_of(session, rater) == []

    response = await client.post(action, data={**hidden, "choice": "left"})
    assert "Saved." in answered_with_the_page(response, app, project)
    assert len(await judgments_of(session, rater)) == 1
    # Sent again, the stored answer is the one given: nothing is stored twice.
    again = await client.post(action, data={**hidden, "choice": "left"})
    answered_with_the_page(again, app, project)
    assert len(await judgments_of(session, rater)) == 1


async def test_a_forms_key_is_claimed_with_who_asks_only_with_the_sessions_csrf_token(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    # The key's claim and the lease's locks go out in the round trip that finds who asks,
    # for the session's user only when the form carries the session's CSRF token: a forged
    # form claims and locks nothing (the 403 that follows would roll it back, but the locks
    # would be held until then, and the key taken meanwhile).
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text
    _, hidden = form_of(html, 'id="choice-form"')
    cookie = client.cookies[SESSION_COOKIE]
    calls = judgments.session_claim_and_lock_calls(
        hidden["idempotency_key"], "0" * 64, shown_assignment(html)
    )
    since = datetime(2000, 1, 1, tzinfo=UTC)

    for csrf_token, claims in (("forged", False), (hidden["csrf_token"], True)):
        sent = [(sql, {**params, "csrf_token": csrf_token}) for sql, params in calls]
        found, answers = await auth_repository.rater_of_session_in_project(
            session, token_digest(cookie), clock.utcnow(), project.id, since, sent
        )
        assert found is not None and found.user.id == rater.id and found.project is not None
        claim = judgments.claimed_with_locks_of(session, answers)
        assert claim.claimed is claims
        locked = claim.locks.found if claim.locks is not None else None
        assert (locked is not None and locked.assignment.rater_id == rater.id) is claims


async def test_no_work_left_page(client: AsyncClient, app: FastAPI, session: AsyncSession) -> None:
    _, project = await rater_on_project(client, session)

    html = (await open_page(client, app, project)).text

    assert "Nothing left for you to rate" in html
    assert 'id="choice-form"' not in html


async def test_summary_after_every_nth_judgment(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session, summary_every=2)
    await make_pairs(session, project, 4)
    summary = app.url_path_for("rate_summary", project_id=project.id)

    first, _ = await choose(client, (await open_page(client, app, project)).text, "left")
    # The next pair comes with the first answer; at the milestone the answer is the summary,
    # at its own address (no redirect to it: one request fewer every so many judgments).
    second, sent = await choose(client, answered_with_the_page(first, app, project), "left")

    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    html = second.text
    assert f'data-page-url="{summary}?after=2"' in html
    assert f'<a href="{summary}" aria-current="page">What your choices teach</a>' in html
    assert "Saved." in html
    assert "What your choices teach" in html and "You have made 2 judgments" in html
    assert "Picked the answer shown on the left" in html and "2 of 2" in html
    assert "Picked the longer answer" in html
    assert "Continue rating" in html
    # Its address (what rate.js shows, so what a reload asks for) is the same page, without
    # the one-time "Saved."; the form sent again stores nothing and shows the summary again.
    reloaded = await client.get(f"{summary}?after=2")
    assert reloaded.status_code == 200 and "You have made 2 judgments" in reloaded.text
    assert "Saved." not in reloaded.text and "data-page-url" not in reloaded.text
    again = await client.post(str(second.request.url), data=sent)
    assert again.status_code == 200 and "You have made 2 judgments" in again.text
    assert await session.scalar(select(func.count()).select_from(Judgment)) == 2


async def test_summary_counts_only_this_raters_choices(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session, summary_every=0)
    await make_pairs(session, project, 2)
    summary = app.url_path_for("rate_summary", project_id=project.id)
    assert "Nothing to show yet" in (await client.get(summary)).text

    response, _ = await choose(client, (await open_page(client, app, project)).text, "right")

    answered_with_the_page(response, app, project)  # no milestone with summary_every=0
    html = (await client.get(summary)).text
    assert "0 of 1" in html  # the right answer was picked, never the left


async def test_guidelines_page_is_sanitized(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(
        client,
        session,
        guidelines_md="# Be fair\n<script>alert(1)</script> [x](javascript:alert(1))",
    )

    response = await client.get(app.url_path_for("rate_guidelines", project_id=project.id))

    assert response.status_code == 200
    assert "<h3>Be fair</h3>" in response.text
    assert "<script>alert" not in response.text and 'href="javascript' not in response.text
    assert "&lt;script&gt;" in response.text


async def test_a_rater_of_another_project_gets_404(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    await rater_on_project(client, session)
    other = await make_project(session)
    await make_pairs(session, other, 1)

    for name in ("rate_page", "rate_summary", "rate_guidelines"):
        response = await client.get(app.url_path_for(name, project_id=other.id))
        assert response.status_code == 404
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 0


async def test_not_logged_in_goes_to_login(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)

    response = await client.get(app.url_path_for("rate_page", project_id=project.id))

    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def a_gold_page(
    client: AsyncClient, app: FastAPI, session: AsyncSession, pairs: int
) -> tuple[User, Project, str, str]:
    """A rater's page showing a gold pair whose project gives feedback (one gold pair of
    `pairs`), and the choice that is wrong on it."""
    rater, project = await rater_on_project(client, session, gold_rate=1.0, gold_feedback=True)
    await make_pairs(session, project, pairs, gold=1)
    html = (await open_page(client, app, project)).text
    assignment = await leased(session, rater)
    assert assignment.is_gold and "check pair" not in html.lower()
    # The gold winner is response a; pick the other one.
    wrong = "right" if assignment.left_side == "a" else "left"
    return rater, project, html, wrong


async def test_gold_feedback_is_shown_once(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project, html, wrong = await a_gold_page(client, app, session, 2)

    response, _ = await choose(client, html, wrong)

    shown = answered_with_the_page(response, app, project)
    assert "This was a check pair" in shown
    # Its answer was shown, so the choice cannot be changed: no link, no u.
    assert 'id="undo-link"' not in shown
    assert "This was a check pair" not in (await open_page(client, app, project)).text


async def test_a_choice_sent_again_gets_the_first_answer_kept_under_its_key(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    # The statement that stores the choice writes its answer under the form's key too,
    # taking the gold feedback to be none, as it is read afterwards: a wrong choice on a gold
    # pair gets its answer written again, so the form sent again shows the same feedback.
    rater, project, html, wrong = await a_gold_page(client, app, session, 3)
    response, data = await choose(client, html, wrong)
    assert "This was a check pair" in answered_with_the_page(response, app, project)
    plain = answered_with_the_page(response, app, project)
    plain_response, plain_data = await choose(client, plain, "tie")
    assert "Saved. Here is the next pair." in plain_response.text

    for form, sent, shown in ((html, data, "This was a check pair"), (plain, plain_data, "Saved.")):
        again = await client.post(form_of(form, 'id="choice-form"')[0], data=sent)
        assert shown in answered_with_the_page(again, app, project)
        (judgment,) = [
            each
            for each in await judgments_of(session, rater)
            if each.assignment_id == shown_assignment(form)
        ]
        kept = await session.get(IdempotencyKey, (rater.id, sent["idempotency_key"]))
        assert kept is not None and kept.status_code == 201
        assert kept.response_body["judgment_id"] == judgment.id
        assert bool(kept.response_body["gold_feedback"]) == (form is html)
    assert len(await judgments_of(session, rater)) == 2


async def test_a_forged_message_cookie_is_ignored(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)
    client.cookies.set(FLASH_COOKIE, "not-base64-json!")

    response = await open_page(client, app, project)

    assert 'class="flash' not in response.text


async def test_a_study_participant_at_quota_goes_to_the_completion_page(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 3)
    pool = RaterPool(
        project_id=project.id, name="Study", token_hash="f" * 64, token_prefix="f", quota=1
    )
    session.add(pool)
    await session.flush()
    session.add(PoolParticipant(pool_id=pool.id, user_id=rater.id, external_id="p1"))
    await session.flush()

    answer, _ = await choose(client, (await open_page(client, app, project)).text, "left")
    response = await client.get(app.url_path_for("rate_page", project_id=project.id))

    done = app.url_path_for("participant_done", project_id=project.id)
    assert answer.status_code == response.status_code == 303
    assert answer.headers["location"] == response.headers["location"] == done


async def assignments_of(session: AsyncSession, rater_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.rater_id == rater_id)
    )
    return int(count or 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "https://elsewhere.example/page"},  # an older browser, from another site
    ],
)
async def test_a_link_from_another_site_leases_nothing_until_the_rater_asks(
    client: AsyncClient, session: AsyncSession, app: FastAPI, headers: dict[str, str]
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    # Plain ids: a refused request rolls the test session back and expires loaded objects.
    rater_id, project_id = rater.id, project.id
    await session.commit()
    page_url = app.url_path_for("rate_page", project_id=project_id)

    landing = await client.get(page_url, headers=headers)

    assert landing.status_code == 200
    assert "Show me a pair" in landing.text and 'name="choice"' not in landing.text
    assert await assignments_of(session, rater_id) == 0
    # The API, with the same cookie, refuses as well.
    api = await client.get(f"/api/v1/projects/{project_id}/next", headers=headers)
    assert api.status_code == 403 and "from this site" in api.json()["detail"]
    assert await assignments_of(session, rater_id) == 0
    # The button: a POST with the page's CSRF token, then the pair.
    action, fields = form_of(landing.text, "Show me a pair")
    asked = await client.post(action, data=fields)
    assert asked.status_code == 303
    shown = await client.get(asked.headers["location"], headers={"Sec-Fetch-Site": "same-origin"})
    assert 'name="choice"' in shown.text
    assert await assignments_of(session, rater_id) == 1
    # From then on even a cross-site visit shows the pair already held (and leases no other).
    again = await client.get(page_url, headers=headers)
    assert 'name="choice"' in again.text
    assert await assignments_of(session, rater_id) == 1


@pytest.mark.parametrize("fetch_site", ["same-origin", "none"])
async def test_our_own_links_and_typed_urls_lease_directly(
    client: AsyncClient, session: AsyncSession, app: FastAPI, fetch_site: str
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)

    page = await client.get(
        app.url_path_for("rate_page", project_id=project.id),
        headers={"Sec-Fetch-Site": fetch_site},
    )

    assert 'name="choice"' in page.text
    assert await assignments_of(session, rater.id) == 1


async def test_an_api_token_leases_whatever_the_request_says(
    client: AsyncClient, session: AsyncSession
) -> None:
    from tests.factories import bearer_headers

    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 1)
    headers = {**await bearer_headers(session, rater), "Sec-Fetch-Site": "cross-site"}
    client.cookies.clear()

    answer = await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)

    assert answer.status_code == 200 and answer.json()["assignment_id"] is not None


def shown_count(html: str, pattern: str) -> int:
    """The number the page shows where `pattern` (with one `(\\d+)`) matches."""
    found = re.search(pattern, html)
    assert found, f"the page shows no {pattern!r}"
    return int(found.group(1))


def done_today(html: str) -> int:
    return shown_count(html, r'id="done-today"><strong>(\d+)</strong> done today')


async def test_done_today_counts_from_the_raters_own_midnight(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session, summary_every=0)
    await make_pairs(session, project, 3)
    clock.freeze()
    clock.advance(datetime(2026, 3, 9, 23, 30, tzinfo=UTC) - clock.utcnow())
    await choose(client, (await open_page(client, app, project)).text, "tie")
    # 01:30 UTC on 10 March: a new day in UTC, still the evening of the 9th in New York.
    clock.advance(timedelta(hours=2))

    assert done_today((await open_page(client, app, project)).text) == 0
    client.cookies.set("pickwise_tz", "America/New_York")
    assert done_today((await open_page(client, app, project)).text) == 1
    # A zone the server does not know counts in UTC.
    client.cookies.set("pickwise_tz", "../../etc/passwd")
    assert done_today((await open_page(client, app, project)).text) == 0


async def test_the_last_choice_is_changed_from_the_page(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(
        client, session, strength_scale=["a bit", "a lot"], summary_every=0
    )
    project_id = project.id
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text
    assert 'id="undo-link"' not in html  # nothing decided yet
    answer, _ = await choose(client, html, "left", strength="1", rationale="Kinder.")
    html = answered_with_the_page(answer, app, project)
    change_path = app.url_path_for("rate_change", project_id=project_id)
    assert f'href="{change_path}"' in html and "Change your last choice" in html

    # The previous pair comes back with what was chosen, to choose again.
    page = await client.get(change_path)
    assert page.status_code == 200
    assert "You are changing your choice on the previous pair." in page.text
    assert "Your choice was: " in page.text and "answer better, a lot." in page.text
    assert 'side-wide">left</span><span class="side-stacked">top</span> answer better' in page.text
    # The side and strength are picked again; what was written is kept.
    assert not re.search(r'name="strength" value="\d" data-label="[a-z ]+"\s+checked', page.text)
    assert ">Kinder.</textarea>" in page.text
    # A change the form cannot take is the change page again, at the change page's address.
    refused, _ = await choose(client, page.text, "left")
    assert refused.status_code == 422 and "Pick how much better" in refused.text
    assert f'data-page-url="{change_path}"' in refused.text
    response, _ = await choose(client, page.text, "tie")
    follow = answered_with_the_page(response, app, project)
    assert "Changed: your choice on the previous pair is now this one." in follow
    assert "You are changing your choice" not in follow  # back to the current pair
    (judgment,) = await judgments_of(session, rater)
    await session.refresh(judgment)
    assert judgment.choice == "tie" and judgment.strength is None

    # Withdrawn into a skip from the same page.
    page = await client.get(change_path)
    action, hidden = form_of(page.text, 'class="skip-form"')
    assert action.endswith("/change-to-skip")
    response = await client.post(action, data={**hidden, "reason": "needs_expertise"})
    assert "you skipped the previous pair" in answered_with_the_page(response, app, project)
    assert await judgments_of(session, rater) == []


async def test_after_the_window_the_page_says_nothing_can_change(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    _, project = await rater_on_project(client, session, summary_every=0, undo_seconds=60)
    project_id = project.id
    await make_pairs(session, project, 2)
    clock.freeze()
    await choose(client, (await open_page(client, app, project)).text, "tie")
    change_path = app.url_path_for("rate_change", project_id=project_id)
    page = await client.get(change_path)
    assert page.status_code == 200
    clock.advance(timedelta(seconds=61))
    html = (await open_page(client, app, project)).text
    assert 'id="undo-link"' not in html
    refused = await client.get(change_path)
    assert refused.status_code == 409 and "Nothing to change" in refused.text
    # A change page opened in time and sent too late: the page says why, nothing changes.
    clock.advance(timedelta(seconds=-61))
    page = await client.get(change_path)
    clock.advance(timedelta(seconds=61))
    response, _ = await choose(client, page.text, "left")
    assert "The time to change this has passed" in answered_with_the_page(response, app, project)


async def test_the_last_pair_answers_with_no_work_left(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session, summary_every=0)
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text

    response, data = await choose(client, html, "left")
    replay = await client.post(form_of(html, 'id="choice-form"')[0], data=data)

    for answer in (response, replay):
        page = answered_with_the_page(answer, app, project)
        assert "Nothing left for you to rate" in page and "Saved." in page
        assert 'id="choice-form"' not in page
        assert "/static/js/rate.js" in page  # which shows the page's own address
    assert len(await judgments_of(session, rater)) == 1


async def test_an_answer_to_a_closed_project_says_so_and_stores_nothing(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    project.is_archived = True
    await session.flush()
    rater_id = rater.id  # the refused lease rolls its unit back

    response, _ = await choose(client, html, "left")

    assert response.status_code == 409
    assert "This project is closed" in response.text
    assert "Your answer is stored" not in response.text
    stored = select(func.count()).where(Judgment.rater_id == rater_id)
    assert await session.scalar(stored) == 0


@pytest.mark.parametrize(
    ("failure", "status", "says"),
    [
        (ProjectClosed(), 409, "Your answer is stored. This project is closed"),
        (RuntimeError("the database went away"), 503, "Your answer is stored, but the next"),
    ],
)
async def test_a_next_pair_that_fails_after_the_answer_keeps_the_answer(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
    says: str,
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    rater_id = rater.id  # the failed lease rolls its own unit back

    async def failing_lease(*args: object, **kwargs: object) -> None:
        raise failure

    # The lease after the answer's commit fails (e.g. the project closed in between).
    monkeypatch.setattr(rating.assignments, "next_lease", failing_lease)
    response, _ = await choose(client, html, "left")

    assert response.status_code == status
    assert says in response.text
    stored = select(func.count()).where(Judgment.rater_id == rater_id)
    assert await session.scalar(stored) == 1


def still_needed(html: str) -> int:
    # The label's "in this project" is wrapped (a phone shows only "Still needed").
    return shown_count(html, r"<dt>Still needed<[^<]*> in this project</span></dt><dd>(\d+)</dd>")


async def test_still_needed_is_counted_again_after_a_few_seconds(
    client: AsyncClient, app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, project = await rater_on_project(client, session, summary_every=0, raters_per_pair=2)
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text
    assert still_needed(html) == 6

    # Within a few seconds each worker shows the count it made (a big project's count reads
    # every open slot); after them, the count again.
    response, _ = await choose(client, html, "tie")
    html = answered_with_the_page(response, app, project)
    assert still_needed(html) == 6
    monkeypatch.setattr(rating, "NEEDED_SECONDS", 0.0)
    response, _ = await choose(client, html, "tie")
    assert still_needed(answered_with_the_page(response, app, project)) == 4


async def test_still_needed_is_counted_once_however_many_pages_ask_at_once(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The count reads every open slot of the project. Pages that ask while it runs wait for
    # it when there is no figure yet, else show the last one: they do not count as well (16
    # raters made ~12 counts each time the figure expired, most of the page loop's Postgres
    # CPU in the bench).
    project = await make_project(session, raters_per_pair=2)
    await make_pairs(session, project, 3)
    real_count = await assignments_repository.judgments_needed(session, project.id)
    assert real_count == 6
    counts: list[int] = []

    async def slow_count(_: AsyncSession, project_id: int) -> int:
        counts.append(project_id)
        for _ in range(5):  # the other pages ask meanwhile
            await asyncio.sleep(0)
        return real_count

    monkeypatch.setattr(assignments_repository, "judgments_needed", slow_count)
    rating._needed_seen.clear()
    asked = [rating._judgments_needed(session, project.id) for _ in range(8)]
    assert await asyncio.gather(*asked) == [6] * 8
    assert counts == [project.id]

    # Expired: one page counts again, the others show the last figure without waiting.
    rating._needed_seen[project.id] = (time.monotonic() - rating.NEEDED_SECONDS, 5)
    asked = [rating._judgments_needed(session, project.id) for _ in range(8)]
    assert sorted(await asyncio.gather(*asked)) == [5] * 7 + [6]
    assert counts == [project.id] * 2
    assert await rating._judgments_needed(session, project.id) == 6


def done_by_you(html: str) -> int:
    return shown_count(html, r"<dt>Done by you</dt><dd>(\d+)</dd>")


async def test_the_answer_counts_what_it_stored(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    # The counts on the answer's page are those read as the form came in, plus what it
    # stored: a choice adds one, a replay of it or a skip none.
    rater, project = await rater_on_project(client, session, summary_every=0)
    await make_pairs(session, project, 6)
    html = (await open_page(client, app, project)).text
    assert (done_today(html), done_by_you(html)) == (0, 0)

    first, data = await choose(client, html, "left")
    html = answered_with_the_page(first, app, project)
    assert (done_today(html), done_by_you(html)) == (1, 1)
    # The same form sent again (a reload): the first answer again, nothing counted twice.
    again = await client.post(str(first.request.url), data=data)
    replayed = answered_with_the_page(again, app, project)
    assert (done_today(replayed), done_by_you(replayed)) == (1, 1)

    second, _ = await choose(client, html, "right")
    html = answered_with_the_page(second, app, project)
    assert (done_today(html), done_by_you(html)) == (2, 2)

    action, hidden = form_of(html, 'class="skip-form"')
    skipped = await client.post(action, data={**hidden, "reason": "needs_expertise"})
    html = answered_with_the_page(skipped, app, project)
    assert (done_today(html), done_by_you(html)) == (2, 2)
    assert len(await judgments_of(session, rater)) == 2


async def test_an_admin_answers_on_any_projects_page(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    admin = await make_user(session, role="admin", password=PASSWORD)
    project = await make_project(session, summary_every=0)  # the admin is no member of it
    await make_pairs(session, project, 2)
    response = await client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 303

    answer, _ = await choose(client, (await open_page(client, app, project)).text, "left")

    html = answered_with_the_page(answer, app, project)
    assert "Saved. Here is the next pair." in html and done_by_you(html) == 1
    assert len(await judgments_of(session, admin)) == 1


@pytest.mark.parametrize("change", ["membership removed", "account deactivated", "login expired"])
async def test_a_form_from_one_who_may_no_longer_rate_stores_nothing(
    client: AsyncClient, app: FastAPI, session: AsyncSession, change: str
) -> None:
    rater, project = await rater_on_project(client, session)
    await make_pairs(session, project, 2)
    html = (await open_page(client, app, project)).text
    if change == "membership removed":
        await session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == project.id, ProjectMember.user_id == rater.id
            )
        )
    elif change == "account deactivated":
        rater.is_active = False
    else:
        await session.execute(update(UserSession).values(expires_at=clock.utcnow()))
    await session.flush()
    rater_id = rater.id  # the refused request rolls the session back

    response, _ = await choose(client, html, "left")

    if change == "membership removed":
        assert response.status_code == 404  # as for a project that does not exist
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    stored = select(func.count()).where(Judgment.rater_id == rater_id)
    assert await session.scalar(stored) == 0


async def a_fresh_page(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> tuple[User, Project, str]:
    """A rater's page of a project of 3 pairs (no summaries), with "still needed" to count."""
    rater, project = await rater_on_project(client, session, summary_every=0)
    await make_pairs(session, project, 3)
    html = (await open_page(client, app, project)).text
    rating._needed_seen.clear()
    return rater, project, html


async def test_a_choice_on_the_page_is_few_statements_and_round_trips(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    statements: list[str],
    round_trips: list[str],
) -> None:
    # The API loop's 7 statements (who asks, the judgment's lock, assignment and store; the
    # next lease's locks, standing and claim), and for the page: its project and counts with
    # who asks, the form's idempotency key taken and answered, and the "still needed"
    # figure, which is counted here (each worker keeps it a few seconds).
    # Four waits on Postgres: who asks with their project and counts, and the form's key
    # claimed for them with the lease's locks, which are taken only if the claim took effect
    # (a double submit waits on the key, then locks nothing); the choice stored, with the
    # key's answer written by the same statement; then the next pair's lease and the "still
    # needed" figure.
    rater, project, html = await a_fresh_page(client, app, session)
    statements.clear()
    round_trips.clear()

    response, data = await choose(client, html, "left")

    answered_with_the_page(response, app, project)
    assert len(statements) <= 10, "\n".join(statements)
    claims = [trip for trip in round_trips if "INSERT INTO idempotency_keys" in trip]
    assert len(claims) == 1, "\n=====\n".join(round_trips)
    assert len(round_trips) == 4, "\n=====\n".join(round_trips)
    statements = claims[0].split("\n---\n")
    assert "FROM user_sessions" in statements[0]
    assert "INSERT INTO idempotency_keys" in statements[1]
    assert "FOR UPDATE OF s" in statements[2] and "FOR UPDATE OF a" in statements[3]
    assert not any("FOR UPDATE OF a" in trip for trip in round_trips if trip not in claims)
    # The same form again: the first answer, and nothing locked or stored.
    round_trips.clear()
    again = await client.post(form_of(html, 'id="choice-form"')[0], data=data)
    assert "Saved. Here is the next pair." in answered_with_the_page(again, app, project)
    assert len(await judgments_of(session, rater)) == 1
    assert not any("INSERT INTO judgments" in trip for trip in round_trips)


async def _a_choice_on_a_live_page(live_app: FastAPI, before_choosing: Callable[[], None]) -> None:
    """A member logs in, opens the rating page of a committed project (real transactions) and
    makes a choice, answered with the next pair's page; `before_choosing` runs just before the
    choice's POST (e.g. to start counting what it sends)."""
    async with session_factory(get_engine())() as session, session.begin():
        rater = await make_user(session, password=PASSWORD)
        project = await make_project(session, summary_every=0)
        await add_member(session, project, rater)
        await make_pairs(session, project, 3)
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        login = {"email": rater.email, "password": PASSWORD}
        assert (await client.post("/login", data=login)).status_code == 303
        html = (await open_page(client, live_app, project)).text
        before_choosing()
        response, _ = await choose(client, html, "left")
        answered_with_the_page(response, live_app, project)


async def test_a_choice_on_the_page_opens_each_transaction_in_its_first_round_trip(
    live_app: FastAPI, wire: Wire
) -> None:
    # Counted on the wire, with real transactions: each of the choice's two transactions
    # opens with its BEGIN sent in its first round trip (psycopg's own BEGIN would be a
    # round trip of its own), and the next lease, on the assignment id the choice's statement
    # took, sends its COMMIT in the claim's round trip too, as the API's `?next=true` does:
    # the page's three waits on Postgres are four with the choice's COMMIT. ("Still needed"
    # was counted by the page just shown, and each worker keeps it a few seconds; when it
    # is counted again, that statement opens the next lease's transaction, with psycopg's
    # BEGIN.)
    await _a_choice_on_a_live_page(live_app, wire.clear)
    trips = wire.round_trips()
    assert len(trips) == 4, wire.described()
    begins = [trip for trip in trips if trip[0] == "BEGIN"]
    assert len(begins) == 2 and all(len(trip) > 1 for trip in begins), trips
    assert "FROM user_sessions" in begins[0][1]
    assert trips.count(["COMMIT"]) == 1
    assert begins[1][-1] == "COMMIT" and "INSERT INTO assignments" in " ".join(begins[1])


async def test_a_choice_and_the_page_after_it_take_one_connection_from_the_pool(
    live_app: FastAPI, checkouts: list[None]
) -> None:
    # The choice commits, then the next pair is leased in a transaction of its own on the
    # same session and connection (`OpenUnit.done_then`): one checkout, not one per unit.
    await _a_choice_on_a_live_page(live_app, checkouts.clear)
    assert len(checkouts) == 1
    assert get_engine().sync_engine.pool.checkedout() == 0
    async with session_factory(get_engine())() as session:
        assert await session.scalar(select(func.count()).select_from(Judgment)) == 1
        leased = select(func.count()).where(Assignment.status == "leased")
        assert await session.scalar(leased) == 1


async def test_the_summary_and_the_page_after_it_are_few_statements(
    client: AsyncClient, app: FastAPI, session: AsyncSession, statements: list[str]
) -> None:
    # Every so many judgments the answer is the summary, then the rating page: each finds
    # who asks, their project and their counts in one statement, as a choice does. Then the
    # summary reads the rater's recent choices; the page leases a pair (locks, standing,
    # claim) and finds whether the last decision may still change (the last one with its
    # judgment, in one statement: it was three).
    _, project = await rater_on_project(client, session, summary_every=1)
    await make_pairs(session, project, 3)
    response, _ = await choose(client, (await open_page(client, app, project)).text, "left")
    assert response.status_code == 200 and "What your choices teach" in response.text
    rating._needed_seen[project.id] = (time.monotonic(), 5)
    statements.clear()

    forget_kept_features()
    address = app.url_path_for("rate_summary", project_id=project.id) + "?after=1"
    summary = await client.get(address)
    assert summary.status_code == 200
    assert "What your choices teach" in summary.text
    # The answers not scanned before are read by id, in a statement of their own.
    assert len(statements) <= 3, "\n".join(statements)
    assert sum("FROM responses" in each for each in statements) == 1, "\n".join(statements)
    # Its lines compare answers only: the prompts (their turns, JSON to decode for each of
    # up to 500 choices every so many judgments) are not read.
    assert not any("prompts" in each for each in statements), "\n".join(statements)

    # The next summary (every so many judgments, over much the same choices) reads no
    # answer's text again: this process keeps their features.
    statements.clear()
    again = await client.get(address)
    assert again.text.count("Picked the") == summary.text.count("Picked the") > 0
    assert len(statements) <= 2, "\n".join(statements)
    assert not any("responses" in each for each in statements), "\n".join(statements)

    statements.clear()
    html = (await open_page(client, app, project)).text
    assert 'id="choice-form"' in html
    assert f'href="{app.url_path_for("rate_change", project_id=project.id)}"' in html  # undo
    assert len(statements) <= 5, "\n".join(statements)


async def test_the_pair_page_says_where_each_answer_is_without_a_macro_per_word(
    client: AsyncClient, app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Left"/"Top" and "Right"/"Bottom" (the layout's words) appear ten times on a page with
    # criteria and a strength scale: made once, not by a macro call each time. The one macro
    # called on every page is the conversation (shared with an admin's page of the pair); the
    # parts that are the same for every pair of the project are macros rendered once
    # (`rating._pair_part`).
    rating._pair_part.cache_clear()
    macros: list[str] = []
    call = jinja2.runtime.Macro.__call__

    def counted(self: jinja2.runtime.Macro, *args: Any, **kwargs: Any) -> Any:
        macros.append(self.name)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.runtime.Macro, "__call__", counted)
    _, project = await rater_on_project(
        client, session, strength_scale=["a bit", "a lot"], criteria=["honesty"]
    )
    await make_pairs(session, project, 1)
    html = (await open_page(client, app, project)).text

    parts = ["strength_options", "skip_reasons", "flag_reasons", "shortcut_list"]
    assert macros == [*parts, "conversation"]
    macros.clear()
    assert (await open_page(client, app, project)).text.count("side-stacked") == 8
    assert macros == ["conversation"]
    words = {
        "left": '<span class="side-wide">Left</span><span class="side-stacked">Top</span>',
        "right": '<span class="side-wide">Right</span><span class="side-stacked">Bottom</span>',
    }
    for side, word in words.items():
        assert f'<h2 id="answer-{side}">{word} answer</h2>' in html
        assert f"<span>{word} is better</span>" in html
        assert f'name="criterion-0" value="{side}"\n            > {word}</label>' in html
    assert 'name="criterion-0" value="tie"\n            > Same</label>' in html
    assert html.count('<span class="side-stacked">') == 8
