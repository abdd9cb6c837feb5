"""The audit writer and `carebroker audit verify` on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import asyncpg
import pytest

from broker.errors import StoreRefusedError
from broker.store import audit, partitions
from broker.store.audit import AuditWriter
from tests.integration.audit.conftest import accept, at, cli, hops, reject


async def test_writer_moves_pending_events_into_the_chain_in_order(pool: asyncpg.Pool) -> None:
    """Chaining keeps commit order across batches, and timeline() reads one message's part.

    Seeded events; the timeline of a real message (MLLP in, routed, translated,
    delivered to two partners, with the rule names) is ``tests/e2e/test_pipeline_run.py``.
    """
    [first, second] = await accept(pool, "C1", "C2")
    await hops(pool, first, "cabinet-dupont")
    await hops(pool, first, "chu-montpellier")
    await reject(pool)
    writer = AuditWriter(pool, batch=3)  # several batches: the chain continues across them
    assert await writer.drain_all() == 9
    assert await pool.fetchval("SELECT count(*) FROM audit_pending") == 0
    rows = await audit.read(pool)
    assert [r.seq for r in rows] == list(range(1, 10))
    assert [r.kind for r in rows][:2] == ["received", "received"]
    timeline = await audit.timeline(pool, first)
    assert [(r.kind, r.recipient, r.rule) for r in timeline] == [
        ("received", None, None),
        ("routed", "cabinet-dupont", "ordering-provider"),
        ("delivery_attempted", "cabinet-dupont", None),
        ("delivered", "cabinet-dupont", None),
        ("routed", "chu-montpellier", "ordering-provider"),
        ("delivery_attempted", "chu-montpellier", None),
        ("delivered", "chu-montpellier", None),
    ]
    assert [r.kind for r in await audit.timeline(pool, second)] == ["received"]
    result = await audit.verify(pool)
    assert result.intact and result.events == 9 and result.days == 1


async def test_timeline_by_message_id_is_an_index_lookup(pool: asyncpg.Pool) -> None:
    [message_id] = await accept(pool, "C1")
    await AuditWriter(pool).drain_all()
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # tiny table: ask what an index gives
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT * FROM audit WHERE message_id = $1 ORDER BY day, seq", message_id
            )
        )
    assert "audit_message" in plan or "message_id_day_seq" in plan, plan


async def test_an_untouched_chain_verifies_with_the_cli(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await accept(pool, "C1", "C2", "C3")
    await AuditWriter(pool).drain_all()
    done = cli("audit", "verify", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "audit trail intact: 3 event(s) in 1 day chain(s)" in done.stdout


async def _tamper(pool: asyncpg.Pool, *statements: str) -> None:
    """Change audit rows as someone with superuser rights would: triggers off."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            await conn.execute(statement)


@pytest.mark.parametrize(
    ("statements", "seq", "reason"),
    [
        (
            ["UPDATE audit SET partner = 'chu-montpellier' WHERE seq = 3"],
            3,
            "content does not match its hash (altered)",
        ),
        (
            ["UPDATE audit SET detail = '{\"size\": 1}' WHERE seq = 2"],
            2,
            "content does not match its hash (altered)",
        ),
        (["DELETE FROM audit WHERE seq = 2"], 3, "event #2 is missing"),
        (
            # Swap the content (and hashes) of rows 2 and 3: positions stay 1..n.
            [
                "UPDATE audit SET seq = -2 WHERE seq = 2",
                "UPDATE audit SET seq = 2 WHERE seq = 3",
                "UPDATE audit SET seq = 3 WHERE seq = -2",
            ],
            2,
            "does not link to the previous event",
        ),
        (["DELETE FROM audit WHERE seq = 4"], 3, "head records #4"),
    ],
    ids=["update-partner", "update-detail", "delete", "swap", "truncate-tail"],
)
async def test_tampering_makes_verify_fail_and_name_the_event(
    pool: asyncpg.Pool, database_url: str, statements: list[str], seq: int, reason: str
) -> None:
    await accept(pool, "C1", "C2", "C3", "C4")
    await AuditWriter(pool).drain_all()
    rows = {r.seq: r for r in await audit.read(pool)}
    await _tamper(pool, *statements)
    done = cli("audit", "verify", database_url=database_url)
    assert done.returncode == 1, done.stdout
    day = rows[1].day.isoformat()
    assert f"audit chain broken at {day} #{seq}" in done.stderr
    assert reason in done.stderr
    if "head records" not in reason:
        broken = await pool.fetchval("SELECT event_id FROM audit WHERE seq = $1", seq)
        assert f"(event {broken})" in done.stderr


async def test_a_forged_event_appended_at_the_end_is_found(pool: asyncpg.Pool) -> None:
    await accept(pool, "C1", "C2")
    await AuditWriter(pool).drain_all()
    last = (await audit.read(pool))[-1]
    await _tamper(
        pool,
        "INSERT INTO audit (day, seq, event_id, occurred_at, recorded_at, kind, actor, outcome,"
        f" prev_hash, hash) VALUES ('{last.day}', 3, '{uuid.uuid4()}', now(), now(), 'delivered',"
        f" 'delivery', 'success', '\\x{last.hash.hex()}', '\\x00')",
    )
    result = await audit.verify(pool)
    assert result.broken is not None and result.broken.seq == 3


