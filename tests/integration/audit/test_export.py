"""`carebroker audit export`: FHIR R4 AuditEvent (validated with fhir.resources) and ATNA XML."""

from __future__ import annotations

import base64
import json
from typing import get_args
from xml.etree import ElementTree as ET

import asyncpg
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from broker.audit_export import to_atna, to_fhir
from broker.events import AuditEvent, EventKind
from broker.store import audit
from broker.store.audit import AuditWriter
from broker.store.db import transaction
from broker.store.events import record
from tests.integration.audit.conftest import accept, cli, hops, reject


async def _every_kind(pool: asyncpg.Pool) -> list[audit.Row]:
    """Chain one event of every kind carebroker records, plus real store events."""
    [message_id] = await accept(pool, "C1")
    await hops(pool, message_id, "cabinet-dupont")
    await reject(pool, reason="MSH-12 version 9.9 not supported")
    async with transaction(pool) as conn:
        await record(
            conn,
            [
                AuditEvent(
                    kind=kind,
                    actor="user:operator1"
                    if kind in ("content_viewed", "patient_searched")
                    else "router",
                    outcome="serious_failure" if kind == "failed" else "success",
                    message_id=message_id,
                    control_id="C1",
                    partner="labo-sud",
                    recipient="cabinet-dupont",
                    detail={"reason": "timeout"} if kind == "failed" else {},
                )
                for kind in get_args(EventKind)
            ],
        )
    await AuditWriter(pool).drain_all()
    return await audit.read(pool)


async def test_every_event_exports_as_a_valid_fhir_r4_auditevent(pool: asyncpg.Pool) -> None:
    rows = await _every_kind(pool)
    assert len(rows) == 5 + len(get_args(EventKind))
    for row in rows:
        resource = to_fhir(row)
        FhirAuditEvent.model_validate(resource)  # raises on an invalid resource
        # fhir.resources checks structure and cardinality, not required bindings:
        assert resource["action"] in {"C", "R", "U", "D", "E"}  # audit-event-action
        assert resource["outcome"] in {"0", "4", "8", "12"}  # audit-event-outcome
        assert resource["subtype"][0]["code"] == row.kind
        assert resource["agent"][0]["who"]["identifier"]["value"] == row.actor
    by_kind: dict[str, dict] = {}  # the first event of each kind: the store's own come first
    for row in rows:
        by_kind.setdefault(row.kind, to_fhir(row))
    received = by_kind["received"]
    assert received["type"]["code"] == "110107" and received["action"] == "C"  # DICOM Import
    delivered = by_kind["delivered"]
    assert delivered["type"]["code"] == "110106"  # DICOM Export
    assert delivered["agent"][1]["who"]["identifier"]["value"] == "cabinet-dupont"
    read = by_kind["content_viewed"]
    assert (read["type"]["code"], read["action"]) == ("rest", "R")  # BALP Read
    assert read["subtype"][1]["code"] == "read" and read["agent"][0]["requestor"] is True
    assert read["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read"
    ]
    assert by_kind["patient_searched"]["subtype"][1]["code"] == "search"
    assert by_kind["config_changed"]["type"]["code"] == "110113"
    rejected = by_kind["rejected"]
    assert rejected["outcome"] == "4"
    assert rejected["outcomeDesc"] == "MSH-12 version 9.9 not supported"
    assert by_kind["failed"]["outcome"] == "8"


async def test_every_event_exports_as_a_dicom_audit_message(pool: asyncpg.Pool) -> None:
    rows = await _every_kind(pool)
    for row in rows:
        message = ET.fromstring(to_atna(row))
        assert message.tag == "AuditMessage"
        event = message.find("EventIdentification")
        assert event is not None
        assert event.get("EventActionCode") in {"C", "R", "U", "D", "E"}
        assert event.get("EventOutcomeIndicator") in {"0", "4", "8", "12"}
        event_id = event.find("EventID")
        assert event_id is not None and event_id.get("codeSystemName") in {
            "DCM",
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
        }
        assert message.find("ActiveParticipant").get("UserID") == row.actor  # type: ignore[union-attr]
        assert message.find("AuditSourceIdentification") is not None
        participant = message.find("ParticipantObjectIdentification")
        assert participant is not None
        assert participant.get("ParticipantObjectID") == str(row.message_id or row.event_id)
        details = {
            d.get("type"): base64.b64decode(d.get("value", "")).decode()
            for d in participant.findall("ParticipantObjectDetail")
        }
        assert details["chain"] == f"{row.day.isoformat()}#{row.seq}"
        assert details["hash"] == row.hash.hex()


async def test_the_export_command_writes_one_resource_per_line(
    pool: asyncpg.Pool, database_url: str
) -> None:
    rows = await _every_kind(pool)
    done = cli("audit", "export", "--format", "fhir", database_url=database_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(rows)
    exported = [FhirAuditEvent.model_validate(json.loads(line)) for line in lines]
    assert [e.id for e in exported] == [str(r.event_id) for r in rows]
    atna = cli("audit", "export", "--format", "atna", database_url=database_url)
    assert atna.returncode == 0, atna.stderr
    assert [ET.fromstring(line).tag for line in atna.stdout.splitlines()] == ["AuditMessage"] * len(
        rows
    )
    later = cli(
        "audit", "export", "--format", "fhir", "--since", "2999-01-01", database_url=database_url
    )
    assert later.returncode == 0 and later.stdout == ""
