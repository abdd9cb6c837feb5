"""Operator actions against the real store: replay, dead letters retried or discarded, pauses."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from broker import alerts
from broker.settings import Settings
from routing.replay import Selection, replay
from tests.integration.console.conftest import Console, audit, cli_token
from tests.integration.console.test_content import store
from tests.integration.console.traffic import add_delivery, add_outcome
from tests.integration.routing.conftest import ready_heads
from tests.messages import ORU, variant


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], name: str = "otto"
) -> Any:
    token = await cli_token(client, name)
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def delivery(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
    assert row is not None
    return dict(row)


async def kinds(pool: asyncpg.Pool, kind: str) -> list[dict[str, Any]]:
    return [e for e in await audit(pool) if e["kind"] == kind]


async def test_replay_a_message_to_all_or_one_recipient(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    message = await store(console)
    at = message.received_at
    dupont = await add_outcome(
        pool, message.message_id, at, "cabinet-dupont", status="delivered", payload=b"MSH|x"
    )
    nord = await add_outcome(
        pool, message.message_id, at, "maison-sante-nord", status="dead", payload=b"{}"
    )
    pending = await add_outcome(
        pool, message.message_id, at, "chu-montpellier", status="pending", payload=b"MSH|y"
    )
    outbox_before = await pool.fetchval("SELECT count(*) FROM outbox")

    done = await post(
        client,
        f"/api/messages/{message.message_id}/replay",
        {"recipient": "cabinet-dupont", "reason": "GP lost its inbox"},
    )
    assert done == {"deliveries": 1, "rerouted": 0, "skipped": []}
    row = await delivery(pool, dupont)
    assert (row["status"], row["replays"], row["delivered_at"]) == ("pending", 1, None)
    assert (await delivery(pool, nord))["status"] == "dead"  # not asked for
    replayed = await kinds(pool, "replayed")
    assert [(e["actor"], e["recipient"], e["detail"]["reason"]) for e in replayed] == [
        ("user:otto", "cabinet-dupont", "GP lost its inbox")
    ]

    # All recipients: the dead letter too; the pending one is on its way already.
    everyone = await post(client, f"/api/messages/{message.message_id}/replay", {})
    assert everyone["deliveries"] == 1  # nord; dupont is pending again since the first replay
    assert (await delivery(pool, nord))["status"] == "pending"
    assert (await delivery(pool, pending))["replays"] == 0
    # The delivery instances are woken through the outbox (one row per replayed delivery).
    assert await pool.fetchval("SELECT count(*) FROM outbox") == outbox_before + 2

    token = await cli_token(client, "otto")
    missing = await client.post(
        f"/api/messages/{uuid.uuid4()}/replay",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert missing.status_code == 404


async def test_dead_letters_are_listed_retried_and_discarded_with_a_reason(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    first = await store(console, variant(ORU, "DL-1"))
    second = await store(console, variant(ORU, "DL-2"))
    refused = await add_outcome(
        pool,
        first.message_id,
        first.received_at,
        "cabinet-dupont",
        status="failed",
        payload=b"MSH|1",
        ack_code="AE",
        last_error="AE 101",
        control_id="DL-1",
        failed_ago_s=60,
    )
    expired = await add_outcome(
        pool,
        second.message_id,
        second.received_at,
        "cabinet-dupont",
        status="dead",
        payload=b"MSH|2",
        last_error="timeout; attempts exhausted",
        control_id="DL-2",
        failed_ago_s=30,
    )
    other = await add_outcome(
        pool,
        second.message_id,
        second.received_at,
        "chu-montpellier",
        status="dead",
        payload=b"MSH|3",
        control_id="DL-2",
    )
    listed = (await client.get("/api/dead-letters")).status_code
    assert listed == 401
    token = await cli_token(client, "vera")  # viewers may see the queue
    viewer = {"Authorization": f"Bearer {token}"}
    page = (await client.get("/api/dead-letters", headers=viewer)).json()
    assert [d["id"] for d in page["dead_letters"]] == [str(other), str(expired), str(refused)]
    assert page["dead_letters"][2] | {"failed_at": None, "received_at": None} == {
        "id": str(refused),
        "message_id": str(first.message_id),
        "control_id": "DL-1",
        "message_type": "ORU^R01",
        "sender": "labo-sud",
        "recipient": "cabinet-dupont",
        "status": "failed",
        "attempts": 1,
        "ack_code": "AE",
        "last_error": "AE 101",
        "received_at": None,
        "failed_at": None,
        "replays": 0,
    }
    one = (
        await client.get(
            "/api/dead-letters", params={"recipient": "cabinet-dupont", "limit": 1}, headers=viewer
        )
    ).json()
    assert [d["id"] for d in one["dead_letters"]] == [str(expired)]
    rest = (
        await client.get(
            "/api/dead-letters",
            params={"recipient": "cabinet-dupont", "before": one["next"]},
            headers=viewer,
        )
    ).json()
    assert [d["id"] for d in rest["dead_letters"]] == [str(refused)] and rest["next"] is None

    # Retry one by id: pending again, fresh budget, audited with the reason.
    retried = await post(
        client, "/api/dead-letters/retry", {"delivery_ids": [str(refused)], "reason": "fixed PID"}
    )
    assert retried == {"changed": 1, "skipped": []}
    row = await delivery(pool, refused)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, None)
    assert [e["detail"]["reason"] for e in await kinds(pool, "replayed")] == ["fixed PID"]

    # Discard the rest of cabinet-dupont's: out of the queue, the counts and the alert.
    discarded = await post(
        client,
        "/api/dead-letters/discard",
        {"recipient": "cabinet-dupont", "reason": "sent by post instead"},
    )
    assert discarded == {"changed": 1, "skipped": []}
    row = await delivery(pool, expired)
    assert (row["status"], row["discarded_by"], row["discard_reason"]) == (
        "dead",
        "user:otto",
        "sent by post instead",
    )
    events = await kinds(pool, "dead_letter_discarded")
    assert [(e["actor"], e["recipient"], e["detail"]["reason"]) for e in events] == [
        ("user:otto", "cabinet-dupont", "sent by post instead")
    ]
    page = (await client.get("/api/dead-letters", headers=viewer)).json()
    assert [d["id"] for d in page["dead_letters"]] == [str(other)]
    flows = (await client.get("/api/flows", headers=viewer)).json()
    outbound = {o["partner"]: o for o in flows["outbound"]}
    assert outbound["cabinet-dupont"]["dead"] == 0 and outbound["chu-montpellier"]["dead"] == 1
    facts = await alerts.gather(
        console.ctx.stores.alerts,
        console.ctx.directory,
        Settings(),
        watching_since=row["created_at"],
    )
    assert facts.dead == {"chu-montpellier": 1}

    # A replay by partner leaves the discarded one alone; by id brings it back.
    broad = await replay(
        console.ctx.stores.routing,
        console.ctx.directory,
        Selection(partner="cabinet-dupont"),
        actor="user:cli",
        topic_prefix="",
    )
    assert broad.deliveries == 0
    assert broad.skipped == [f"{expired}: discarded by an operator"]
    again = await post(
        client, "/api/dead-letters/retry", {"delivery_ids": [str(expired)], "reason": "after all"}
    )
    assert again["changed"] == 1
    row = await delivery(pool, expired)
    assert (row["status"], row["discarded_at"]) == ("pending", None)
    nothing = await post(
        client, "/api/dead-letters/discard", {"delivery_ids": [str(expired)], "reason": "x"}
    )
    assert nothing == {"changed": 0, "skipped": [f"{expired}: not a dead letter (any more)"]}


async def test_dead_letter_actions_need_a_reason_and_one_selection(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    token = await cli_token(client, "otto")
    headers = {"Authorization": f"Bearer {token}"}
    some = str(uuid.uuid4())
    for body in (
        {"delivery_ids": [some]},
        {"delivery_ids": [some], "reason": "   "},
        {"reason": "why"},
        {"delivery_ids": [some], "recipient": "cabinet-dupont", "reason": "why"},
        {"delivery_ids": [some] * 1001, "reason": "why"},
    ):
        for action in ("retry", "discard"):
            response = await client.post(f"/api/dead-letters/{action}", json=body, headers=headers)
            assert response.status_code == 422, (action, body)
    bad = await client.get("/api/dead-letters", params={"before": "nonsense"}, headers=headers)
    assert bad.status_code == 422


async def test_a_paused_partner_is_skipped_by_every_delivery_instance_until_resumed(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    waiting = await add_delivery(pool, "cabinet-dupont", status="pending", received_ago_s=5)
    other = await add_delivery(pool, "chu-montpellier", status="pending", received_ago_s=5)

    async def ready() -> set[uuid.UUID]:
        return {h.id for h in await ready_heads(pool, [0], [], [], 100)}

    assert await ready() == {waiting, other}
    paused = await post(
        client, "/api/partners/cabinet-dupont/pause", {"reason": "practice software upgrade"}
    )
    assert paused["changed"] is True
    assert paused["paused"]["paused_by"] == "user:otto"
    # The pause is in PostgreSQL: any instance's query leaves the partner's lanes alone.
    assert await ready() == {other}
    again = await post(client, "/api/partners/cabinet-dupont/pause", {"reason": "twice"})
    assert again["changed"] is False and again["paused"]["reason"] == "practice software upgrade"

    token = await cli_token(client, "vera")
    viewer = {"Authorization": f"Bearer {token}"}
    partners = (await client.get("/api/partners", headers=viewer)).json()["partners"]
    shown = {p["id"]: p for p in partners}
    assert shown["cabinet-dupont"]["paused"]["reason"] == "practice software upgrade"
    assert shown["chu-montpellier"]["paused"] is None
    flows = (await client.get("/api/flows", headers=viewer)).json()
    states = {o["partner"]: o["state"] for o in flows["outbound"]}
    assert states["cabinet-dupont"] == "paused"

    resumed = await post(client, "/api/partners/cabinet-dupont/resume", {"reason": "upgrade done"})
    assert resumed == {"recipient": "cabinet-dupont", "paused": None, "changed": True}
    assert await ready() == {waiting, other}
    idle = await post(client, "/api/partners/cabinet-dupont/resume", {})
    assert idle["changed"] is False

    changes = [e for e in await audit(pool) if e["kind"] in ("delivery_paused", "delivery_resumed")]
    assert [(e["kind"], e["actor"], e["partner"], e["detail"]) for e in changes] == [
        ("delivery_paused", "user:otto", "cabinet-dupont", {"reason": "practice software upgrade"}),
        (
            "delivery_resumed",
            "user:otto",
            "cabinet-dupont",
            {"paused_by": "user:otto", "reason": "upgrade done"},
        ),
    ]
    operator = {"Authorization": f"Bearer {await cli_token(client, 'otto')}"}
    unknown = await client.post("/api/partners/nobody/pause", json={}, headers=operator)
    assert unknown.status_code == 404
    sender_only = await client.post("/api/partners/labo-sud/pause", json={}, headers=operator)
    assert sender_only.status_code == 409
