"""What /webhooks refuses: bad bodies, unsafe URLs, other users' endpoints, narrow keys."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, select

from rostra.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import make_account, make_key, make_project
from tests.webhooks.endpoints import PUBLIC_URL, make_endpoint

WEBHOOK_TABLES: tuple[Any, ...] = (
    WebhookEndpoint.__table__,
    WebhookDelivery.__table__,
    WebhookAttempt.__table__,
)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": False}


async def webhook_rows(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with app.state.db.session_scope() as session:
        for table in WEBHOOK_TABLES:
            assert isinstance(table, Table)
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            tables[table.name] = [tuple(row) for row in rows.all()]
    return tables


def refused_field(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    field: str = error["details"][0]["field"]
    return field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "url"),
        ({"url": PUBLIC_URL}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": "project.created"}, "events"),
        ({"url": PUBLIC_URL, "events": ["project.exploded"]}, "events"),
        ({"url": PUBLIC_URL, "events": ["*"], "colour": "red"}, "colour"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "short"}, "secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_not*base64!!"}, "secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "secret": "whsec_c2hvcnQ="}, "secret"),
        ({"url": PUBLIC_URL, "events": ["*"], "max_attempts": 0}, "max_attempts"),
        ({"url": PUBLIC_URL, "events": ["*"], "max_attempts": 21}, "max_attempts"),
        ({"url": PUBLIC_URL, "events": ["*"], "description": "x" * 501}, "description"),
        ({"url": PUBLIC_URL, "events": ["*"], "project_id": 2**40}, "project_id"),
        ({"url": PUBLIC_URL, "events": ["*"], "owner_id": 0}, "owner_id"),
        ({"url": "ftp://example.com/hook", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "https:///no-host", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2048, "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:8080/hook", "events": ["*"]}, "url"),
        ({"url": "http://localhost/hook", "events": ["*"]}, "url"),
        ({"url": "http://10.1.2.3/hook", "events": ["*"]}, "url"),
        ({"url": "http://[::1]/hook", "events": ["*"]}, "url"),
        ({"url": "http://[::ffff:169.254.169.254]/", "events": ["*"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]}, "url"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await make_account(app)
    response = await client.post("/api/v1/webhooks", headers=account.headers, json=body)
    assert refused_field(response) == field
    assert (await webhook_rows(app))["webhook_endpoints"] == []


async def test_unknown_event_type_message_points_at_the_catalogue(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": PUBLIC_URL, "events": ["project.created", "project.exploded"]},
    )
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "events"
    assert "project.exploded" in detail["message"]
    assert "/events/types" in detail["message"]


async def test_malformed_json_and_wrong_media_type(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    headers = {**account.headers, "Content-Type": "application/json"}
    broken = await client.post("/api/v1/webhooks", headers=headers, content=b'{"url": ')
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "VALIDATION_ERROR"
    assert broken.json()["error"]["details"][0]["field"] == "body"
    text = await client.post(
        "/api/v1/webhooks",
        headers={**account.headers, "Content-Type": "text/plain"},
        content=b"url=x",
    )
    assert text.status_code == 415


async def test_the_ssrf_reason_is_in_the_url_message(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": "http://localhost:9/hook", "events": ["*"]},
    )
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "url"
    assert "loopback" in detail["message"]
    assert detail["message"][0].isupper()


async def test_an_unresolvable_host_is_accepted_and_checked_at_delivery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Seed 003's ``your-app.com`` need not resolve when it is registered."""
    account = await make_account(app)
    response = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": "https://no-such-host.invalid/hook", "events": ["*"]},
    )
    assert response.status_code == 201, response.text


async def test_patch_checks_a_new_url_too(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    endpoint = await make_endpoint(app, account.user)
    before = await webhook_rows(app)
    response = await client.patch(
        f"/api/v1/webhooks/{endpoint.id}",
        headers=account.headers,
        json={"url": "http://127.0.0.1:8080/hook"},
    )
    assert refused_field(response) == "url"
    assert await webhook_rows(app) == before


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_enabled": False, "webhooks_allow_private": True}]
)
async def test_private_addresses_when_the_operator_allows_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:9/x", "http://10.1.2.3/"):
        response = await client.post(
            "/api/v1/webhooks", headers=account.headers, json={"url": url, "events": ["*"]}
        )
        assert response.status_code == 201, response.text
    metadata = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]},
    )
    assert refused_field(metadata) == "url"
    assert "metadata" in metadata.json()["error"]["details"][0]["message"]


