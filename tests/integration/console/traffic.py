"""Put traffic in the spine tables as ingress, router and delivery would leave it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from broker.ids import new_id


async def add_message(
    pool: asyncpg.Pool, sender: str | None, *, status: str = "accepted", ago_s: float = 0
) -> tuple[uuid.UUID, datetime]:
    """Store one message's metadata received ``ago_s`` seconds ago; return its id and time."""
    message_id = new_id()
    received_at = datetime.now(UTC) - timedelta(seconds=ago_s)
    await pool.execute(
        "INSERT INTO messages (id, received_at, channel, format, sender, control_id,"
        " message_type, status, size) VALUES ($1, $2, 'mllp', 'hl7v2', $3, $4, 'ORU^R01', $5, 120)",
        message_id,
        received_at,
        sender,
        f"CTRL{message_id.hex[:8]}",
        status,
    )
    return message_id, received_at


async def add_delivery(
    pool: asyncpg.Pool,
    recipient: str,
    *,
    status: str,
    received_ago_s: float,
    delivered_ago_s: float | None = None,
    updated_ago_s: float = 0,
    last_error: str | None = None,
) -> uuid.UUID:
    """Store one delivery of a fresh message from labo-sud to ``recipient``."""
    message_id, received_at = await add_message(pool, "labo-sud", ago_s=received_ago_s)
    now = datetime.now(UTC)
    delivery_id = new_id()
    await pool.execute(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane, partition,"
        " status, attempts, last_error, created_at, updated_at, delivered_at)"
        " VALUES ($1, $2, $3, $4, $4, 0, $5, 1, $6, $3, $7, $8)",
        delivery_id,
        message_id,
        received_at,
        recipient,
        status,
        last_error,
        now - timedelta(seconds=updated_ago_s),
        None if delivered_ago_s is None else now - timedelta(seconds=delivered_ago_s),
    )
    return delivery_id


async def add_outcome(
    pool: asyncpg.Pool,
    message_id: uuid.UUID,
    received_at: datetime,
    recipient: str,
    *,
    status: str,
    payload: bytes | None = None,
    response: bytes | None = None,
    ack_code: str | None = None,
    last_error: str | None = None,
    control_id: str = "",
    failed_ago_s: float = 0,
) -> uuid.UUID:
    """Store a delivery of a stored message as the router and delivery leave it; return its id."""
    delivery_id = new_id()
    now = datetime.now(UTC)
    await pool.execute(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, rules, lane,"
        " partition, status, attempts, last_error, payload, response, ack_code, control_id,"
        " content_type, created_at, updated_at, delivered_at)"
        " VALUES ($1, $2, $3, $4, '{ordering-provider}', $4 || '/p', 0, $5, 1, $6, $7, $8, $9,"
        " $10, 'x-application/hl7-v2+er7; charset=utf-8', $3, $11, $12)",
        delivery_id,
        message_id,
        received_at,
        recipient,
        status,
        last_error,
        payload,
        response,
        ack_code,
        control_id,
        now - timedelta(seconds=failed_ago_s),
        now if status == "delivered" else None,
    )
    return delivery_id
