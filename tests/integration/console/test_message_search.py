"""The operators' message search, a message's timeline, and who may see them.

Messages are stored as ingress stores them (``MessageStore.accept`` on the
envelope of a real HL7 v2 sample, so patient digests come from PID-3 under
the console's pseudonym key); deliveries are rows as the router leaves them.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC
from typing import Any

import asyncpg
import httpx
import pytest

from broker.envelope import Envelope
from broker.events import AuditEvent
from broker.ids import new_id
from broker.store import events
from broker.store.audit import AuditWriter
from broker.store.db import transaction
from broker.store.messages import Accepted
from tests.integration.console.conftest import Console, audit, cli_token, get_as
from tests.messages import ORU, REF, envelope, patient_ins, variant

LOCAL = "1.2.250.1.999.1"  # LABO-SUD's patient ids (PID-3.4.2 of the ORU sample)
INS = "1.2.250.1.213.1.4.8"  # INS-NIR


async def store(console: Console, raw: bytes, sender: str = "labo-sud") -> Envelope:
    """Accept a message as ingress does; return its envelope."""
    env = envelope(raw, sender, console.ctx.pseudonymizer)
    await console.ctx.stores.messages.accept([Accepted(env, b"ACK")])
    return env


async def route(pool: asyncpg.Pool, env: Envelope, **recipients: str) -> None:
    """Record deliveries as the router would: recipient=status (dashes as underscores)."""
    for recipient, status in recipients.items():
        await pool.execute(
            "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane,"
            " partition, status) VALUES ($1, $2, $3, $4, $4, 0, $5)",
            new_id(),
            env.message_id,
            env.received_at,
            recipient.replace("_", "-"),
            status,
        )
    await pool.execute(
        "UPDATE messages SET status = 'routed' WHERE id = $1 AND received_at = $2",
        env.message_id,
        env.received_at,
    )


async def search(client: httpx.AsyncClient, name: str = "vera", **params: Any) -> list[str]:
    """Return the control ids a search finds (one page)."""
    body = await get_as(client, f"/api/messages?{httpx.QueryParams(params)}", name)
    return [m["control_id"] for m in body["messages"]]


@pytest.fixture
async def traffic(console: Console, pool: asyncpg.Pool) -> dict[str, Envelope]:
    """Four messages: two results for two patients, a referral, one left unrouted."""
    a = await store(console, variant(ORU, "LS-A", "PAT-1"))
    b = await store(console, variant(ORU, "LS-B", "PAT-2"))
    ref = await store(console, REF, "cabinet-dupont")
    c = await store(console, variant(ORU, "LS-C", "PAT-1"))
    await route(pool, a, cabinet_dupont="delivered", maison_sante_nord="failed")
    await route(pool, b, cabinet_dupont="pending")
    await route(pool, ref, chu_montpellier="delivered")
    return {"a": a, "b": b, "ref": ref, "c": c}


async def test_every_message_route_needs_a_session(
    client: httpx.AsyncClient, users: dict[str, str], traffic: dict[str, Envelope]
) -> None:
    message_id = traffic["a"].message_id
    paths = ["/api/messages", f"/api/messages/{message_id}", f"/api/messages/{message_id}/audit"]
    for path in paths:
        assert (await client.get(path)).status_code == 401, path
        forged = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401, path
        await get_as(client, path, "vera")  # a viewer reads metadata
    token = await cli_token(client, "vera")
    # Not carebroker's ids (its are UUIDv7): one whose bits read as the year 10889.
    for unknown in (uuid.uuid4(), uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")):
        for path in (f"/api/messages/{unknown}", f"/api/messages/{unknown}/audit"):
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 404, path


async def test_search_by_each_filter_newest_first(
    client: httpx.AsyncClient, users: dict[str, str], traffic: dict[str, Envelope]
) -> None:
    a, b, ref = traffic["a"], traffic["b"], traffic["ref"]
    assert await search(client) == ["LS-C", "CD-REF-77", "LS-B", "LS-A"]
    assert await search(client, id=str(b.message_id)) == ["LS-B"]
    assert await search(client, control_id="LS-A") == ["LS-A"]
    assert await search(client, control_id="nope") == []
    assert await search(client, sender="cabinet-dupont") == ["CD-REF-77"]
    assert await search(client, message_type="ORU^R01") == ["LS-C", "LS-B", "LS-A"]
    assert await search(client, message_type="REF^I12") == ["CD-REF-77"]
    assert await search(client, status="accepted") == ["LS-C"]
    assert await search(client, recipient="cabinet-dupont") == ["LS-B", "LS-A"]
    assert await search(client, recipient="chu-montpellier") == ["CD-REF-77"]
    assert await search(client, delivery_status="failed") == ["LS-A"]
    # With a recipient, the delivery status is that recipient's.
    assert await search(client, recipient="cabinet-dupont", delivery_status="failed") == []
    assert await search(client, recipient="cabinet-dupont", delivery_status="pending") == ["LS-B"]
    # Filters add up; a pinpointing one (control id) with a recipient checks the deliveries.
    assert await search(client, control_id="LS-A", recipient="maison-sante-nord") == ["LS-A"]
    assert await search(client, control_id="LS-B", recipient="maison-sante-nord") == []
    assert await search(client, sender="labo-sud", recipient="cabinet-dupont") == ["LS-B", "LS-A"]
    # since is inclusive, until exclusive.
    assert await search(client, since=b.received_at.isoformat()) == ["LS-C", "CD-REF-77", "LS-B"]
    assert await search(client, until=b.received_at.isoformat()) == ["LS-A"]
    window = {"since": a.received_at.isoformat(), "until": ref.received_at.isoformat()}
    assert await search(client, recipient="cabinet-dupont", **window) == ["LS-B", "LS-A"]

    body = await get_as(client, "/api/messages?control_id=LS-A", "vera")
    [found] = body["messages"]
    assert found["deliveries"] == {"delivered": 1, "failed": 1}
    assert found["recipients"] == ["cabinet-dupont", "maison-sante-nord"]
    assert (found["sender"], found["message_type"], found["status"]) == (
        "labo-sud",
        "ORU^R01",
        "routed",
    )
    assert body["next"] is None


async def test_a_message_with_two_dead_letters_is_listed_once(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    both = await store(console, variant(ORU, "LS-DEAD-2"))
    one = await store(console, variant(ORU, "LS-DEAD-1"))
    await route(pool, both, cabinet_dupont="dead", maison_sante_nord="dead")
    await route(pool, one, cabinet_dupont="delivered", maison_sante_nord="dead")
    assert await search(client, delivery_status="dead") == ["LS-DEAD-1", "LS-DEAD-2"]
    assert await search(client, delivery_status="dead", limit="1") == ["LS-DEAD-1"]
    assert await search(client, delivery_status="dead", recipient="cabinet-dupont") == ["LS-DEAD-2"]
    assert await search(client, delivery_status="delivered") == ["LS-DEAD-1"]


async def test_a_time_without_an_offset_is_utc_whatever_the_servers_zone(
    client: httpx.AsyncClient,
    users: dict[str, str],
    traffic: dict[str, Envelope],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        naive = traffic["b"].received_at.astimezone(UTC).replace(tzinfo=None).isoformat()
        assert await search(client, since=naive) == ["LS-C", "CD-REF-77", "LS-B"]
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"delivery_status": "sent"},
        {"id": "not-a-uuid"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"limit": "1001"},
        {"cursor": "bm90IGEgY3Vyc29y"},
    ],
    ids=lambda p: next(iter(p)),
)
async def test_invalid_filters_are_refused_by_name(
    client: httpx.AsyncClient, users: dict[str, str], params: dict[str, str]
) -> None:
    token = await cli_token(client, "vera")
    response = await client.get(
        "/api/messages", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.text
    assert next(iter(params)) in response.text or "cursor" in response.text


async def test_pages_follow_each_other_without_gaps_or_repeats(
    console: Console, client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    stored = [await store(console, variant(ORU, f"P-{n}")) for n in range(7)]
    newest_first = [e.control_id for e in reversed(stored)]
    token = await cli_token(client, "vera")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3", "sender": "labo-sud", **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            "/api/messages", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        body = response.json()
        seen += [m["control_id"] for m in body["messages"]]
        pages += 1
        if pages == 1:
            # A message arriving meanwhile is newer: it shifts nothing on later pages.
            await store(console, variant(ORU, "P-late"))
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == newest_first
    assert pages == 3


async def test_a_patient_search_needs_an_operator_and_is_audited(
    client: httpx.AsyncClient,
    users: dict[str, str],
    traffic: dict[str, Envelope],
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    viewer = await cli_token(client, "vera")
    before = len(await audit(pool))
    refused = await client.get(
        "/api/messages",
        params={"patient_authority": LOCAL, "patient_id": "PAT-1"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "a patient search needs the operator role (you are viewer)"
    assert len(await audit(pool)) == before  # nothing was searched

    patient = {"patient_authority": LOCAL, "patient_id": "PAT-1"}
    assert await search(client, "otto", **patient) == ["LS-C", "LS-A"]
    assert await search(client, "ada", **patient, recipient="maison-sante-nord") == ["LS-A"]
    assert await search(client, "otto", patient_authority=LOCAL, patient_id="PAT-404") == []
    # The same patient by another identifier of PID-3 (the INS the variant gives PAT-1).
    ins = patient_ins("PAT-1")
    assert await search(client, "otto", patient_authority=INS, patient_id=ins) == ["LS-C", "LS-A"]
    # Values and authorities are trimmed, as the digests in messages were made.
    spaced = {"patient_authority": f" {LOCAL} ", "patient_id": "PAT-1 "}
    assert await search(client, "otto", **spaced) == ["LS-C", "LS-A"]

    searched = [e for e in await audit(pool) if e["kind"] == "patient_searched"]
    assert [(e["actor"], e["detail"]["authority"], e["detail"]["results"]) for e in searched] == [
        ("user:otto", LOCAL, 2),
        ("user:ada", LOCAL, 1),
        ("user:otto", LOCAL, 0),
        ("user:otto", INS, 2),
        ("user:otto", LOCAL, 2),
    ]
    assert searched[1]["detail"]["filters"] == ["recipient"]
    assert searched[0]["detail"]["patient"] == traffic["a"].patient_keys[0].digest
    # carebroker's logs (httpx here is the test's client, logging the URLs it asks for).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    for secret in ("PAT-1", "PAT-404", ins):
        assert secret not in str(searched)
        assert secret not in logged


async def test_a_patient_search_needs_both_parts_and_never_echoes_the_identifier(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    token = await cli_token(client, "otto")
    for params in ({"patient_id": "PAT-1"}, {"patient_authority": LOCAL, "patient_id": " "}):
        response = await client.get(
            "/api/messages", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 422
        assert "patient_authority and patient_id go together" in response.text
        assert "PAT-1" not in response.text
    assert not [e for e in await audit(pool) if e["kind"] == "patient_searched"]


async def test_a_patient_search_in_a_post_body_finds_the_same_and_is_audited(
    client: httpx.AsyncClient,
    users: dict[str, str],
    traffic: dict[str, Envelope],
    pool: asyncpg.Pool,
) -> None:
    """The CLI and the console send filters in a body, so no URL carries the identifier."""
    token = await cli_token(client, "otto")
    auth = {"Authorization": f"Bearer {token}"}
    posted = await client.post(
        "/api/messages/search",
        json={"patient_authority": LOCAL, "patient_id": "PAT-1", "limit": 1},
        headers=auth,
    )
    assert posted.status_code == 200, posted.text
    first = posted.json()
    assert [m["control_id"] for m in first["messages"]] == ["LS-C"]
    following = await client.post(
        "/api/messages/search",
        json={"patient_authority": LOCAL, "patient_id": "PAT-1", "cursor": first["next"]},
        headers=auth,
    )
    assert [m["control_id"] for m in following.json()["messages"]] == ["LS-A"]
    searched = [e for e in await audit(pool) if e["kind"] == "patient_searched"]
    assert [(e["actor"], e["detail"]["page"]) for e in searched] == [
        ("user:otto", "first"),
        ("user:otto", "next"),
    ]
    viewer = await cli_token(client, "vera")
    refused = await client.post(
        "/api/messages/search",
        json={"patient_authority": LOCAL, "patient_id": "PAT-1"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert refused.status_code == 403
    plain = await client.post(
        "/api/messages/search",
        json={"sender": "labo-sud", "message_type": "ORU^R01"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert [m["control_id"] for m in plain.json()["messages"]] == ["LS-C", "LS-B", "LS-A"]


async def test_an_invalid_search_names_the_field_and_never_quotes_its_value(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    token = await cli_token(client, "otto")
    for body in (
        {"patient_authority": LOCAL, "patient_id": 277076322082910},  # a number, not a string
        {"patient_authority": LOCAL, "patient_id": "277076322082910", "limit": "all"},
        {"patient_authority": LOCAL, "patient_id": "277076322082910", "pateint": "x"},
        ["277076322082910"],
    ):
        response = await client.post(
            "/api/messages/search", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 422, response.text
        assert "277076322082910" not in response.text
        assert response.json()["detail"][0]["loc"][0] == "body"
    assert not [e for e in await audit(pool) if e["kind"] == "patient_searched"]


async def test_timeline_lists_chained_then_pending_events_in_order(
    client: httpx.AsyncClient,
    users: dict[str, str],
    traffic: dict[str, Envelope],
    pool: asyncpg.Pool,
) -> None:
    a = traffic["a"]
    await _hop(pool, a, "routed", "cabinet-dupont", rule="ordering-provider")
    await AuditWriter(pool).drain_all()  # received and routed are chained now
    await _hop(pool, a, "delivered", "cabinet-dupont", detail={"ack_code": "AA"})

    body = await get_as(client, f"/api/messages/{a.message_id}/audit")
    assert body["message_id"] == str(a.message_id)
    timeline = [(e["kind"], e["recipient"], e["rule"], e["chained"]) for e in body["events"]]
    assert timeline == [
        ("received", None, None, True),
        ("routed", "cabinet-dupont", "ordering-provider", True),
        ("delivered", "cabinet-dupont", None, False),
    ]
    first, routed, delivered = body["events"]
    assert first["seq"] < routed["seq"] and first["day"] == routed["day"]
    assert delivered["seq"] is None and delivered["hash"] is None
    assert first["control_id"] == "LS-A" and first["actor"] == "ingress"
    assert len(first["hash"]) == 64 and first["day"] and first["recorded_at"]
    assert delivered["detail"] == {"ack_code": "AA"}

    # Another message's events stay out of it.
    other = await get_as(client, f"/api/messages/{traffic['b'].message_id}/audit")
    assert [e["kind"] for e in other["events"]] == ["received"]

    token = await cli_token(client, "vera")
    missing = await client.get(
        f"/api/messages/{uuid.uuid4()}/audit", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404


async def _hop(
    pool: asyncpg.Pool,
    env: Envelope,
    kind: str,
    recipient: str,
    rule: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    async with transaction(pool) as conn:
        await events.record(
            conn,
            [
                AuditEvent(
                    kind=kind,  # type: ignore[arg-type]
                    actor="router",
                    message_id=env.message_id,
                    control_id=env.control_id,
                    recipient=recipient,
                    rule=rule,
                    detail=detail or {},
                )
            ],
        )
