"""Every role as a user runs them, end to end: MLLP in, real partners out, the audit timeline.

``carebroker run`` with every role but the console (the installed command, a
subprocess) against this test's PostgreSQL database and the session's Kafka,
with the shared partner directory pointed at real partner systems in this
test: two MLLP receivers (chu-montpellier, cabinet-dupont) and a FHIR
``$process-message`` server (maison-sante-nord). Messages are sent as the
partners' systems send them, with python-hl7's MLLP client.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7.mllp import open_hl7_connection

from adapters.hl7v2.er7 import Message
from broker.store import audit, db
from tests.conftest import wait_for
from tests.e2e.conftest import Running, run_env, start_carebroker
from tests.e2e.test_delivery_kill import healthy
from tests.integration.routing.conftest import partners_yaml
from tests.messages import ORU, REF
from tests.sinks import FhirSink, MllpSink, partner_sinks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROLES = ("mllp", "fhir", "relay", "router", "delivery", "audit")


async def send(port: int, data: bytes) -> hl7.Message:
    """Send one message with python-hl7's MLLP client; return the answer it got."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    try:
        writer.writeblock(data.replace(b"\n", b"\r"))
        await writer.drain()
        async with asyncio.timeout(20):
            return hl7.parse(bytes(await reader.readblock()).decode())
    finally:
        writer.close()


async def message_id(pool: asyncpg.Pool, control_id: str) -> uuid.UUID:
    found: uuid.UUID = await pool.fetchval(
        "SELECT id FROM messages WHERE control_id = $1", control_id
    )
    return found


async def timeline(
    pool: asyncpg.Pool, message: uuid.UUID, until: tuple[str, str | None], count: int
) -> list[tuple[str, str | None, str | None]]:
    """Wait until the message's chained timeline holds ``count`` events, ``until`` among them."""

    async def chained() -> list[audit.Row] | None:
        rows = await audit.timeline(pool, message)
        kinds = [(r.kind, r.recipient) for r in rows]
        return rows if until in kinds and len(rows) >= count else None

    rows = await wait_for(chained, timeout=60, interval=0.3)
    return [(r.kind, r.recipient, r.rule) for r in rows]


def before(events: list[tuple[str, str | None, str | None]], *pairs: tuple[str, str]) -> bool:
    """Tell whether the (kind, recipient) pairs appear in this order."""
    positions = [next(i for i, e in enumerate(events) if e[:2] == pair) for pair in pairs]
    return positions == sorted(positions)


@dataclass
class Run:
    """carebroker running every role, its database, and the partners' systems."""

    process: Running
    pool: asyncpg.Pool
    chu: MllpSink
    dupont: MllpSink
    fhir: FhirSink


