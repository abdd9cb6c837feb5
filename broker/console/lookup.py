"""Find one message's row by its id, reading one daily partition when it can.

``messages`` is partitioned by ``received_at``, which equals the time inside
a carebroker UUIDv7 id: the first query reads one partition. An id made
elsewhere, or a row whose time was set apart from its id, is then looked for
in every partition through the ``messages_id`` index (as the status API does).
"""

from __future__ import annotations

import uuid

import asyncpg

from broker.ids import id_time


async def find_message(
    pool: asyncpg.Pool, message_id: uuid.UUID, query: str
) -> asyncpg.Record | None:
    """Run ``query`` (with ``m`` = messages, ``$1`` = id, ``$2`` = received_at or NULL)."""
    if message_id.version == 7:
        row = await pool.fetchrow(query, message_id, id_time(message_id))
        if row is not None:
            return row
    return await pool.fetchrow(query, message_id, None)
