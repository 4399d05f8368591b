"""Fan-out: every event becomes one delivery per endpoint that subscribes to it and whose owner
may see it, written in the transaction of the change, or not at all."""

from __future__ import annotations

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rostra.events import service as events
from rostra.webhooks.models import DELIVERIES_DUE, PENDING, WebhookDelivery
from tests.access.helpers import stored_events
from tests.factories import (
    add_member,
    make_account,
    make_data_set,
    make_deployment,
    make_key,
    make_project,
    make_user,
)
from tests.webhooks.endpoints import PUBLIC_URL, make_endpoint, stored_deliveries


class Crash(Exception):
    pass


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": False}


async def deliveries_by_endpoint(app: FastAPI) -> dict[int, list[str]]:
    """Each endpoint's delivered event types, in order."""
    found: dict[int, list[str]] = {}
    for delivery in await stored_deliveries(app):
        found.setdefault(delivery.endpoint_id, []).append(delivery.event_type)
    return found


async def test_a_delivery_per_subscriber_in_the_events_transaction(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    everything = await make_endpoint(app, alice.user, events=["*"])
    projects_only = await make_endpoint(app, alice.user, events=["project.created"])
    data_only = await make_endpoint(app, alice.user, events=["data.created"])
    await make_endpoint(app, alice.user, events=["*"], active=False)
    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)

    created = await client.post("/api/v1/projects", headers=alice.headers, json={"name": "p"})
    assert created.status_code == 201
    assert await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)

    [event] = await stored_events(app, "project.created")
    deliveries = await stored_deliveries(app)
    assert sorted(d.endpoint_id for d in deliveries) == [everything.id, projects_only.id]
    assert data_only.id not in {d.endpoint_id for d in deliveries}
    for delivery in deliveries:
        assert (delivery.event_id, delivery.event_type) == (event.id, "project.created")
        assert (delivery.status, delivery.attempts) == (PENDING, 0)
        assert delivery.next_attempt_at is not None
        assert delivery.message_id.startswith("msg_")
        body = orjson.loads(delivery.payload)
        assert body == events.to_out(event).model_dump(mode="json")
        assert body["id"] == event.public_id
        assert body["event"] == "project.created"
        assert body["timestamp"].endswith("Z")
        assert body["data"] == created.json()
    assert len({d.message_id for d in deliveries}) == 2
    assert deliveries[0].payload.encode() == orjson.dumps(orjson.loads(deliveries[0].payload))
    assert deliveries[0].payload.startswith(f'{{"id":"{event.public_id}","event":"project.created"')

    listed = await client.get(f"/api/v1/webhooks/{everything.id}/deliveries", headers=alice.headers)
    [row] = listed.json()["data"]
    assert (row["event_id"], row["event_type"]) == (event.public_id, "project.created")


async def test_a_rolled_back_change_leaves_neither_event_nor_delivery(app: FastAPI) -> None:
    alice = await make_account(app)
    await make_endpoint(app, alice.user, events=["*"])
    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)

    async def record_then_crash() -> None:
        async with app.state.db.transaction() as writes:
            await events.record(
                writes, event_type="project.created", data={"id": 1}, owner_id=alice.id
            )
            found = await writes.run(select(WebhookDelivery.id), {})
            assert len(found.rows) == 1  # inside: there
            raise Crash

    with pytest.raises(Crash):
        await record_then_crash()
    assert await stored_events(app, "project.created") == []
    assert await stored_deliveries(app) == []
    assert not await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)


async def test_a_failed_commit_leaves_neither_event_nor_delivery(
    app: FastAPI, client: httpx.AsyncClient, failing_commits: list[bool]
) -> None:
    alice = await make_account(app)
    await make_endpoint(app, alice.user, events=["*"])
    assert (await client.get("/api/v1/projects", headers=alice.headers)).status_code == 200
    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)

    failing_commits[0] = True
    response = await client.post("/api/v1/projects", headers=alice.headers, json={"name": "x"})
    failing_commits[0] = False

    assert response.status_code == 500
    assert await stored_events(app, "project.created") == []
    assert await stored_deliveries(app) == []
    assert not await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)


