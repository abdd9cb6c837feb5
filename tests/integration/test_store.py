"""The message store on a real PostgreSQL: durable accept, de-duplication, rejects, migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from broker.envelope import Envelope
from broker.errors import StoreRefusedError
from broker.ids import new_id_at
from broker.store import db
from broker.store.messages import Accepted, MessageStore, Rejected
from broker.store.migrate import available, migrate


def envelope(control_id: str, sender: str = "labo-sud", payload: bytes = b"MSH|...") -> Envelope:
    message_id, at = new_id_at()
    return Envelope(
        message_id=message_id,
        received_at=at,
        channel="mllp",
        format="hl7v2",
        sender=sender,
        sending_application="LIS",
        control_id=control_id,
        message_type="ORU^R01",
        version="2.5",
        ordering_key="k" + control_id,
        payload=payload,
    )


async def test_accept_stores_metadata_bytes_outbox_and_audit(pool: asyncpg.Pool) -> None:
    store = MessageStore(pool, topic_prefix="t.")
    env = envelope("C1", payload=b"MSH|^~\\&|\xe9")
    [result] = await store.accept([Accepted(env, b"ACK-1")])
    assert (result.message_id, result.duplicate, result.answer) == (env.message_id, False, b"ACK-1")
    row = await store.get(env.message_id)
    assert row is not None and row["status"] == "accepted" and row["control_id"] == "C1"
    assert await store.payload(env.message_id) == b"MSH|^~\\&|\xe9"
    topics = await pool.fetch("SELECT topic, key FROM outbox")
    assert [(r["topic"], r["key"]) for r in topics] == [("t.care.messages.accepted.v1", b"kC1")]
    kinds = await pool.fetch("SELECT event->>'kind' AS kind FROM audit_pending")
    assert [r["kind"] for r in kinds] == ["received"]


async def test_resend_gets_the_original_answer_and_is_not_stored_twice(pool: asyncpg.Pool) -> None:
    store = MessageStore(pool)
    first = envelope("C2")
    [original] = await store.accept([Accepted(first, b"ACK-original")])
    again, same_batch = envelope("C2"), envelope("C2")
    results = await store.accept(
        [
            Accepted(again, b"ACK-new"),
            Accepted(envelope("C3"), b"A3"),
            Accepted(same_batch, b"ACK-newer"),
        ]
    )
    assert [r.duplicate for r in results] == [True, False, True]
    assert results[0].answer == results[2].answer == b"ACK-original"
    assert results[0].message_id == original.message_id
    assert await pool.fetchval("SELECT count(*) FROM messages") == 2
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    assert await pool.fetchval("SELECT duplicates FROM ingress_keys WHERE control_id = 'C2'") == 2


async def test_same_control_id_from_two_senders_is_two_messages(pool: asyncpg.Pool) -> None:
    store = MessageStore(pool)
    results = await store.accept(
        [
            Accepted(envelope("C9", "labo-sud"), b"a"),
            Accepted(envelope("C9", "chu-montpellier"), b"b"),
        ]
    )
    assert [r.duplicate for r in results] == [False, False]


async def test_rejected_input_is_kept_with_its_reason_and_capped(pool: asyncpg.Pool) -> None:
    store = MessageStore(pool)
    message_id, at = new_id_at()
    big = b"x" * (2 * 1024 * 1024)
    await store.reject([Rejected(message_id, at, "mllp", "hl7v2", big, "frame too large")])
    row = await store.get(message_id)
    assert row is not None and (row["status"], row["reason"]) == ("rejected", "frame too large")
    assert row["size"] == len(big)
    kept = await pool.fetchrow("SELECT octet_length(data) AS n, truncated FROM payloads")
    assert kept["n"] == 1024 * 1024 and kept["truncated"] is True
    event = await pool.fetchval("SELECT event FROM audit_pending")
    assert event["kind"] == "rejected" and event["detail"]["reason"] == "frame too large"


async def test_store_down_means_nothing_half_stored(pool: asyncpg.Pool, database_url: str) -> None:
    store = MessageStore(pool)
    env = envelope("C4")
    # Break the transaction half way: payloads refuses the insert.
    await pool.execute("ALTER TABLE payloads ADD CONSTRAINT no_rows CHECK (false) NOT VALID")
    with pytest.raises(StoreRefusedError):
        await store.accept([Accepted(env, b"A")])
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM ingress_keys") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_migrations_run_once_when_started_concurrently(pg_admin_dsn: str) -> None:
    name = f"cbmig_{datetime.now(UTC):%H%M%S%f}"
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = pg_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        pools = [await db.connect(dsn, 2) for _ in range(3)]
        applied = await asyncio.gather(*(migrate(p) for p in pools))
        assert sorted(len(a) for a in applied) == [0, 0, len(available())]
        rows = await pools[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert rows == len(available())
        for p in pools:
            await p.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_refused_input_is_kept_whatever_text_it_holds(pool: asyncpg.Pool) -> None:
    """A NUL in a refusal's text (PostgreSQL text cannot hold it) loses nothing of the batch."""
    store = MessageStore(pool, topic_prefix="t.")
    items = [
        Rejected(
            message_id=message_id,
            received_at=at,
            channel="mllp",
            format="hl7v2",
            payload=b"MSH|^~\\&|\x00",
            reason=f"malformed: {name}",
            control_id=control,
        )
        for (message_id, at), name, control in (
            (new_id_at(), "first", "NUL\x00-1"),
            (new_id_at(), "second", "PLAIN-2"),
        )
    ]
    await store.reject(items)
    stored = await pool.fetch("SELECT control_id, reason FROM messages ORDER BY id")
    assert [(r["control_id"], r["reason"]) for r in stored] == [
        ("NUL\ufffd-1", "malformed: first"),
        ("PLAIN-2", "malformed: second"),
    ]
