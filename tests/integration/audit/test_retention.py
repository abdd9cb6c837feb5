"""Retention by whole daily partitions: payloads first, then metadata, the audit trail last."""

from __future__ import annotations

from datetime import date

import asyncpg

from broker import retention
from broker.settings import Settings
from broker.store import audit, partitions
from broker.store.audit import AuditWriter
from broker.store.partitions import PartitionStore
from tests.integration.audit.conftest import accept, at, cli

SETTINGS = Settings(retention_payload_days=30, retention_message_days=180, retention_audit_days=365)


async def _old_day(pool: asyncpg.Pool, day: str) -> None:
    """Give ``day`` a message, its bytes and a chained audit event."""
    await pool.execute(
        "INSERT INTO messages (id, received_at, channel, format, status, size)"
        " VALUES (gen_random_uuid(), $1, 'mllp', 'hl7v2', 'accepted', 3)",
        at(day),
    )
    await pool.execute(
        "INSERT INTO payloads (message_id, received_at, data)"
        " VALUES (gen_random_uuid(), $1, 'abc')",
        at(day),
    )
    await accept(pool, f"C-{day}")
    await AuditWriter(pool, clock=lambda: at(day)).drain_all()


async def test_each_kind_goes_when_its_retention_ends(pool: asyncpg.Pool) -> None:
    await partitions.ensure_partitions(pool, today=date(2026, 1, 10))
    await _old_day(pool, "2026-01-10")

    def count(table: str) -> object:
        return pool.fetchval(f"SELECT count(*) FROM {table} WHERE received_at < '2026-02-01'")

    dry = await retention.apply(
        PartitionStore(pool), SETTINGS, today=date(2026, 3, 1), dry_run=True
    )
    assert "payloads_p20260110" in dry["payloads"] and dry["messages"] == dry["audit"] == []
    assert await count("payloads") == 1  # a dry run drops nothing

    dropped = await retention.apply(PartitionStore(pool), SETTINGS, today=date(2026, 3, 1))
    assert dropped["payloads"] == [f"payloads_p202601{d:02d}" for d in range(9, 14)]
    assert await count("payloads") == 0 and await count("messages") == 1

    dropped = await retention.apply(PartitionStore(pool), SETTINGS, today=date(2026, 8, 1))
    assert "messages_p20260110" in dropped["messages"] and dropped["audit"] == []
    assert await count("messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit WHERE day = '2026-01-10'") == 1
    assert (await audit.verify(pool)).intact

    await partitions.ensure_partitions(pool, today=date(2026, 6, 1))
    await accept(pool, "C-later")
    await AuditWriter(pool, clock=lambda: at("2026-06-01")).drain_all()
    dropped = await retention.apply(PartitionStore(pool), SETTINGS, today=date(2027, 1, 11))
    assert "audit_p20260110" in dropped["audit"]
    assert await pool.fetchval("SELECT count(*) FROM audit WHERE day = '2026-01-10'") == 0
    # What is left still verifies: its first link is checked against the kept head.
    result = await audit.verify(pool)
    assert result.intact and (result.days, result.events) == (1, 1)
    # The DEFAULT partitions are never dropped.
    tables = await pool.fetch(
        "SELECT relname FROM pg_class WHERE relname IN ('audit_default', 'messages_default')"
    )
    assert len(tables) == 2


async def test_the_retention_command_lists_then_drops(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await partitions.ensure_partitions(pool, today=date(2020, 1, 10))
    listed = cli("retention", "apply", "--dry-run", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    assert (
        "payloads: keep 30 day(s); would drop 5 partition(s): payloads_p20200109" in listed.stdout
    )
    assert await pool.fetchval("SELECT count(*) FROM pg_class WHERE relname = 'payloads_p20200109'")
    done = cli("retention", "apply", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "audit: keep 365 day(s); dropped 5 partition(s): audit_p20200109" in done.stdout
    assert not await pool.fetchval("SELECT count(*) FROM pg_class WHERE relname LIKE '%_p2020%'")