async def test_only_events_the_owner_may_see(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The rule of GET /events: own events, events of member projects, admins everything."""
    alice, bob = await make_account(app), await make_account(app)
    admin = await make_user(app, role="admin")
    alices = await make_endpoint(app, alice.user)
    bobs = await make_endpoint(app, bob.user)
    admins = await make_endpoint(app, admin)

    bobs_private = await make_project(app, bob.user, name="bob's", visibility="private")
    bobs_internal = await make_project(app, bob.user, name="bob's too", visibility="internal")
    await make_data_set(app, bob.user)
    assert await deliveries_by_endpoint(app) == {
        bobs.id: ["project.created", "project.created", "data.created"],
        admins.id: ["project.created", "project.created", "data.created"],
    }

    # Alice joins bob's private project: its events reach her from then on.
    await add_member(app, bobs_private, alice.user)
    await make_deployment(app, bobs_private)
    await make_deployment(app, bobs_internal)
    found = await deliveries_by_endpoint(app)
    assert found[alices.id] == ["project.member_added", "deployment.created"]
    assert found[bobs.id][3:] == [
        "project.member_added",
        "deployment.created",
        "deployment.created",
    ]
    assert len(found[admins.id]) == 6

    # What alice's endpoint got is what GET /events shows her.
    shown = await client.get("/api/v1/events?sort=id&order=asc", headers=alice.headers)
    assert [e["event"] for e in shown.json()["data"]][-2:] == found[alices.id]


async def test_project_scoped_endpoints(app: FastAPI) -> None:
    alice = await make_account(app)
    first = await make_project(app, alice.user)
    second = await make_project(app, alice.user)
    scoped = await make_endpoint(app, alice.user, project_id=first.id)
    unscoped = await make_endpoint(app, alice.user)
    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)

    await make_deployment(app, first)
    await make_deployment(app, second)
    await make_data_set(app, alice.user)  # personal: no project
    await make_data_set(app, alice.user, first)
    found = await deliveries_by_endpoint(app)
    assert found[scoped.id] == ["deployment.created", "data.created"]
    assert found[unscoped.id] == [
        "deployment.created",
        "deployment.created",
        "data.created",
        "data.created",
    ]
    scoped_events = [d.event_id for d in await stored_deliveries(app) if d.endpoint_id == scoped.id]
    by_id = {e.id: e for e in await stored_events(app)}
    assert {by_id[event_id].project_id for event_id in scoped_events if event_id} == {first.id}


async def test_live_and_test_events_reach_endpoints_of_their_own_mode(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    test_headers = {"Authorization": f"Bearer {await make_key(app, alice.user, mode='test')}"}
    body = {"url": PUBLIC_URL, "events": ["project.created"]}
    live = await client.post("/api/v1/webhooks", headers=alice.headers, json=body)
    sandbox = await client.post("/api/v1/webhooks", headers=test_headers, json=body)
    assert (live.json()["livemode"], sandbox.json()["livemode"]) == (True, False)

    await client.post("/api/v1/projects", headers=alice.headers, json={"name": "live"})
    await client.post("/api/v1/projects", headers=test_headers, json={"name": "test"})
    deliveries = await stored_deliveries(app)
    by_endpoint = {d.endpoint_id: orjson.loads(d.payload) for d in deliveries}
    assert len(deliveries) == 2
    assert by_endpoint[live.json()["id"]]["data"]["name"] == "live"
    assert by_endpoint[live.json()["id"]]["livemode"] is True
    assert by_endpoint[sandbox.json()["id"]]["data"]["name"] == "test"
    assert by_endpoint[sandbox.json()["id"]]["livemode"] is False


async def test_seed_003_types_register_but_nothing_emits_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks",
        headers=alice.headers,
        json={"url": PUBLIC_URL, "events": ["course.completed"]},
    )
    assert created.status_code == 201
    await client.post("/api/v1/projects", headers=alice.headers, json={"name": "p"})
    await make_data_set(app, alice.user)
    assert await stored_deliveries(app) == []


async def test_deleting_the_owner_deletes_their_endpoints(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    alice = await make_account(app)
    endpoint = await make_endpoint(app, alice.user)
    await make_data_set(app, alice.user)
    assert len(await stored_deliveries(app)) == 1
    deleted = await client.delete(f"/api/v1/users/{alice.id}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert (
        await client.get(f"/api/v1/webhooks/{endpoint.id}", headers=admin.headers)
    ).status_code == 404
    assert await stored_deliveries(app) == []


async def test_deleting_a_project_deletes_the_endpoints_scoped_to_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    project = await make_project(app, alice.user)
    scoped = await make_endpoint(app, alice.user, project_id=project.id)
    unscoped = await make_endpoint(app, alice.user)
    deleted = await client.delete(f"/api/v1/projects/{project.id}", headers=alice.headers)
    assert deleted.status_code == 204
    listed = await client.get("/api/v1/webhooks", headers=alice.headers)
    assert [w["id"] for w in listed.json()["data"]] == [unscoped.id]
    assert await deliveries_by_endpoint(app) == {unscoped.id: ["project.deleted"]}
    assert scoped.id not in await deliveries_by_endpoint(app)


async def test_a_sign_up_reaches_administrators_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Seed 003 subscribes to ``user.registered``: a new user's events are their own."""
    member = await make_account(app)
    admin = await make_user(app, role="admin")
    members = await make_endpoint(app, member.user, events=["user.registered"])
    admins = await make_endpoint(app, admin, events=["user.registered"])
    signed_up = await client.post(
        "/api/v1/auth/register",
        json={
            "username": "newcomer",
            "email": "newcomer@example.com",
            "password": "long enough pw",
        },
    )
    assert signed_up.status_code == 201, signed_up.text
    found = await deliveries_by_endpoint(app)
    assert found == {admins.id: ["user.registered"]}
    assert members.id not in found
    [delivery] = await stored_deliveries(app)
    assert orjson.loads(delivery.payload)["data"]["username"] == "newcomer"


async def test_batch_savepoints_keep_only_the_deliveries_of_operations_that_stand(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    await make_user(app, email="taken@example.com")
    endpoint = await make_endpoint(app, admin.user, events=["user.created"])
    answer = await client.post(
        "/api/v1/users/batch",
        headers=admin.headers,
        json={
            "operations": [
                {"op": "create", "data": {"email": "first@example.com"}},
                {"op": "create", "data": {"email": "taken@example.com"}},
                {"op": "create", "data": {"email": "third@example.com"}},
            ]
        },
    )
    assert [item["status"] for item in answer.json()["results"]] == [201, 409, 201]
    emails = [orjson.loads(d.payload)["data"]["email"] for d in await stored_deliveries(app)]
    assert emails == ["first@example.com", "third@example.com"]
    assert {d.endpoint_id for d in await stored_deliveries(app)} == {endpoint.id}

    atomic = await client.post(
        "/api/v1/users/batch",
        headers=admin.headers,
        json={
            "atomic": True,
            "operations": [
                {"op": "create", "data": {"email": "rolled@example.com"}},
                {"op": "create", "data": {"email": "taken@example.com"}},
            ],
        },
    )
    assert [item["status"] for item in atomic.json()["results"]] == [424, 409]
    assert len(await stored_deliveries(app)) == 2
