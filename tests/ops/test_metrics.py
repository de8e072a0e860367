"""/metrics: request latency by route template, rating counters, open slots per project."""

from datetime import timedelta

from httpx import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.core.clock import utcnow
from pickwise.core.metrics import EXPORT_ROWS, IMPORT_ROWS
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name + "_total") or 0.0


async def test_rating_counts_latency_by_route_and_open_slots(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2)
    await make_pairs(session, project, 3)
    rater = await make_user(session)
    await add_member(session, project, rater)
    headers = await bearer_headers(session, rater)
    before = await scrape(client)

    lease = await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assignment_id = lease.json()["assignment_id"]
    stored = await client.post(
        f"/api/v1/assignments/{assignment_id}/judgment", json={"choice": "left"}, headers=headers
    )
    assert stored.status_code == 201, stored.text
    await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    await client.get("/no/such/page/12345")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("pickwise_judgments_stored_total") == 1
    assert delta("pickwise_leases_granted_total") == 2
    route = "/api/v1/projects/{project_id}/next"
    assert delta("pickwise_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert delta("pickwise_http_requests_total", method="GET", route=route, status="200") == 2
    assert delta("pickwise_http_requests_total", method="GET", route="<unmatched>", status="404")
    assert not any(
        "12345" in str(labels) or f"/{project.id}/" in str(labels) for _, labels in after
    )
    # 3 pairs x 2 slots: one judged, one leased (the second /next), four open.
    assert value(after, "pickwise_open_slots", project=project.slug) == 4
    assert value(after, "pickwise_leased_slots", project=project.slug) == 1
    assert value(after, "pickwise_database_up") == 1
    for name in ("pickwise_import_rows_total", "pickwise_export_rows_total"):
        assert (name, ()) in after


async def test_a_lease_taken_over_after_expiry_is_counted(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=1, lease_seconds=10)
    await make_pairs(session, project, 1)
    first, second = await make_user(session), await make_user(session)
    for rater in (first, second):
        await add_member(session, project, rater)
    expired_before = counter("pickwise_leases_expired")

    assert await next_lease(session, project, first) is not None
    later = utcnow() + timedelta(seconds=60)
    assert await next_lease(session, project, second, now=later) is not None

    assert counter("pickwise_leases_expired") == expired_before + 1


def test_import_and_export_counters_take_row_counts() -> None:
    imported, exported = counter("pickwise_import_rows"), counter("pickwise_export_rows")
    IMPORT_ROWS.inc(250)
    EXPORT_ROWS.inc(40)
    assert counter("pickwise_import_rows") == imported + 250
    assert counter("pickwise_export_rows") == exported + 40


async def test_an_import_through_the_api_counts_its_new_rows(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    line = (
        '{"id": "q1", "prompt": "Why?", "responses": ['
        '{"id": "a", "model": "m1", "content": "One."}, {"id": "b", "model": "m2", '
        '"content": "Two."}, {"id": "c", "model": "m3", "content": "Three."}]}\n'
    )
    url = f"/api/v1/projects/{project.id}/batches"
    before = counter("pickwise_import_rows")

    first = await client.post(url, content=line, headers=headers)
    again = await client.post(url, content=line, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    # 1 prompt, 3 answers, 3 pairs; the second time nothing is new.
    assert counter("pickwise_import_rows") == before + 7


async def test_metrics_are_served_while_the_database_is_down(
    database_down: None, client: AsyncClient
) -> None:
    samples = await scrape(client)
    assert value(samples, "pickwise_database_up") == 0
    assert not any(name == "pickwise_open_slots" for name, _ in samples)
    assert any(name == "pickwise_judgments_stored_total" for name, _ in samples)
