"""The record of requests refused to strangers (``stranger_refusals``), bounded by construction.

One row per (minute, client address, channel, reason) holds how many such
requests came and their declared sizes: a flood of guessed tokens from one
address adds one row a minute, not one per request, and never a body.
:mod:`broker.strangers` aggregates in memory and writes here in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.store.db import Pool, transaction


@dataclass(frozen=True)
class Refusal:
    """Refused requests from one address, for one reason, within one minute."""

    minute: datetime
    address: str
    channel: str
    reason: str
    requests: int
    bytes: int
    first_at: datetime
    last_at: datetime


class RefusalStore:
    """Add to and read the record of strangers' refusals."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def add(self, refusals: list[Refusal]) -> None:
        """Add counts to the rows of their minute (one statement for the batch)."""
        if not refusals:
            return
        async with transaction(self.pool) as conn:
            await conn.executemany(
                "INSERT INTO stranger_refusals AS r (minute, address, channel, reason, requests,"
                " bytes, first_at, last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (minute, address, channel, reason) DO UPDATE SET"
                " requests = r.requests + EXCLUDED.requests, bytes = r.bytes + EXCLUDED.bytes,"
                " first_at = least(r.first_at, EXCLUDED.first_at),"
                " last_at = greatest(r.last_at, EXCLUDED.last_at)",
                [
                    (
                        r.minute,
                        r.address,
                        r.channel,
                        r.reason,
                        r.requests,
                        r.bytes,
                        r.first_at,
                        r.last_at,
                    )
                    for r in refusals
                ],
            )

    async def recent(self, since: datetime, limit: int = 500) -> list[Refusal]:
        """Return the rows last seen since ``since``, newest first."""
        async with transaction(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT minute, address, channel, reason, requests, bytes, first_at, last_at"
                " FROM stranger_refusals WHERE last_at >= $1 ORDER BY last_at DESC LIMIT $2",
                since,
                limit,
            )
        return [Refusal(**dict(r)) for r in rows]

    async def purge(self, older_than_days: int) -> int:
        """Drop rows older than ``older_than_days``; return how many."""
        async with transaction(self.pool) as conn:
            result: str = await conn.execute(
                "DELETE FROM stranger_refusals WHERE last_at < now() - make_interval(days => $1)",
                older_than_days,
            )
        return int(result.split()[-1])
