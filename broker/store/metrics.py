"""The figures ``GET /metrics`` shows, read from PostgreSQL at scrape time.

Counts per partner and message type come from ``audit_counters`` and the
latency histogram from ``delivery_latency`` (both kept by the audit writer);
states are counted from ``deliveries``, ``outbox``, ``audit_pending`` and
``alerts``. One connection, a handful of aggregate reads over small tables or
partial indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from broker.store.db import Pool, connection


@dataclass
class Figures:
    """What one scrape reads (times as stored: the caller turns them into ages)."""

    now: datetime
    counters: list[tuple[str, str, str, int]] = field(default_factory=list)
    latency: list[tuple[str, int, int, float]] = field(default_factory=list)
    deliveries: list[tuple[str, str, int, datetime | None]] = field(default_factory=list)
    outbox: tuple[int, datetime | None] = (0, None)
    audit_pending: int = 0
    alerts: list[tuple[str, str]] = field(default_factory=list)


class MetricsStore:
    """Read the deployment's figures."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def read(self) -> Figures:
        """Return every figure, with PostgreSQL's clock (``now``) to age them by."""
        async with connection(self.pool) as conn:
            figures = Figures(now=await conn.fetchval("SELECT now()"))
            figures.counters = [
                (r["kind"], r["partner"], r["message_type"], r["n"])
                for r in await conn.fetch(
                    "SELECT kind, partner, message_type, n FROM audit_counters"
                )
            ]
            figures.latency = [
                (r["recipient"], r["bucket"], r["n"], r["sum_s"])
                for r in await conn.fetch(
                    "SELECT recipient, bucket, n, sum_s FROM delivery_latency"
                )
            ]
            figures.deliveries = [
                (r["recipient"], r["status"], r["n"], r["oldest"])
                for r in await conn.fetch(
                    "SELECT recipient, status, count(*) AS n, min(created_at) AS oldest"
                    " FROM deliveries WHERE status <> 'delivered' AND discarded_at IS NULL"
                    " GROUP BY recipient, status"
                )
            ]
            row = await conn.fetchrow("SELECT count(*) AS n, min(created_at) AS oldest FROM outbox")
            figures.outbox = (row["n"], row["oldest"])
            figures.audit_pending = await conn.fetchval("SELECT count(*) FROM audit_pending")
            figures.alerts = [
                (r["name"], r["subject"])
                for r in await conn.fetch(
                    "SELECT name, subject FROM alerts WHERE resolved_at IS NULL"
                )
            ]
        return figures
