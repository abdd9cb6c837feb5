"""What the file intake keeps in PostgreSQL: each file taken, and who is scanning a directory.

The messages made from a file go through :class:`MessageStore` like any
other (accepted, de-duplicated, audited); this store adds the file's own
row (``file_pickups``: name, digest, outcome, the messages it became) and the
lock that lets only one instance scan a directory at a time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.ids import new_id
from broker.store.db import Pool, connection


@dataclass(frozen=True)
class FilePickup:
    """One file taken from a watched directory, and what became of it."""

    directory: str
    name: str
    sha256: str
    size: int
    format: str
    outcome: str  # accepted | duplicate | refused
    moved_to: str  # done | error
    sender: str | None = None
    reason: str | None = None
    message_ids: list[uuid.UUID] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=new_id)


class FileStore:
    """The ``file_pickups`` table and the per-directory scanning lock."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def scanning(self, directory: str) -> AsyncIterator[bool]:
        """Hold the directory's advisory lock while scanning; yield whether this instance got it.

        A session lock on one pooled connection: it goes with the connection
        if the process dies, so another instance takes over at its next scan.
        """
        digest = hashlib.sha256(f"files:{directory}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)  # a bigint lock key
        async with connection(self.pool) as conn:
            held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            try:
                yield held
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def record(self, pickup: FilePickup) -> None:
        """Keep what became of one file."""
        async with connection(self.pool) as conn:
            await conn.execute(
                "INSERT INTO file_pickups (id, directory, name, sha256, size, format, sender,"
                " outcome, reason, message_ids, moved_to)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                pickup.id,
                pickup.directory,
                pickup.name,
                pickup.sha256,
                pickup.size,
                pickup.format,
                pickup.sender,
                pickup.outcome,
                pickup.reason,
                pickup.message_ids,
                pickup.moved_to,
            )

    async def refusal(self, control_id: str) -> uuid.UUID | None:
        """Return the rejected message already kept for a refused file (its control id), or None.

        A file refused and kept, but not yet moved when the process stopped,
        is refused again at the next scan: this keeps it from being stored twice.
        """
        async with connection(self.pool) as conn:
            found: uuid.UUID | None = await conn.fetchval(
                "SELECT id FROM messages WHERE control_id = $1 AND channel = 'file'"
                " AND status = 'rejected' LIMIT 1",
                control_id,
            )
        return found

    async def pickups(self, directory: str) -> list[dict[str, Any]]:
        """Return the files taken from ``directory``, oldest first (operators, tests)."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT * FROM file_pickups WHERE directory = $1 ORDER BY picked_at, id",
                directory,
            )
        return [dict(r) for r in rows]

    async def forget_before(self, cutoff: datetime) -> int:
        """Delete the rows of files taken before ``cutoff`` (retention); return how many."""
        async with connection(self.pool) as conn:
            status: str = await conn.execute(
                "DELETE FROM file_pickups WHERE picked_at < $1", cutoff
            )
        return int(status.rsplit(" ", 1)[-1])
