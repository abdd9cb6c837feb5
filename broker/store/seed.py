"""Benches' and tests' SQL: scratch databases, synthetic stores, and what a bench reads back.

Nothing here runs in a deployed process. The benches (``carebroker bench``,
``carebroker audit bench``, ``python -m broker.console.bench``) and the large
search tests fill throwaway databases in SQL (``generate_series``, COPY), so a
million messages load in about a minute, then read figures back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

from broker.events import AuditEvent
from broker.store import db, events
from broker.store.db import Pool, connection, transaction
from broker.store.partitions import ensure_partitions

# Message n (1..N) is received at start + (n - 1) * step ms, its control id is
# control_id(n) and its patient patient_id(n % patients): a test knows, without
# asking the store, which rows a search must return. Sender, type and status
# come from bytes of md5(n): spread evenly, uncorrelated with the patient.
_MESSAGES = """
INSERT INTO messages (id, received_at, channel, format, sender, sending_facility, control_id,
                      message_type, version, status, reason, size, patient_digests)
SELECT (lpad(to_hex(s.ms), 12, '0') || '7' || substr(s.h, 1, 3) || '8' || substr(s.h, 4, 15))::uuid,
       timestamptz 'epoch' + s.ms * interval '1 millisecond',
       'mllp', 'hl7v2',
       ($3::text[])[1 + get_byte(s.b, 0) % cardinality($3::text[])],
       upper(($3::text[])[1 + get_byte(s.b, 0) % cardinality($3::text[])]),
       'S' || lpad(s.n::text, 8, '0'),
       ($4::text[])[1 + get_byte(s.b, 1) % cardinality($4::text[])],
       '2.5',
       CASE WHEN get_byte(s.b, 2) < 3 THEN 'rejected'
            WHEN get_byte(s.b, 2) < 4 THEN 'unroutable' ELSE 'routed' END,
       CASE WHEN get_byte(s.b, 2) < 3 THEN 'malformed: MSH-9 message type missing'
            WHEN get_byte(s.b, 2) < 4 THEN 'no recipient' END,
       1200,
       ARRAY[p.digest]
FROM (SELECT n, md5(n::text) AS h, decode(md5(n::text), 'hex') AS b,
             $1::bigint + (n - 1) * $2::bigint AS ms
      FROM generate_series(1, $5::bigint) AS n) s
JOIN unnest($6::text[]) WITH ORDINALITY AS p(digest, k) ON p.k = 1 + s.n % $7::bigint
"""
# One delivery of every routed message, a second one for a third of them.
_DELIVERIES = """
INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane, partition, status,
                        attempts, last_error, created_at, updated_at, delivered_at)
SELECT gen_random_uuid(), m.id, m.received_at,
       ($1::text[])[1 + (r.k + x) % cardinality($1::text[])],
       'lane', 0, CASE WHEN r.k % 251 = 0 THEN 'dead' WHEN r.k % 173 = 0 THEN 'failed'
                       ELSE 'delivered' END,
       1, CASE WHEN r.k % 251 = 0 OR r.k % 173 = 0 THEN 'connection refused' END,
       m.received_at, m.received_at + interval '2 seconds',
       CASE WHEN r.k % 251 <> 0 AND r.k % 173 <> 0 THEN m.received_at + interval '2 seconds' END
FROM messages m
CROSS JOIN LATERAL (SELECT get_byte(decode(md5(m.control_id), 'hex'), 0) AS k) r
CROSS JOIN LATERAL generate_series(0, CASE WHEN r.k % 3 = 0 THEN 1 ELSE 0 END) AS x
WHERE m.status = 'routed'
"""


@asynccontextmanager
async def scratch_database(admin_dsn: str, prefix: str = "cb_bench") -> AsyncIterator[str]:
    """Create an empty database on ``admin_dsn``'s server, yield its DSN, drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await db.create_database(admin_dsn, name)
    try:
        yield db.with_database(admin_dsn, name)
    finally:
        await db.drop_database(admin_dsn, name)


