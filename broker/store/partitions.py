"""Create time partitions ahead of need, and drop whole ones for retention.

``messages`` and ``payloads`` are range-partitioned on ``received_at`` by day,
``audit`` on ``day`` (one hash chain per day), so retention drops a day's
partition instead of deleting rows one by one. Each audit partition also gets
the TRUNCATE-refusing trigger (statement triggers are not inherited) and loses
the UPDATE/DELETE rights that default privileges would give the application
role (``0300_audit.sql``).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

import asyncpg

from broker.store.db import connection

log = logging.getLogger(__name__)

# table -> days of partitions created ahead of today
PARTITIONED: dict[str, int] = {"messages": 3, "payloads": 3, "audit": 3}
_SUFFIX = re.compile(r"_p(\d{8})$")


def _name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


async def ensure_partitions(
    pool: asyncpg.Pool, today: date | None = None, tables: dict[str, int] | None = None
) -> int:
    """Create missing daily partitions from yesterday to ``ahead`` days on; return how many."""
    today = today or datetime.now(UTC).date()
    created = 0
    async with connection(pool) as conn:
        for table, ahead in (tables or PARTITIONED).items():
            existing = await _existing(conn, table)
            for offset in range(-1, ahead + 1):
                day = today + timedelta(days=offset)
                name = _name(table, day)
                if name in existing:
                    continue
                try:
                    await conn.execute(
                        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
                        f"FOR VALUES FROM ('{day.isoformat()}') "
                        f"TO ('{(day + timedelta(days=1)).isoformat()}')"
                    )
                    if table == "audit":
                        await _seal_audit_partition(conn, name)
                    created += 1
                except asyncpg.exceptions.CheckViolationError:
                    # Rows for that day already sit in the DEFAULT partition: leave
                    # them there (still queryable) rather than fail start-up.
                    log.warning(
                        "partition not created: default partition holds rows",
                        extra={"partition": name},
                    )
                except (
                    asyncpg.exceptions.DuplicateTableError,
                    asyncpg.exceptions.UniqueViolationError,
                ):
                    pass  # another instance created it at the same moment
    return created


async def _seal_audit_partition(conn: asyncpg.Connection, name: str) -> None:
    """Make a new audit partition as append-only as its parent."""
    await conn.execute(
        f'CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON "{name}" '
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
    )
    has_role = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = 'carebroker_app'")
    if has_role:
        await conn.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{name}" FROM carebroker_app')


async def _existing(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
        table,
    )
    return {r["relname"] for r in rows}


async def partitions_before(pool: asyncpg.Pool, table: str, cutoff: date) -> list[str]:
    """Return the daily partitions of ``table`` whose whole day is before ``cutoff``."""
    async with connection(pool) as conn:
        names = sorted(await _existing(conn, table))
    return [
        name
        for name in names
        if (match := _SUFFIX.search(name))
        and datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC).date() < cutoff
    ]


async def drop_partitions_before(pool: asyncpg.Pool, table: str, cutoff: date) -> list[str]:
    """Drop the daily partitions of ``table`` whose whole day is before ``cutoff``."""
    dropped = []
    async with connection(pool) as conn:
        for name in await partitions_before(pool, table, cutoff):
            await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            dropped.append(name)
    return dropped


class PartitionStore:
    """Daily partitions: created ahead, and dropped whole by retention."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def ensure(self, today: date | None = None) -> int:
        """Create missing daily partitions ahead; return how many (:func:`ensure_partitions`)."""
        return await ensure_partitions(self.pool, today)

    async def before(self, table: str, cutoff: date) -> list[str]:
        """Return the partitions of ``table`` whose whole day is before ``cutoff``."""
        return await partitions_before(self.pool, table, cutoff)

    async def drop_before(self, table: str, cutoff: date) -> list[str]:
        """Drop the partitions of ``table`` whose whole day is before ``cutoff``."""
        return await drop_partitions_before(self.pool, table, cutoff)
