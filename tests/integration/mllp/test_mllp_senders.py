"""Who may send as a partner over MLLP: its networks, its certificate; the peer on every message.

MSH-4 is a claim. A partner declares how it connects (``networks``,
``certificate_cn``); a message naming it from elsewhere is answered AR with
an ERR saying so, kept and audited. Every message records the address (and
certificate subject) it came from, which operators see on the message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.hl7v2.framing import END, START, frame
from adapters.hl7v2.role import sender_check
from adapters.hl7v2.settings import MllpSettings
from broker.console.settings import ConsoleSettings
from broker.directory import parse_directory
from broker.errors import ConfigError
from tests.conftest import REPO
from tests.integration.console.conftest import BASE, build, get_as, users  # noqa: F401
from tests.integration.mllp.conftest import StartListener, msa, parse_answer

ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")


def partners(**declared: Any) -> dict[str, Any]:
    """A directory with one sender, LABO-SUD, declaring what is given."""
    return {"partners": [{"id": "labo-sud", "name": "Labo", "kind": "lab", **declared}]}


def declared(**fields: Any) -> dict[str, Any]:
    return partners(facilities=["LABO-SUD"], **fields)


async def send(port: int, data: bytes) -> tuple[bytes, str]:
    """Send one frame over plain TCP; return the answer and the address we sent from."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        host, local_port = writer.get_extra_info("sockname")[:2]
        writer.write(frame(data))
        async with asyncio.timeout(20):
            answer = await reader.readuntil(END)
        return answer.removeprefix(START).removesuffix(END), f"{host}:{local_port}"
    finally:
        writer.close()


def err(answer: bytes) -> tuple[str, str, str]:
    """Return (ERR-2, ERR-3.1, ERR-8) of an answer, read with python-hl7."""
    segment = parse_answer(answer).segment("ERR")
    return str(segment[2]), str(segment[3][0][0]), str(segment[8])


async def test_msh4_naming_a_partner_from_outside_its_networks_is_refused_kept_and_audited(
    start_listener: StartListener, pool: asyncpg.Pool
) -> None:
    listener = await start_listener(
        partners=declared(networks=["192.0.2.0/24"]), senders="declared"
    )
    answer, sent_from = await send(listener.port, ORU)

    assert msa(parse_answer(answer)) == ("AR", "LS-0001")
    assert err(answer) == (
        "MSH^1^4",
        "103",
        "MSH-4 names labo-sud, which does not send from 127.0.0.1",
    )
    row = await pool.fetchrow("SELECT status, sender, reason, peer FROM messages")
    assert row["status"] == "rejected"
    assert row["sender"] is None  # who sent it is not known; MSH-4 only claims it
    assert row["reason"].startswith("spoofed_sender: MSH-4 names labo-sud")
    assert row["peer"] == sent_from
    event = await pool.fetchval("SELECT event FROM audit_pending WHERE event->>'kind' = 'rejected'")
    assert event["detail"]["kind"] == "spoofed_sender"
    assert event["detail"]["peer"] == sent_from
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_partner_from_its_networks_is_accepted_and_operators_see_where_from(
    start_listener: StartListener,
    pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Any,
    users: dict[str, str],  # noqa: F811
) -> None:
    listener = await start_listener(
        partners=declared(networks=["10.0.0.0/8", "127.0.0.0/8"]), senders="declared"
    )
    answer, sent_from = await send(listener.port, ORU)

    assert msa(parse_answer(answer)) == ("AA", "LS-0001")
    message_id, peer = await pool.fetchrow("SELECT id, peer FROM messages")
    assert peer == sent_from
    event = await pool.fetchval("SELECT event FROM audit_pending WHERE event->>'kind' = 'received'")
    assert event["detail"]["peer"] == sent_from
    console = build(database_url, pool, tmp_path, ConsoleSettings())
    transport = httpx.ASGITransport(app=console.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        shown = await get_as(client, f"/api/messages/{message_id}")
    assert shown["peer"] == sent_from
    assert shown["peer_certificate"] is None


async def test_a_partner_known_by_its_certificate_only_is_refused_over_plain_tcp(
    start_listener: StartListener, pool: asyncpg.Pool
) -> None:
    listener = await start_listener(
        partners=declared(certificate_cn="lis.labo-sud.example"), senders="declared"
    )
    answer, _ = await send(listener.port, ORU)
    assert msa(parse_answer(answer)) == ("AR", "LS-0001")
    assert err(answer)[2] == "MSH-4 names labo-sud, which sends only with its client certificate"
    assert await pool.fetchval("SELECT status FROM messages") == "rejected"


async def test_beyond_loopback_a_partner_declaring_nothing_is_refused(
    start_listener: StartListener, pool: asyncpg.Pool
) -> None:
    """What a listener beyond loopback does when a reload brings an undeclared partner."""
    listener = await start_listener(partners=declared(), senders="required")
    answer, _ = await send(listener.port, ORU)
    assert msa(parse_answer(answer)) == ("AR", "LS-0001")
    assert "declares no certificate_cn or networks" in err(answer)[2]
    assert (await pool.fetchval("SELECT reason FROM messages")).startswith("unverified_sender:")


def test_listening_beyond_loopback_needs_every_sender_declared_or_the_risk_accepted() -> None:
    directory = parse_directory(
        {
            "partners": [
                {"id": "chu", "name": "CHU", "kind": "hospital", "facilities": ["CHU"]},
                {"id": "lab", "name": "Lab", "kind": "lab", "facilities": ["L"], "networks": []},
                {"id": "gp", "name": "GP", "kind": "gp", "facilities": ["G"], "networks": ["::1"]},
                {"id": "fhir-only", "name": "No MSH-4", "kind": "gp"},
            ]
        },
        "partners.yaml",
    )
    everywhere = MllpSettings(host="0.0.0.0")
    with pytest.raises(ConfigError) as refused:
        sender_check(everywhere, directory)
    assert "partner(s) chu, lab in partners.yaml declare neither" in str(refused.value)
    assert "CAREBROKER_MLLP__ALLOW_UNVERIFIED_SENDERS" in str(refused.value)
    allowed = MllpSettings(host="0.0.0.0", allow_unverified_senders=True)
    assert sender_check(allowed, directory) == "declared"
    assert sender_check(MllpSettings(host="127.0.0.1"), directory) == "declared"
    assert sender_check(MllpSettings(host="::1"), directory) == "declared"
    assert sender_check(MllpSettings(host="localhost"), directory) == "declared"
    assert sender_check(MllpSettings(host="mllp.example"), parse_directory({})) == "required"