async def test_the_application_role_cannot_change_audit_rows(pool: asyncpg.Pool) -> None:
    await accept(pool, "C1")
    await AuditWriter(pool).drain_all()
    partition = await pool.fetchval("SELECT tableoid::regclass::text FROM audit WHERE seq = 1")
    async with pool.acquire() as conn:
        await conn.execute("SET ROLE carebroker_app")
        try:
            assert await conn.fetchval("SELECT count(*) FROM audit") == 1  # may read
            for statement in (
                "UPDATE audit SET actor = 'x'",
                "DELETE FROM audit",
                "TRUNCATE audit",
                f"UPDATE {partition} SET actor = 'x'",
                f"DELETE FROM {partition}",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            async with conn.transaction():  # may insert (the writer does), then roll back
                await conn.execute("INSERT INTO audit SELECT * FROM audit WHERE false")
                await conn.execute("DELETE FROM audit_pending")
        finally:
            await conn.execute("RESET ROLE")
    # Even the owner cannot update or delete: the trigger refuses.
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement)
    assert (await audit.verify(pool)).intact


async def test_chains_link_across_days_and_survive_retention(pool: asyncpg.Pool) -> None:
    await partitions.ensure_partitions(pool, today=date(2026, 3, 2))
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        await accept(pool, f"C-{day}", f"D-{day}")
        await AuditWriter(pool, clock=lambda day=day: at(day)).drain_all()  # type: ignore[misc]
    heads = await pool.fetch("SELECT day, seq FROM audit_heads ORDER BY day")
    assert [(r["day"].isoformat(), r["seq"]) for r in heads] == [
        ("2026-03-01", 2),
        ("2026-03-02", 2),
        ("2026-03-03", 2),
    ]
    first_of_2 = await pool.fetchrow(
        "SELECT prev_hash FROM audit WHERE day = '2026-03-02' AND seq = 1"
    )
    last_of_1 = await pool.fetchrow("SELECT hash FROM audit WHERE day = '2026-03-01' AND seq = 2")
    assert first_of_2["prev_hash"] == last_of_1["hash"]
    assert (await audit.verify(pool)).events == 6
    await partitions.drop_partitions_before(pool, "audit", date(2026, 3, 2))
    result = await audit.verify(pool)
    assert result.intact and result.events == 4, result.broken
    assert (await audit.verify(pool, since=date(2026, 3, 3))).events == 2
    # ... unless retention should still keep that day: then it was removed by someone else.
    kept = await audit.verify(pool, retained_from=date(2026, 2, 20))
    assert kept.broken is not None and kept.broken.day == date(2026, 3, 1)
    # A whole day vanishing in the middle is not retention.
    await partitions.ensure_partitions(pool, today=date(2026, 3, 5))
    await accept(pool, "C-5")
    await AuditWriter(pool, clock=lambda: at("2026-03-04")).drain_all()
    await pool.execute("DROP TABLE audit_p20260303")
    broken = (await audit.verify(pool)).broken
    assert broken is not None and broken.day == date(2026, 3, 3)
    assert "missing" in broken.reason


async def test_a_failed_batch_is_retried_not_lost(pool: asyncpg.Pool) -> None:
    await accept(pool, "C1", "C2")
    await pool.execute("ALTER TABLE audit_heads ADD CONSTRAINT refuse CHECK (false) NOT VALID")
    with pytest.raises(StoreRefusedError, match="CheckViolationError"):
        await AuditWriter(pool).drain()
    assert await pool.fetchval("SELECT count(*) FROM audit_pending") == 2
    assert await pool.fetchval("SELECT count(*) FROM audit") == 0
    await pool.execute("ALTER TABLE audit_heads DROP CONSTRAINT refuse")
    assert await AuditWriter(pool).drain_all() == 2
    assert (await audit.verify(pool)).intact


async def test_concurrent_writers_keep_one_chain(pool: asyncpg.Pool) -> None:
    writers = [AuditWriter(pool, batch=7) for _ in range(3)]
    stop = asyncio.Event()

    async def keep_draining(writer: AuditWriter) -> None:
        while not stop.is_set():
            await writer.drain()
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(keep_draining(w)) for w in writers]
    for i in range(10):
        await accept(pool, *(f"C{i}-{j}" for j in range(5)))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks)
    await AuditWriter(pool).drain_all()
    result = await audit.verify(pool)
    assert result.intact and result.events == 50


async def test_odd_pending_events_are_chained_not_stuck(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO audit_pending (event) VALUES ($1), ($2)",
        {"kind": "future_kind", "actor": "router", "unknown_field": 1},
        {"no": "fields"},
    )
    await pool.execute("INSERT INTO audit_pending (event) VALUES ('[1, \"two\"]'), ('null')")
    assert await AuditWriter(pool).drain_all() == 4
    rows = await audit.read(pool)
    assert rows[0].kind == "future_kind" and rows[0].detail == {"extra": {"unknown_field": 1}}
    assert rows[1].kind == "unknown"
    assert rows[2].kind == "unknown" and rows[2].detail == {"extra": {"extra": [1, "two"]}}
    assert (await audit.verify(pool)).intact
