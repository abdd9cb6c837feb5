"""HL7 v2 over MLLP into the real store: ACKs, durability, duplicates, charsets, limits."""

from __future__ import annotations

import asyncio
import base64

import asyncpg

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.mllp import MllpClient
from tests.conftest import REPO, wait_for
from tests.integration.mllp.conftest import Listener, StartListener, msa, parse_answer

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


async def test_latin1_names_are_stored_byte_identical_and_decoded(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    text = (
        "MSH|^~\\&|LIS|LABO-SUD|CB|REGION|20260101||ADT^A08^ADT_A01|L1-1|P|2.5|||||FRA|8859/1\r"
        "PID|1||P-1^^^LABO-SUD^PI||HÉLÈNE^Zoë^François||19700101|F\r"
    )
    data = text.encode("iso-8859-1")
    answer = await listener.send(data)
    assert msa(parse_answer(answer, "iso-8859-1")) == ("AA", "L1-1")
    row = await pool.fetchrow(
        "SELECT m.charset, p.data FROM messages m JOIN payloads p ON p.message_id = m.id"
    )
    assert row["data"] == data
    assert row["charset"] == "iso-8859-1"
    assert Message(row["data"].decode(row["charset"])).get("PID-5.1") == "HÉLÈNE"


async def test_partner_override_decodes_cp1252_labelled_8859_1(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    data = (
        "MSH|^~\\&|APP|LEGACY|CB|REGION|20260101||ORU^R01|CP-1|P|2.5|||||FRA|8859/1\r"
        "OBX|1|ST|X^Y||2\u20133 \u0153uvres\r"  # en dash and oe: cp1252, not 8859-1
    ).encode("cp1252")
    assert msa(parse_answer(await listener.send(data), "cp1252")) == ("AA", "CP-1")
    assert await pool.fetchval("SELECT charset FROM messages") == "cp1252"


async def test_undecodable_bytes_are_refused_with_err_at_msh18_and_kept(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    data = "MSH|^~\\&|LIS|LABO-SUD|CB|REGION|20260101||ADT^A08|U-1|P|2.5\rPID|1||1||É\r"
    answer = parse_answer(await listener.send(data.encode("iso-8859-1")), "latin-1")
    assert msa(answer) == ("AE", "U-1")
    assert str(answer.segment("ERR")[2]) == "MSH^1^18"
    row = await pool.fetchrow("SELECT status, reason, sender FROM messages")
    assert row["status"] == "rejected" and row["reason"].startswith("undecodable")
    assert row["sender"] == "labo-sud"


async def test_nul_and_control_characters_are_refused_named_answered_cleanly_and_kept(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    """PostgreSQL text cannot hold NUL: such a frame is refused, and still kept."""
    in_msh = with_control_id(ORU, "NUL\x00-1\x1d")
    answer_bytes = await listener.send(in_msh)
    assert b"\x00" not in answer_bytes and b"\x1d" not in answer_bytes
    answer = parse_answer(answer_bytes)
    assert msa(answer) == ("AE", "NUL\\X00\\-1\\X1D\\")  # echoed, escaped
    assert str(answer.segment("ERR")[3][0][0]) == "102"
    in_obx = ORU.replace(b"|5.4|", b"|5.\x004|")
    assert msa(parse_answer(await listener.send(in_obx))) == ("AE", "LS-0001")
    # An escaped NUL is legal ER7: accepted, and stored as written.
    escaped = with_control_id(ORU, "ESC\\X00\\-1")
    assert msa(parse_answer(await listener.send(escaped)))[0] == "AA"
    rows = await pool.fetch("SELECT status, reason, control_id FROM messages ORDER BY id")
    assert [(r["status"], r["control_id"]) for r in rows] == [
        ("rejected", "NUL\\X00\\-1\\X1D\\"),
        ("rejected", "LS-0001"),
        ("accepted", "ESC\\X00\\-1"),
    ]
    assert rows[1]["reason"] == "malformed: NUL character in segment OBX"
    assert await pool.fetchval("SELECT count(*) FROM payloads") == 3


async def test_multi_megabyte_frame_is_accepted(listener: Listener, pool: asyncpg.Pool) -> None:
    document = base64.b64encode(bytes(range(256)) * 12_000).decode()  # ~4 MB of base64
    data = ORU.replace(
        b"OBX|1|NM|2345-7^Glucose^LN||5.4|",
        f"OBX|1|ED|PDF^Report||^AP^PDF^Base64^{document}|".encode(),
    )
    data = with_control_id(data, "BIG-1")
    assert len(data) > 4_000_000
    async with MllpClient("127.0.0.1", listener.port, timeout_s=30) as client:
        answer = await client.send(data)
    assert answer is not None and Message(answer.decode()).get("MSA-1") == "AA"
    assert await pool.fetchval("SELECT octet_length(data) FROM payloads") == len(data)


async def test_oversize_frame_gets_ar_is_kept_capped_and_the_connection_goes_on(
    start_listener: StartListener, pool: asyncpg.Pool
) -> None:
    listener = await start_listener(max_frame_bytes=1024 * 1024)
    data = with_control_id(ORU, "HUGE-1") + b"OBX|2|TX|||" + b"x" * 3_000_000 + b"\r"
    async with MllpClient("127.0.0.1", listener.port, timeout_s=30) as client:
        answer = await client.send(data)
        assert answer is not None
        refused = Message(answer.decode())
        assert (refused.get("MSA-1"), refused.get("MSA-2")) == ("AR", "HUGE-1")
        assert refused.get("ERR-3.1") == "207"
        again = await client.send(with_control_id(ORU, "AFTER-1"))
    assert again is not None and Message(again.decode()).get("MSA-1") == "AA"
    row = await pool.fetchrow(
        "SELECT m.status, m.reason, m.size, octet_length(p.data) AS kept, p.truncated"
        " FROM messages m JOIN payloads p ON p.message_id = m.id WHERE m.status = 'rejected'"
    )
    assert row["reason"].startswith("oversize")
    assert row["kept"] == 1024 * 1024 and row["truncated"]
    assert row["size"] == len(data)


async def test_store_down_answers_ar_and_stores_nothing_then_resend_is_accepted(
    listener: Listener, pool: asyncpg.Pool, database_url: str, pg_admin_dsn: str
) -> None:
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        # PostgreSQL goes away for this database: connections cut, new ones refused.
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        answer = parse_answer(await listener.send(ORU))
        assert msa(answer) == ("AR", "LS-0001")
        assert str(answer.segment("ERR")[3][0][0]) == "207"
        assert "resend later" in str(answer.segment("ERR")[8])
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    await pool.expire_connections()
    for table in ("messages", "payloads", "ingress_keys", "outbox", "audit_pending"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table

    # The same listener recovers by itself; the resend is accepted, once.
    assert msa(parse_answer(await listener.send(ORU))) == ("AA", "LS-0001")
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    assert listener.ingress.stats.store_unavailable == 1


async def test_unknown_sender_and_unlisted_application_get_ar_with_err(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    unknown = parse_answer(await listener.send(ORU.replace(b"|LABO-SUD|", b"|NOBODY|")))
    assert msa(unknown) == ("AR", "LS-0001")
    assert str(unknown.segment("ERR")[2]) == "MSH^1^4"
    picky = ORU.replace(b"|LIS|LABO-SUD|", b"|OTHER|PICKY|")
    wrong_app = parse_answer(await listener.send(picky))
    assert msa(wrong_app) == ("AR", "LS-0001")
    assert str(wrong_app.segment("ERR")[2]) == "MSH^1^3"
    rows = await pool.fetch("SELECT sender, reason FROM messages ORDER BY received_at")
    assert [(r["sender"], r["reason"].split(":")[0]) for r in rows] == [
        (None, "unknown_sender"),
        ("picky-hospital", "unknown_application"),
    ]
    events = await pool.fetch("SELECT event FROM audit_pending")
    assert [e["event"]["kind"] for e in events] == ["rejected", "rejected"]


async def test_enhanced_mode_honours_msh15(listener: Listener) -> None:
    def enhanced(control_id: str, accept: str) -> bytes:
        return with_control_id(ORU, control_id).replace(
            b"|P|2.5|||||FRA|", f"|P|2.5|||{accept}|AL|FRA|".encode()
        )

    async with MllpClient("127.0.0.1", listener.port, timeout_s=10) as client:
        answer = await client.send(enhanced("E-AL", "AL"))
        assert answer is not None and Message(answer.decode()).get("MSA-1") == "CA"
        # NE and ER on success: no commit ACK; the next answer is the next message's.
        await client.send(enhanced("E-NE", "NE"), expect_answer=False)
        await client.send(enhanced("E-ER", "ER"), expect_answer=False)
        refused = await client.send(enhanced("E-ER-BAD", "ER").replace(b"|LABO-SUD|", b"|X|"))
        assert refused is not None
        assert (Message(refused.decode()).get("MSA-1"), Message(refused.decode()).get("MSA-2")) == (
            "CR",
            "E-ER-BAD",
        )


async def test_strict_partner_gets_ae_for_a_structure_error(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    strict = ORU.replace(b"|LIS|LABO-SUD|", b"|LIS|STRICT|")
    assert msa(parse_answer(await listener.send(strict))) == ("AA", "LS-0001")
    no_obr = b"\r".join(s for s in strict.split(b"\r") if not s.startswith(b"OBR"))
    answer = parse_answer(await listener.send(with_control_id(no_obr, "S-2")))
    assert msa(answer) == ("AE", "S-2")
    assert str(answer.segment("ERR")[2]).startswith("OBR")
    assert await pool.fetchval("SELECT reason FROM messages WHERE status = 'rejected'") == (
        "invalid: strict validation: required segment OBR missing"
    )


async def test_batch_keeps_its_id_and_answers_per_message(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    bad = ORU.replace(b"|LABO-SUD|", b"|NOBODY|").replace(b"LS-0001", b"B-2")
    batch = (
        b"BHS|^~\\&|LIS|LABO-SUD|CB|REGION|20260101||||BATCH-7\r"
        + with_control_id(ORU, "B-1")
        + bad
        + b"BTS|2\r"
    )
    answer = parse_answer(await listener.send(batch))
    assert str(answer.segment("BHS")[12]) == "BATCH-7"
    acks = [(str(s[1]), str(s[2])) for s in answer.segments("MSA")]
    assert acks == [("AA", "B-1"), ("AR", "B-2")]
    rows = await pool.fetch("SELECT control_id, status, batch_id FROM messages ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("B-1", "accepted", "BATCH-7"),
        ("B-2", "rejected", "BATCH-7"),
    ]

    short = batch.replace(b"BTS|2", b"BTS|3").replace(b"BATCH-7", b"BATCH-8")
    refused = parse_answer(await listener.send(short))
    assert msa(refused) == ("AE", "BATCH-8")
    assert str(refused.segment("ERR")[2]) == "BTS^1^1"


async def test_idle_connection_is_closed(start_listener: StartListener) -> None:
    listener = await start_listener(idle_timeout_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed by the server
    writer.close()


async def test_a_frame_cut_by_a_closed_connection_is_kept(
    listener: Listener, pool: asyncpg.Pool
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"\x0b" + ORU[:120])  # start block, part of a message, no end block
    await writer.drain()
    writer.close()
    row = await wait_for(lambda: pool.fetchrow("SELECT reason, size FROM messages"))
    assert row["reason"].startswith("incomplete")
    assert row["size"] == 120
    assert msa(parse_answer(await listener.send(ORU))) == ("AA", "LS-0001")
