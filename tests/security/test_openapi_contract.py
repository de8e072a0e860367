"""Contract: Schemathesis fuzzes every operation of the OpenAPI schema against the app.

In process, over httpx's ASGI transport on the test's event loop, as an admin with a bearer
token, against committed data: one small project with pairs, a pool, a webhook with a
delivery, a generation endpoint and a rater. Generated path ids point at those objects half
of the time (random ids mostly meet 404s). Each response must not be a 5xx and must conform
to the schema: a documented status code and content type, and a body and headers that match.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as openapi_checks

from pickwise.app import create_app
from pickwise.auth import service as auth_service
from pickwise.core.db import get_engine, session_factory
from pickwise.generation import service as generation_service
from pickwise.generation.schemas import EndpointCreate
from pickwise.pools import service as pools_service
from pickwise.pools.schemas import PoolCreate
from pickwise.webhooks import service as webhooks_service
from pickwise.webhooks.schemas import WebhookCreate
from tests.factories import add_member, make_pairs, make_project, make_user
from tests.tables import empty_all_tables

SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
# ok() raises on an operation the schema cannot describe: that fails the collection.
OPERATIONS = {
    op.label: op
    for op in (result.ok() for result in SCHEMA.get_all_operations())  # type: ignore[union-attr]
}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@dataclass(frozen=True)
class Seeded:
    headers: dict[str, str]
    # Path parameter -> the id of a real object it can point at.
    ids: dict[str, int]
    login_token_id: int


@pytest.fixture(scope="module")
async def seeded(database_url: str) -> AsyncIterator[Seeded]:
    """Committed data shared by the module's tests; every table is emptied afterwards."""
    engine = get_engine()
    async with session_factory(engine)() as session, session.begin():
        project = await make_project(session, strength_scale=["a bit", "a lot"])
        pairs = await make_pairs(session, project, 4)
        admin = await make_user(session, role="admin")
        rater = await make_user(session)
        await add_member(session, project, rater)
        token, login_token = await auth_service.create_api_token(session, admin, "schemathesis")
        # A token of its own for DELETE /tokens/{id}, so the fuzzer never revokes its login.
        _, victim = await auth_service.create_api_token(session, admin, "revocable")
        _, pool = await pools_service.create_pool(
            session, project, PoolCreate(name="study", quota=2), admin
        )
        webhook = await webhooks_service.create_webhook(
            session,
            project,
            WebhookCreate(url="https://hooks.example.org/in", events=["batch.imported"]),
        )
        await webhooks_service.queue_ping(session, project, webhook)
        (delivery,) = await webhooks_service.deliveries(session, webhook, 1)
        delivery.status = "failed"
        endpoint = await generation_service.create_endpoint(
            session, project, EndpointCreate(base_url="https://llm.example.org/v1", model="m-1")
        )
        ids = {
            "project_id": project.id,
            "user_id": rater.id,
            "token_id": victim.id,
            "pool_id": pool.id,
            "webhook_id": webhook.id,
            "delivery_id": delivery.id,
            "endpoint_id": endpoint.id,
            "pair_id": pairs[0].id,
        }
    try:
        yield Seeded({"Authorization": f"Bearer {token}"}, ids, login_token.id)
    finally:
        await empty_all_tables(engine)


@pytest.fixture(scope="module")
def contract_app(seeded: Seeded) -> Any:
    return create_app()


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis prepares requests-style arguments; httpx takes raw bodies as content."""
    request = {k: v for k, v in kwargs.items() if k in {"method", "url", "headers", "params"}}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if kwargs.get("files"):
        request["files"] = kwargs["files"]
    if kwargs.get("cookies"):
        request["cookies"] = kwargs["cookies"]
    return request


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_operation_conforms_to_its_schema(
    label: str, data: st.DataObject, contract_app: Any, seeded: Seeded
) -> None:
    operation = OPERATIONS[label]
    case = data.draw(operation.as_strategy())
    parameters = case.path_parameters or {}
    for name, real_id in seeded.ids.items():
        if name in parameters and data.draw(st.booleans()):
            parameters[name] = real_id
    if parameters.get("token_id") == seeded.login_token_id:
        parameters["token_id"] = seeded.ids["token_id"]  # revoking our own login ends the run
    kwargs = case.as_transport_kwargs(base_url="http://test", headers=seeded.headers)
    transport = ASGITransport(app=contract_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(**httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS, headers=seeded.headers)
