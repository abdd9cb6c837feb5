"""The transactional outbox: rows that must reach Kafka, written with the state they announce.

Writers call :func:`insert` inside their own transaction (through a unit of
work's ``outbox.publish``). The relay (``broker/relay.py``), through
:class:`OutboxStore`, publishes each shard in id order and deletes what the
cluster acknowledged. A crash between publish and delete republishes, which
consumers tolerate (they are idempotent, design invariant 3).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from broker.envelope import Envelope
from broker.store.db import Connection, Pool, connection, listening, transaction

CHANNEL = "carebroker_outbox"
_LOCK_BASE = 0x6F757462_00000000  # "outb" << 32: advisory lock ids of the shards


@dataclass(frozen=True)
class OutboxRow:
    """One record to publish: topic (full name), key, value, optional partition, headers."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None
    headers: dict[str, str] | None = None


def shard_of(key: bytes | None, shards: int) -> int:
    """Return the shard a key's rows go to: one key, one shard, so its order is kept."""
    return zlib.crc32(key or b"") % shards


async def insert(conn: Connection, rows: Sequence[OutboxRow], shards: int) -> None:
    """Insert outbox rows in the caller's transaction and wake the relay at commit."""
    if not rows:
        return
    # One statement, one round trip: the NOTIFY rides with the insert.
    await conn.execute(
        "WITH rows AS (INSERT INTO outbox (shard, topic, key, value, partition, headers) "
        "SELECT * FROM unnest($1::smallint[], $2::text[], $3::bytea[], $4::bytea[], "
        "$5::integer[], $6::jsonb[])) SELECT pg_notify('carebroker_outbox', '')",
        [shard_of(r.key, shards) for r in rows],
        [r.topic for r in rows],
        [r.key for r in rows],
        [r.value for r in rows],
        [r.partition for r in rows],
        [r.headers for r in rows],
    )


@dataclass(frozen=True)
class Queued:
    """An outbox row waiting for the relay."""

    id: int
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None
    headers: dict[str, str] | None


class ShardLocks:
    """The relay's session: advisory locks on the shards it relays, and the outbox wake-ups."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def try_claim(self, shard: int) -> bool:
        """Take shard ``shard`` if no other relay holds it (kept until the session ends)."""
        return bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_BASE + shard))


class OutboxStore:
    """The relay's side of the outbox: claim shards, read them in order, forget what was sent."""

    def __init__(self, pool: Pool, shards: int) -> None:
        self.pool = pool
        self.shards = shards

    @asynccontextmanager
    async def session(self, notified: Callable[..., object]) -> AsyncIterator[ShardLocks]:
        """Hold a connection for shard locks, calling ``notified`` when rows are committed.

        Leaving releases every shard (and the listener) with the connection.
        """
        async with listening(self.pool, CHANNEL, notified) as conn:
            yield ShardLocks(conn)

    async def queued(self, shard: int, limit: int, max_bytes: int) -> list[Queued]:
        """Return the oldest rows of a shard, in id order, at most ``limit`` and ~``max_bytes``."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, value, partition, headers FROM ("
                " SELECT *, sum(octet_length(value)) OVER (ORDER BY id) AS running"
                " FROM (SELECT * FROM outbox WHERE shard = $1 ORDER BY id LIMIT $2) s) t"
                " WHERE running - octet_length(value) < $3 ORDER BY id",
                shard,
                limit,
                max_bytes,
            )
        return [Queued(*r) for r in rows]

    async def forget(self, ids: Sequence[int]) -> None:
        """Delete rows Kafka acknowledged."""
        async with connection(self.pool) as conn:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))

    async def unrouted(
        self, since: datetime, until: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Envelope]:
        """Return accepted messages not routed yet, received in [since, until], after a cursor."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT m.id, m.received_at, m.envelope, p.data FROM messages m"
                " JOIN payloads p ON p.message_id = m.id AND p.received_at = m.received_at"
                " WHERE m.status = 'accepted' AND m.received_at BETWEEN $1 AND $2"
                " AND ($3::timestamptz IS NULL OR (m.received_at, m.id) > ($3, $4::uuid))"
                " ORDER BY m.received_at, m.id LIMIT $5",
                since,
                until,
                after[0] if after else None,
                after[1] if after else None,
                limit,
            )
        return [
            Envelope.model_validate({**r["envelope"], "payload": r["data"]})
            for r in rows
            if r["envelope"]
        ]

    async def publish(self, rows: Sequence[OutboxRow]) -> None:
        """Queue records in a transaction of their own (a re-publication)."""
        async with transaction(self.pool) as conn:
            await insert(conn, rows, self.shards)
