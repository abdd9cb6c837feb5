"""The transactional outbox: rows that must reach Kafka, written with the state they announce.

Writers call :func:`outbox_rows` inside their own transaction. The relay
(``broker/relay.py``) publishes each shard in id order and deletes what the
cluster acknowledged. A crash between publish and delete republishes, which
consumers tolerate (they are idempotent, design invariant 3).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


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


async def insert(conn: asyncpg.Connection, rows: Sequence[OutboxRow], shards: int) -> None:
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
