"""Clinical content for operators only: the original labelled, what a recipient got, audited."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from broker.envelope import Envelope
from broker.ids import new_id_at
from broker.store.messages import Accepted
from tests.integration.console.conftest import Console, audit, cli_token
from tests.integration.console.traffic import add_outcome
from tests.messages import ORU, envelope, variant

ACK_AE = (
    b"MSH|^~\\&|CAB|CAB-DUPONT|CAREBROKER|REGION|20261128120000||ACK^R01^ACK|ACK-1|P|2.5\r"
    b"MSA|AE|LS-0001\rERR||PID^1^5|101^Required field missing^HL70357|E\r"
)


async def store(console: Console, raw: bytes = ORU) -> Envelope:
    """Accept a message from labo-sud as MLLP ingress does."""
    made = envelope(raw, "labo-sud", console.ctx.pseudonymizer)
    await console.ctx.stores.messages.accept([Accepted(made, b"ACK")])
    return made


async def get(client: httpx.AsyncClient, path: str, name: str) -> httpx.Response:
    token = await cli_token(client, name)
    return await client.get(path, headers={"Authorization": f"Bearer {token}"})


def field(segments: list[dict[str, Any]], position: str) -> dict[str, Any]:
    return next(f for s in segments for f in s["fields"] if f["position"] == position)


async def test_an_operator_reads_the_original_with_named_fields_and_is_audited(
    console: Console, client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    message = await store(console)
    response = await get(client, f"/api/messages/{message.message_id}/content", "otto")
    assert response.status_code == 200, response.text
    original = response.json()["original"]
    assert (original["format"], original["charset"], original["truncated"]) == (
        "hl7v2",
        "utf-8",
        False,
    )
    segments = original["segments"]
    assert [s["name"] for s in segments] == ["MSH", "PID", "PD1", "ORC", "OBR", "OBX"]
    assert segments[1]["description"] == "Patient Identification"
    name = field(segments, "PID-5")
    assert (name["name"], name["datatype"], name["value"]) == (
        "Patient Name",
        "XPN",
        "MARTIN^JEANNE^^^^^L",
    )
    assert [(c["position"], c["name"], c["value"]) for c in name["components"]] == [
        ("PID-5.1", "Family Name", "MARTIN"),
        ("PID-5.2", "Given Name", "JEANNE"),
        ("PID-5.7", "Name Type Code", "L"),
    ]
    assert field(segments, "PID-3[2]")["components"][0]["value"] == "277076322082910"
    assert field(segments, "OBR-16")["name"] == "Ordering Provider"
    assert field(segments, "OBX-5") | {"components": []} == {
        "position": "OBX-5",
        "name": "Observation Value",
        "datatype": "varies",
        "value": "5.4",
        "components": [],
    }
    assert field(segments, "MSH-2")["value"] == "^~\\&"
    assert original["text"].startswith("MSH|^~\\&|LIS|LABO-SUD")

    viewed = [
        e for e in await audit(console.ctx.stores.database.general) if e["kind"] == "content_viewed"
    ]
    assert len(viewed) == 1
    assert viewed[0]["actor"] == "user:otto"
    assert viewed[0]["message_id"] == str(message.message_id)
    assert viewed[0]["detail"] == {"part": "original", "format": "hl7v2"}
    assert "MARTIN" not in json.dumps(viewed)


async def test_a_viewer_is_refused_content_and_nothing_is_shown_or_recorded(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    message = await store(console)
    delivery = await add_outcome(
        pool,
        message.message_id,
        message.received_at,
        "cabinet-dupont",
        status="delivered",
        payload=message.payload,
        ack_code="AA",
    )
    for path in (
        f"/api/messages/{message.message_id}/content",
        f"/api/messages/{message.message_id}/deliveries/{delivery}/content",
    ):
        refused = await get(client, path, "vera")
        assert refused.status_code == 403
        assert "operator" in refused.json()["detail"]
        assert "MARTIN" not in refused.text
        assert (await client.get(path)).status_code == 401
    assert not [e for e in await audit(pool) if e["kind"] == "content_viewed"]


async def test_what_a_recipient_was_sent_and_its_answer(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    message = await store(console, variant(ORU, "LS-0001"))
    delivery = await add_outcome(
        pool,
        message.message_id,
        message.received_at,
        "cabinet-dupont",
        status="failed",
        payload=message.payload,
        response=ACK_AE,
        ack_code="AE",
        last_error="AE 101 at PID^1^5",
        control_id="LS-0001",
    )
    path = f"/api/messages/{message.message_id}/deliveries/{delivery}/content"
    body = (await get(client, path, "otto")).json()
    assert (body["recipient"], body["status"], body["ack_code"]) == (
        "cabinet-dupont",
        "failed",
        "AE",
    )
    assert field(body["sent"]["segments"], "PID-5")["components"][0]["value"] == "MARTIN"
    answer = body["answer"]["segments"]
    assert field(answer, "MSA-1") | {"components": []} == {
        "position": "MSA-1",
        "name": "Acknowledgment Code",
        "datatype": "ID",
        "value": "AE",
        "components": [],
    }
    err = field(answer, "ERR-3")
    assert err["name"] == "HL7 Error Code"
    assert err["components"][1] == {
        "position": "ERR-3.2",
        "name": "Text",
        "value": "Required field missing",
    }
    viewed = [e for e in await audit(pool) if e["kind"] == "content_viewed"]
    assert [(e["actor"], e["recipient"], e["detail"]) for e in viewed] == [
        ("user:otto", "cabinet-dupont", {"part": "delivery", "delivery_id": str(delivery)})
    ]
    other = await get(
        client,
        f"/api/messages/{message.message_id}/deliveries/{message.message_id}/content",
        "otto",
    )
    assert other.status_code == 404


async def test_fhir_content_is_a_resource_tree_and_gone_content_says_so(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [{"resource": {"resourceType": "MessageHeader", "id": "h1"}}],
    }
    message_id, received_at = new_id_at()
    await pool.execute(
        "INSERT INTO messages (id, received_at, channel, format, sender, control_id,"
        " message_type, status, size) VALUES ($1, $2, 'fhir', 'fhir', 'maison-sante-nord',"
        " 'B-1', 'REF^I12', 'routed', 10)",
        message_id,
        received_at,
    )
    await pool.execute(
        "INSERT INTO payloads (message_id, received_at, data) VALUES ($1, $2, $3)",
        message_id,
        received_at,
        json.dumps(bundle).encode(),
    )
    original = (await get(client, f"/api/messages/{message_id}/content", "otto")).json()["original"]
    assert original["format"] == "fhir" and original["segments"] is None
    assert original["resource"] == bundle

    # Past payload retention the metadata stays; the content is gone, and the page says so.
    await pool.execute("DELETE FROM payloads WHERE message_id = $1", message_id)
    gone = await get(client, f"/api/messages/{message_id}/content", "otto")
    assert gone.status_code == 404 and "retention" in gone.json()["detail"]
    unknown = await get(client, f"/api/messages/{new_id_at()[0]}/content", "otto")
    assert unknown.status_code == 404
