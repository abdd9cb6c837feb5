"""HL7 v2 over MLLP into the real store: ACKs, durability, duplicates, charsets, limits."""

from __future__ import annotations

import asyncpg

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.mllp import MllpClient
from tests.conftest import REPO
from tests.integration.mllp.conftest import Listener, msa, parse_answer

ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")


def with_control_id(data: bytes, control_id: str) -> bytes:
    return data.replace(b"|LS-0001|", f"|{control_id}|".encode(), 1)


async def test_accepted_message_is_stored_before_its_aa(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    answer = parse_answer(await listener.send(ORU))
    assert msa(answer) == ("AA", "LS-0001")
    msh = answer.segment("MSH")
    # MSH-3/4 and MSH-5/6 swapped, MSH-9 ACK^R01^ACK, own MSH-10, MSH-11/12 copied.
    assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == (
        "CAREBROKER",
        "REGION",
        "LIS",
        "LABO-SUD",
    )
    assert str(msh[9]) == "ACK^R01^ACK"
    assert str(msh[10]) and str(msh[10]) != "LS-0001"
    assert (str(msh[11]), str(msh[12])) == ("P", "2.5")
    row = await pool.fetchrow(
        "SELECT m.status, m.sender, m.control_id, p.data, m.ack FROM messages m"
        " JOIN payloads p ON p.message_id = m.id WHERE m.control_id = 'LS-0001'"
    )
    assert row["status"] == "accepted" and row["sender"] == "labo-sud"
    assert row["data"] == ORU
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_resend_gets_the_identical_ack_and_is_not_stored_twice(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    first = await listener.send(ORU)
    again = await listener.send(ORU)
    assert first == again
    assert msa(parse_answer(again)) == ("AA", "LS-0001")
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    assert await pool.fetchval("SELECT duplicates FROM ingress_keys") == 1
    assert listener.ingress.stats.duplicates["labo-sud"] == 1


async def test_one_connection_is_one_ordered_stream(listener: Listener) -> None:
    async with MllpClient("127.0.0.1", listener.port, timeout_s=10) as client:
        for n in range(20):
            answer = await client.send(with_control_id(ORU, f"SEQ-{n}"))
            assert answer is not None
            assert Message(answer.decode()).get("MSA-2") == f"SEQ-{n}"