async def test_project_scope_must_be_a_project_the_caller_sees(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob = await make_account(app), await make_account(app)
    hidden = await make_project(app, bob.user)
    mine = await make_project(app, alice.user)
    refused = await client.post(
        "/api/v1/webhooks",
        headers=alice.headers,
        json={"url": PUBLIC_URL, "events": ["*"], "project_id": hidden.id},
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["details"][0]["field"] == "project_id"
    accepted = await client.post(
        "/api/v1/webhooks",
        headers=alice.headers,
        json={"url": PUBLIC_URL, "events": ["*"], "project_id": mine.id},
    )
    assert accepted.status_code == 201
    assert accepted.json()["project_id"] == mine.id


async def test_owner_id_is_for_administrators(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice, bob = await make_account(app), await make_account(app)
    admin = await make_account(app, role="admin")
    body = {"url": PUBLIC_URL, "events": ["*"]}
    refused = await client.post(
        "/api/v1/webhooks", headers=alice.headers, json={**body, "owner_id": bob.id}
    )
    assert refused.status_code == 403
    own = await client.post(
        "/api/v1/webhooks", headers=alice.headers, json={**body, "owner_id": alice.id}
    )
    assert own.status_code == 201
    for_bob = await client.post(
        "/api/v1/webhooks", headers=admin.headers, json={**body, "owner_id": bob.id}
    )
    assert for_bob.status_code == 201
    assert for_bob.json()["owner_id"] == bob.id
    listed = await client.get("/api/v1/webhooks", headers=bob.headers)
    assert [w["id"] for w in listed.json()["data"]] == [for_bob.json()["id"]]


async def test_someone_elses_webhook_is_404_on_every_verb(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, mallory = await make_account(app), await make_account(app)
    created = await client.post(
        "/api/v1/webhooks", headers=alice.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    url = created.headers["Location"]
    delivery = (await client.post(url + "/test", headers=alice.headers)).json()
    before = await webhook_rows(app)

    attempts = [
        ("GET", url, None),
        ("PATCH", url, {"description": "mine now"}),
        ("DELETE", url, None),
        ("POST", url + "/rotate-secret", None),
        ("POST", url + "/test", None),
        ("GET", url + "/deliveries", None),
        ("GET", f"{url}/deliveries/{delivery['id']}", None),
        ("POST", f"{url}/deliveries/{delivery['id']}/redeliver", None),
    ]
    for method, target, body in attempts:
        response = await client.request(method, target, headers=mallory.headers, json=body)
        assert response.status_code == 404, (method, target, response.text)
        assert response.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert (await client.get("/api/v1/webhooks", headers=mallory.headers)).json()["data"] == []
    assert await webhook_rows(app) == before

    admin = await make_account(app, role="admin")
    assert (await client.get(url, headers=admin.headers)).status_code == 200


async def test_scopes(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    endpoint = await make_endpoint(app, account.user)
    url = f"/api/v1/webhooks/{endpoint.id}"
    body = {"url": PUBLIC_URL, "events": ["*"]}
    keys = {
        scope: {"Authorization": f"Bearer {await make_key(app, account.user, scopes=[scope])}"}
        for scope in ("read", "webhooks:read", "webhooks:write", "projects:write")
    }
    before = await webhook_rows(app)
    for scope in ("read", "webhooks:read"):
        headers = keys[scope]
        assert (await client.get(url, headers=headers)).status_code == 200
        assert (await client.get(url + "/deliveries", headers=headers)).status_code == 200
        for method, target, payload in (
            ("POST", "/api/v1/webhooks", body),
            ("PATCH", url, {"description": "x"}),
            ("DELETE", url, None),
            ("POST", url + "/rotate-secret", None),
            ("POST", url + "/test", None),
        ):
            response = await client.request(method, target, headers=headers, json=payload)
            assert response.status_code == 403, (scope, method, target)
            assert response.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert (await client.get(url, headers=keys["projects:write"])).status_code == 403
    assert await webhook_rows(app) == before

    writer = keys["webhooks:write"]
    assert (await client.get(url, headers=writer)).status_code == 200
    assert (await client.post("/api/v1/webhooks", headers=writer, json=body)).status_code == 201
    assert (await client.get("/api/v1/webhooks")).status_code == 401


async def test_huge_ids_in_paths_are_a_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    response = await client.get("/api/v1/webhooks/99999999999999999999", headers=account.headers)
    assert refused_field(response) == "webhook_id"