@pytest.fixture
async def run(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> AsyncIterator[Run]:
    async with partner_sinks() as (chu, dupont, fhir):
        partners = tmp_path / "partners.yaml"
        partners.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
        args = [a for role in ROLES for a in ("--role", role)]
        running = start_carebroker(
            tmp_path,
            *args,
            "--config",
            str(partners),
            env=run_env(database_url, kafka_bootstrap, topic_prefix),
            command="run",
        )
        carebroker.append(running)
        pool = await db.connect(database_url, 2)
        try:
            await healthy(running, timeout=90)
            yield Run(running, pool, chu, dupont, fhir)
        finally:
            await pool.close()


async def test_mllp_in_real_partners_out_and_every_hop_in_the_audit_timeline(run: Run) -> None:
    pool, chu, dupont, fhir = run.pool, run.chu, run.dupont, run.fhir
    port = run.process.mllp_port

    # A lab result from labo-sud: to the ordering GP (v2) and the copies-to GP (FHIR).
    ack = await send(port, ORU)
    assert (str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])) == ("AA", "LS-0001")
    oru = await message_id(pool, "LS-0001")
    events = await timeline(pool, oru, ("delivered", "maison-sante-nord"), 6)
    assert events[0] == ("received", None, None)
    assert ("routed", "cabinet-dupont", "ordering-provider,patient-gp") in events
    assert ("routed", "maison-sante-nord", "copies-to") in events
    assert ("translated", "maison-sante-nord", None) in events
    assert sorted(events[1:]) == sorted(
        [
            ("routed", "cabinet-dupont", "ordering-provider,patient-gp"),
            ("routed", "maison-sante-nord", "copies-to"),
            ("translated", "maison-sante-nord", None),
            ("delivered", "cabinet-dupont", None),
            ("delivered", "maison-sante-nord", None),
        ]
    ), events
    assert before(events, ("routed", "cabinet-dupont"), ("delivered", "cabinet-dupont"))
    assert before(
        events,
        ("routed", "maison-sante-nord"),
        ("translated", "maison-sante-nord"),
        ("delivered", "maison-sante-nord"),
    )
    # What each partner got: v2 re-addressed to the GP, a real FHIR message Bundle.
    [got] = dupont.processed
    assert (got.control_id, got.receiving_facility) == ("LS-0001", "CAB-DUPONT")
    [bundle] = fhir.bundles
    validated = Bundle.model_validate(bundle)
    assert validated.type == "message"
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"]["code"] == "R01" and header["focus"]
    assert header["destination"][0]["name"] == "maison-sante-nord"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "DiagnosticReport", "Observation"} <= kinds
    assert chu.received == []  # and nobody else
    recipients = await pool.fetch(
        "SELECT DISTINCT recipient FROM deliveries WHERE message_id = $1", oru
    )
    assert {r["recipient"] for r in recipients} == {"cabinet-dupont", "maison-sante-nord"}

    # A referral from cabinet-dupont, which asks for application ACKs (enhanced mode).
    referral = REF.replace(b"|2.5|||||FRA|", b"|2.5|||AL|AL|FRA|")
    commit = await send(port, referral)
    assert (str(commit.segment("MSA")[1]), str(commit.segment("MSA")[2])) == (
        "CA",
        "CD-REF-77",
    )
    ref = await message_id(pool, "CD-REF-77")
    events = await timeline(pool, ref, ("app_ack_sent", "cabinet-dupont"), 4)
    assert events == [
        ("received", None, None),
        ("routed", "chu-montpellier", "referred-to"),
        ("delivered", "chu-montpellier", None),
        ("app_ack_sent", "cabinet-dupont", None),
    ]
    assert chu.processed_ids() == ["CD-REF-77"]
    [application_ack] = [Message(r.text) for r in dupont.received if r.control_id != "LS-0001"]
    assert application_ack.get("MSA-1") == "AA" and application_ack.get("MSA-2") == "CD-REF-77"

    # The specialist's answer goes back to the referrer.
    answer = (
        REF.replace(b"|LGC|CAB-DUPONT|", b"|DPI|CHU-MTP|")
        .replace(b"REF^I12^REF_I12", b"RRI^I12^RRI_I12")
        .replace(b"|CD-REF-77|", b"|CHU-RRI-1|")
    )
    ack = await send(port, answer)
    assert str(ack.segment("MSA")[1]) == "AA"
    rri = await message_id(pool, "CHU-RRI-1")
    events = await timeline(pool, rri, ("delivered", "cabinet-dupont"), 3)
    assert events == [
        ("received", None, None),
        ("routed", "cabinet-dupont", "referrer"),
        ("delivered", "cabinet-dupont", None),
    ]
    assert dupont.processed_ids()[-1] == "CHU-RRI-1"
    assert chu.processed_ids() == ["CD-REF-77"]  # not echoed to the sender

    verified = await audit.verify(pool)
    assert verified.intact, verified
    run.process.stop(signal.SIGTERM)
    assert run.process.process.returncode == 0, run.process.output()
    assert "Traceback" not in run.process.output()
