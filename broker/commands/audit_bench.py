"""``carebroker audit bench``: how fast the audit trail records, chains and verifies.

Runs in a scratch database created next to the configured one (and dropped
after), so no benchmark event ever enters a real audit trail. Each figure is
given with a baseline measured in the same run on the same server, so the
ratio is what to compare across machines:

- ``record``: events queued by ``broker.store.events.record`` in the callers'
  transactions (the hot-path cost), against a plain multi-row INSERT of the
  same JSON into an unindexed table;
- ``chain``: events moved by the audit writer (hash chain, heads, counters,
  delete), against moving the same rows without chaining
  (INSERT ... SELECT then DELETE, same batch size);
- ``verify``: events walked and re-hashed by ``audit verify``, against a
  plain ordered read of the same rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from broker.events import AuditEvent
from broker.ids import new_id
from broker.store import audit, db, partitions
from broker.store.events import record
from broker.store.migrate import migrate


@dataclass(frozen=True)
class Figure:
    """One measured rate, with its baseline from the same run."""

    name: str
    events: int
    seconds: float
    baseline_seconds: float
    baseline: str

    def line(self) -> str:
        """Return the figure as one human line."""
        rate = self.events / self.seconds
        base = self.events / self.baseline_seconds
        return (
            f"{self.name}: {rate:,.0f} events/s ({self.events} in {self.seconds:.2f} s); "
            f"baseline {self.baseline}: {base:,.0f} events/s; ratio {rate / base:.2f}"
        )


def _events(count: int) -> list[AuditEvent]:
    message_id = new_id()
    return [
        AuditEvent(
            kind="delivered" if i % 3 else "received",
            actor="delivery",
            message_id=message_id if i % 7 else new_id(),
            control_id=f"C{i}",
            partner="labo-sud",
            recipient="cabinet-dupont",
            rule="ordering-provider",
            detail={"message_type": "ORU^R01", "ack_code": "AA"},
        )
        for i in range(count)
    ]


async def run(admin_dsn: str, events: int = 20_000, batch: int = 500) -> list[Figure]:
    """Measure in a scratch database on the server of ``admin_dsn``; drop it afterwards."""
    name = f"cbbench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base, _, query = admin_dsn.partition("?")
        dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
        pool = await db.connect(dsn, 4)
        try:
            await migrate(pool)
            await partitions.ensure_partitions(pool)
            return await _measure(pool, _events(events), batch)
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _measure(pool: asyncpg.Pool, events: list[AuditEvent], batch: int) -> list[Figure]:
    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    await pool.execute("CREATE TABLE bench_plain (id bigserial PRIMARY KEY, event jsonb NOT NULL)")
    start = time.perf_counter()
    for chunk in chunks:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO bench_plain (event) SELECT e::jsonb FROM unnest($1::text[]) AS e",
                [e.model_dump_json() for e in chunk],
            )
    plain_insert = time.perf_counter() - start
    start = time.perf_counter()
    for chunk in chunks:
        async with db.transaction(pool) as conn:
            await record(conn, chunk)
    recorded = time.perf_counter() - start

    await pool.execute("CREATE TABLE bench_moved (LIKE bench_plain)")
    start = time.perf_counter()
    while True:
        async with pool.acquire() as conn, conn.transaction():
            moved = await conn.fetch(
                "WITH batch AS (SELECT id, event FROM bench_plain ORDER BY id LIMIT $1),"
                " ins AS (INSERT INTO bench_moved SELECT * FROM batch)"
                " DELETE FROM bench_plain WHERE id IN (SELECT id FROM batch) RETURNING id",
                1000,
            )
        if not moved:
            break
    plain_move = time.perf_counter() - start
    start = time.perf_counter()
    chained = await audit.AuditWriter(pool, batch=1000).drain_all()
    chaining = time.perf_counter() - start

    start = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        read = 0
        async for _ in conn.cursor("SELECT * FROM audit ORDER BY day, seq"):
            read += 1
    plain_read = time.perf_counter() - start
    start = time.perf_counter()
    verified = await audit.verify(pool)
    verifying = time.perf_counter() - start
    if not verified.intact or verified.events != len(events) or chained != len(events):
        raise RuntimeError(f"benchmark chain is wrong: {verified.broken}")
    n = len(events)
    return [
        Figure("record", n, recorded, plain_insert, "plain INSERT of the same JSON"),
        Figure("chain", n, chaining, plain_move, "moving the rows without chaining"),
        Figure("verify", n, verifying, plain_read, "plain ordered read"),
    ]