class BenchStore:
    """Fill a scratch store and read figures back from it."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    # --- figures ------------------------------------------------------------------------

    async def backend_pids(self) -> list[int]:
        """Return the process ids of PostgreSQL's backends on this database (for CPU time)."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        return [int(r["pid"]) for r in rows]

    async def count_accepted(self) -> int:
        """Return how many messages are stored as accepted."""
        async with connection(self.pool) as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE status = 'accepted'"
            )
        return count

    async def audit_backlog(self) -> tuple[int, int]:
        """Return (events pending, events chained)."""
        async with connection(self.pool) as conn:
            pending: int = await conn.fetchval("SELECT count(*) FROM audit_pending")
            chained: int = await conn.fetchval("SELECT count(*) FROM audit")
        return pending, chained

    async def has_user(self, name: str) -> bool:
        """Tell whether a console user exists."""
        async with connection(self.pool) as conn:
            return bool(await conn.fetchval("SELECT true FROM console_users WHERE name = $1", name))

    async def sample_message_ids(self, limit: int) -> list[uuid.UUID]:
        """Return up to ``limit`` message ids from a 1 % sample of the table's pages."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT id FROM messages TABLESAMPLE SYSTEM (1) LIMIT $1", limit, timeout=600
            )
        return [r["id"] for r in rows]

    async def audited_message(self, offset: int) -> uuid.UUID | None:
        """Return the message of the ``offset``-th chained event about a message."""
        async with connection(self.pool) as conn:
            found: uuid.UUID | None = await conn.fetchval(
                "SELECT message_id FROM audit WHERE message_id IS NOT NULL ORDER BY day, seq"
                " OFFSET $1 LIMIT 1",
                offset,
            )
        return found

    # --- filling ------------------------------------------------------------------------

    async def seed_messages(
        self,
        *,
        first_day: date,
        days: int,
        start_ms: int,
        step_ms: int,
        senders: Sequence[str],
        types: Sequence[str],
        messages: int,
        digests: Sequence[str],
        recipients: Sequence[str],
    ) -> None:
        """Insert ``messages`` synthetic messages and their deliveries, then analyse.

        Message n (1..N) is received at ``start_ms + (n - 1) * step_ms``, about
        patient ``digests[n % len(digests)]``; see the statements above. Every
        day gets its partition first, so rows land where a search prunes to.
        """
        for offset in range(0, days + 1, 2):
            await ensure_partitions(self.pool, first_day + timedelta(days=offset), {"messages": 0})
        async with connection(self.pool) as conn:
            await conn.execute(
                _MESSAGES,
                start_ms,
                step_ms,
                list(senders),
                list(types),
                messages,
                list(digests),
                len(digests),
                timeout=3600,
            )
            await conn.execute(_DELIVERIES, list(recipients), timeout=3600)
            await conn.execute("VACUUM ANALYZE messages", timeout=3600)
            await conn.execute("VACUUM ANALYZE deliveries", timeout=3600)

    async def copy(
        self, table: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
    ) -> None:
        """Load rows with COPY (binary): the fastest way in."""
        async with connection(self.pool) as conn:
            await conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def insert_audit_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert chained-looking audit rows with a detail (COPY has no binary jsonb encoder)."""
        async with connection(self.pool) as conn:
            await conn.executemany(
                "INSERT INTO audit (day, seq, event_id, occurred_at, recorded_at, kind, actor,"
                " outcome, message_id, detail, prev_hash, hash)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                rows,
            )

    async def analyze(self, tables: Sequence[str], *, vacuum: bool = False) -> None:
        """Refresh the planner's statistics of these tables (and vacuum them)."""
        verb = "VACUUM ANALYZE" if vacuum else "ANALYZE"
        async with connection(self.pool) as conn:
            for table in tables:
                await conn.execute(f'{verb} "{table}"')

    async def drop_indexes(self, names: Sequence[str]) -> None:
        """Drop indexes (a bench's baseline without them)."""
        async with connection(self.pool) as conn:
            for index in names:
                await conn.execute(f'DROP INDEX "{index}"')

    # --- the audit trail's baselines ------------------------------------------------------

    async def audit_baselines(self, recorded: Sequence[AuditEvent], batch: int) -> dict[str, float]:
        """Time what the audit trail is compared with; return seconds per step.

        ``plain_insert``: the events' JSON into a plain table, ``batch`` per
        transaction; ``record``: the same through ``broker.store.events.record``
        (``audit_pending``); ``plain_move``: the plain rows moved to another
        table in batches of 1,000 without chaining.
        """
        chunks = [recorded[i : i + batch] for i in range(0, len(recorded), batch)]
        async with connection(self.pool) as conn:
            await conn.execute(
                "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, event jsonb NOT NULL)"
            )
        timings: dict[str, float] = {}
        start = time.perf_counter()
        for chunk in chunks:
            async with transaction(self.pool) as conn:
                await conn.execute(
                    "INSERT INTO bench_plain (event) SELECT e::jsonb FROM unnest($1::text[]) AS e",
                    [e.model_dump_json() for e in chunk],
                )
        timings["plain_insert"] = time.perf_counter() - start
        start = time.perf_counter()
        for chunk in chunks:
            async with transaction(self.pool) as conn:
                await events.record(conn, chunk)
        timings["record"] = time.perf_counter() - start
        async with connection(self.pool) as conn:
            await conn.execute("CREATE TABLE bench_moved (LIKE bench_plain)")
        start = time.perf_counter()
        while True:
            async with transaction(self.pool) as conn:
                moved = await conn.fetch(
                    "WITH batch AS (SELECT id, event FROM bench_plain ORDER BY id LIMIT $1),"
                    " ins AS (INSERT INTO bench_moved SELECT * FROM batch)"
                    " DELETE FROM bench_plain WHERE id IN (SELECT id FROM batch) RETURNING id",
                    1000,
                )
            if not moved:
                break
        timings["plain_move"] = time.perf_counter() - start
        return timings

    async def read_audit(self) -> int:
        """Read the whole audit trail in chain order (a plain read's baseline); count rows."""
        read = 0
        async with transaction(self.pool, readonly=True) as conn:
            async for _ in conn.cursor("SELECT * FROM audit ORDER BY day, seq"):
                read += 1
        return read
