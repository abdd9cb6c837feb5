"""FHIR in routes like HL7 v2 in; each recipient gets its own format, translated when needed.

The real FHIR gateway takes the input (partner bearer tokens), the real
relay, router and delivery roles take over, and the partners are real MLLP
and FHIR servers: a DiagnosticReport message from ``labo-sud`` routes like
its ORU^R01 (ordering provider, copies-to, the patient's GP), a ServiceRequest
from ``cabinet-dupont`` like a REF^I12 (the performer).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message
from broker.settings import Settings
from tests.integration.routing.conftest import (
    Pipeline,
    partners_yaml,
    start_pipeline,
    stop_pipeline,
)
from tests.integration.test_fhir_gateway import GP_TOKEN, LAB_TOKEN, lab_message
from tests.sinks import FhirSink, MllpSink

ROLES = ("relay", "router", "delivery", "fhir")


def with_tokens(text: str) -> str:
    """Give labo-sud and cabinet-dupont their FHIR bearer tokens (kept hashed)."""
    for facility, token in (("LABO-SUD", LAB_TOKEN), ("CAB-DUPONT", GP_TOKEN)):
        digest = hashlib.sha256(token.encode()).hexdigest()
        text = text.replace(
            f"    facilities: [{facility}]\n",
            f"    facilities: [{facility}]\n    token_sha256: [{digest}]\n",
        )
    return text


@pytest.fixture
async def fhir_pipeline(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    chu, dupont, fhir = sinks
    partners = tmp_path / "partners.yaml"
    partners.write_text(with_tokens(partners_yaml(chu.port, dupont.port, fhir.url)))
    running = await start_pipeline(settings, pool, sinks, partners, roles=ROLES)
    try:
        yield running
    finally:
        await stop_pipeline(running)


async def post(pipeline: Pipeline, path: str, token: str, body: dict[str, Any]) -> uuid.UUID:
    """POST to the gateway as a partner; return the id of the message it accepted."""
    async with pipeline.api() as api:
        response = await api.post(
            f"/fhir/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        )
    assert response.status_code in (200, 201), response.text
    message_id: uuid.UUID = await pipeline.pool.fetchval(
        "SELECT id FROM messages WHERE status <> 'rejected' ORDER BY received_at DESC LIMIT 1"
    )
    return message_id


async def test_a_fhir_result_routes_like_an_oru_and_v2_recipients_get_v2(
    fhir_pipeline: Pipeline,
) -> None:
    pipeline = fhir_pipeline
    message = lab_message("FHIR-LS-1")
    message_id = await post(pipeline, "$process-message", LAB_TOKEN, message)
    await pipeline.wait_status([message_id], {"delivered"})

    deliveries = await pipeline.deliveries(message_id)
    assert set(deliveries) == {"cabinet-dupont", "maison-sante-nord"}
    assert deliveries["cabinet-dupont"]["rules"] == ["ordering-provider", "patient-gp"]
    assert deliveries["maison-sante-nord"]["rules"] == ["copies-to"]
    assert pipeline.chu.received == []

    # cabinet-dupont reads HL7 v2.5: the FHIR content comes to it as an ORU^R01 for it.
    [received] = pipeline.dupont.processed
    oru = Message(received.text)
    assert (oru.message_type, oru.version) == ("ORU^R01", "2.5")
    assert (oru.receiving_facility, oru.sending_facility) == ("CAB-DUPONT", "LABO-SUD")
    assert oru.get("OBX-3.1") == "2345-7" and oru.get("OBX-5") == "5.4"
    assert oru.get("ORC-12.1") == "10001234567"

    # maison-sante-nord reads FHIR: the sender's resources, re-addressed to it.
    [bundle] = pipeline.fhir.bundles
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["destination"][0]["name"] == "maison-sante-nord"
    assert bundle["entry"][1:] == message["entry"][1:]

    events = await pipeline.audit(message_id)
    [translated] = [e for e in events if e["kind"] == "translated"]
    assert translated["recipient"] == "cabinet-dupont"
    assert translated["detail"]["from"] == "fhir" and translated["detail"]["to"] == "hl7v2"
    assert translated["detail"]["produced"]["message_type"] == "ORU^R01^ORU_R01"
    assert {(e["kind"], e.get("recipient")) for e in events} >= {
        ("received", None),
        ("routed", "cabinet-dupont"),
        ("routed", "maison-sante-nord"),
        ("delivered", "cabinet-dupont"),
        ("delivered", "maison-sante-nord"),
    }


async def test_a_fhir_service_request_is_a_referral_to_its_performer(
    fhir_pipeline: Pipeline,
) -> None:
    pipeline = fhir_pipeline
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"system": "urn:oid:1.2.250.1.999.2", "value": "REF-88"}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]},
        "subject": {"identifier": {"system": "urn:oid:1.2.250.1.999.2", "value": "A-998"}},
        "requester": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1",
                                     "value": "10001234567"}},
        "performer": [{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1",
                                      "value": "10009999999"}}],
    }  # fmt: skip
    message_id = await post(pipeline, "ServiceRequest", GP_TOKEN, request)
    await pipeline.wait_status([message_id], {"delivered"})
    deliveries = await pipeline.deliveries(message_id)
    assert set(deliveries) == {"chu-montpellier"}
    assert deliveries["chu-montpellier"]["rules"] == ["referred-to"]
    [received] = pipeline.chu.processed
    referral = Message(received.text)
    assert referral.message_type == "REF^I12"
    assert referral.receiving_facility == "CHU-MTP"
    prd = [(s.get(1, comp=1), s.get(7, comp=1)) for s in referral.all("PRD")]
    assert ("RT", "10009999999") in prd and ("RP", "10001234567") in prd
    assert pipeline.dupont.received == [] and pipeline.fhir.bundles == []
