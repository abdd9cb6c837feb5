"""MSSanté mails in the store: notices read, ZAM deliveries queued, the sweeps' work lists.

A mail carebroker sent is a delivery whose payload is the whole mail
(``content_type`` ``message/rfc822...``, ``routing/cisis.py``); its flags say
whether the creator asked for a delivery notice (``ack_reception``) or a read
receipt (``ack_reading``). Notices read from the mailbox are rows of
``mssante_notices`` (migration ``0740_mssante.sql``), unique per (notice,
recipient block): the reader inserts the row, updates the delivery, and
queues the ZAM in one transaction, so a notice read twice (a crash before it
was flagged on the server) does nothing the second time. A ZAM is a delivery
of kind ``zam:<event>:<mail delivery id>`` to the creator: one Z02 and one
Z03 per mail at most, whatever notices come.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

MAIL_TYPE_LIKE = "message/rfc822%"
READER_LOCK = 0x6D7373616E7465  # pg advisory lock of the notice reader ("mssante")


@dataclass(frozen=True)
class MailRow:
    """A mail delivery, with what a ZAM about it needs from its message."""

    delivery_id: uuid.UUID
    message_id: uuid.UUID
    message_received_at: datetime
    recipient: str
    status: str
    flags: list[str]
    sender: str | None
    envelope: dict[str, Any]
    header: bytes  # the first bytes of the original message (its MSH)
    trace: dict[str, str] | None
    mail_head: bytes  # the first bytes of the stored mail (its To header)


def zam_kind(event: str, delivery_id: uuid.UUID) -> str:
    """Return the delivery kind of the ZAM ``event`` about one mail."""
    return f"zam:{event}:{delivery_id}"


async def record_notice(
    conn: asyncpg.Connection,
    *,
    notice_key: str,
    part: int,
    kind: str,
    delivery_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    status: str,
    final: bool,
    success: bool,
    code: str,
    label: str,
    words: str,
) -> tuple[uuid.UUID, datetime] | None:
    """Insert one notice block; return its id and time, or None when it was read before."""
    row = await conn.fetchrow(
        "INSERT INTO mssante_notices (id, notice_key, part, kind, delivery_id, message_id,"
        " status, final, success, code, label, words)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (notice_key, part) DO NOTHING RETURNING id, received_at",
        uuid.uuid4(),
        notice_key,
        part,
        kind,
        delivery_id,
        message_id,
        status,
        final,
        success,
        code or None,
        label or None,
        words or None,
    )
    return (row["id"], row["received_at"]) if row is not None else None


async def mail(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> MailRow | None:
    """Return the mail delivery ``delivery_id`` (locked for the transaction), or None."""
    row = await conn.fetchrow(
        "SELECT d.id, d.message_id, d.message_received_at, d.recipient, d.status, d.flags,"
        " d.trace, m.sender, m.envelope, substring(p.data FROM 1 FOR 65536) AS header,"
        " substring(d.payload FROM 1 FOR 8192) AS mail_head"
        " FROM deliveries d"
        " JOIN messages m ON m.id = d.message_id AND m.received_at = d.message_received_at"
        " LEFT JOIN payloads p ON p.message_id = d.message_id"
        "  AND p.received_at = d.message_received_at"
        " WHERE d.id = $1 AND d.kind = 'message' AND d.content_type LIKE $2"
        " FOR UPDATE OF d",
        delivery_id,
        MAIL_TYPE_LIKE,
    )
    if row is None:
        return None
    envelope = row["envelope"]
    return MailRow(
        delivery_id=row["id"],
        message_id=row["message_id"],
        message_received_at=row["message_received_at"],
        recipient=row["recipient"],
        status=row["status"],
        flags=list(row["flags"] or []),
        sender=row["sender"],
        envelope=json.loads(envelope) if isinstance(envelope, str) else dict(envelope or {}),
        header=bytes(row["header"] or b""),
        trace=row["trace"],
        mail_head=bytes(row["mail_head"] or b""),
    )


async def fail_mail(
    conn: asyncpg.Connection, delivery_id: uuid.UUID, code: str, words: str
) -> bool:
    """Mark a mail the recipient's server did not deliver (DSN failed); return if it changed."""
    changed = await conn.fetchval(
        "UPDATE deliveries SET status = 'failed', ack_code = $2, last_error = $3,"
        " response = $4, updated_at = now()"
        " WHERE id = $1 AND status IN ('delivered', 'pending') RETURNING id",
        delivery_id,
        code,
        f"recipient server: {words}",
        words.encode(),
    )
    return changed is not None


async def insert_zam(
    conn: asyncpg.Connection,
    *,
    delivery_id: uuid.UUID,
    mail: MailRow,
    event: str,
    lane: str,
    partition: int,
    payload: bytes,
    content_type: str,
    control_id: str,
) -> bool:
    """Queue a ZAM to the mail's sender; return False when that ZAM was queued before."""
    inserted = await conn.fetchval(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, rules, lane,"
        " partition, status, payload, content_type, control_id, kind, trace, reasons)"
        " VALUES ($1, $2, $3, $4, '{zam}', $5, $6, 'pending', $7, $8, $9, $10, $11, $12::jsonb)"
        " ON CONFLICT (message_id, recipient, kind) DO NOTHING RETURNING id",
        delivery_id,
        mail.message_id,
        mail.message_received_at,
        mail.sender,
        lane,
        partition,
        payload,
        content_type,
        control_id,
        zam_kind(event, mail.delivery_id),
        mail.trace,
        json.dumps([{"rule": "zam", "field": event, "value": str(mail.delivery_id)}]),
    )
    return inserted is not None


async def failed_without_z02(conn: asyncpg.Connection, limit: int = 200) -> list[uuid.UUID]:
    """Return mails that failed at the SMTP server, asked for ZAM^Z02, and have none yet."""
    rows = await conn.fetch(
        "SELECT d.id FROM deliveries d"
        " WHERE d.kind = 'message' AND d.content_type LIKE $1"
        " AND d.status IN ('failed', 'dead') AND 'ack_reception' = ANY(d.flags)"
        " AND NOT EXISTS (SELECT 1 FROM deliveries z WHERE z.message_id = d.message_id"
        "  AND z.kind = 'zam:Z02:' || d.id::text)"
        " ORDER BY d.updated_at LIMIT $2",
        MAIL_TYPE_LIKE,
        limit,
    )
    return [r["id"] for r in rows]


async def flag_overdue(
    conn: asyncpg.Connection, after_s: float, limit: int = 200
) -> list[asyncpg.Record]:
    """Note mails sent ``after_s`` ago, a delivery notice asked for, none come; return them."""
    return list(
        await conn.fetch(
            "INSERT INTO mssante_overdue (delivery_id, message_id)"
            " SELECT d.id, d.message_id FROM deliveries d"
            " WHERE d.kind = 'message' AND d.content_type LIKE $1 AND d.status = 'delivered'"
            " AND 'ack_reception' = ANY(d.flags)"
            " AND d.delivered_at < now() - make_interval(secs => $2)"
            " AND NOT EXISTS (SELECT 1 FROM mssante_notices n WHERE n.delivery_id = d.id"
            "  AND n.kind = 'dsn' AND n.final)"
            " AND NOT EXISTS (SELECT 1 FROM mssante_overdue o WHERE o.delivery_id = d.id)"
            " ORDER BY d.delivered_at LIMIT $3"
            " ON CONFLICT DO NOTHING"
            " RETURNING delivery_id, message_id",
            MAIL_TYPE_LIKE,
            after_s,
            limit,
        )
    )


async def clear_overdue(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> bool:
    """Close the overdue alert of a mail whose notice came; return whether one was open."""
    cleared = await conn.fetchval(
        "UPDATE mssante_overdue SET cleared_at = now()"
        " WHERE delivery_id = $1 AND cleared_at IS NULL RETURNING delivery_id",
        delivery_id,
    )
    return cleared is not None


async def overdue_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Return, per recipient, the mails whose delivery notice is overdue and has not come."""
    rows = await conn.fetch(
        "SELECT d.recipient, count(*) AS n FROM mssante_overdue o"
        " JOIN deliveries d ON d.id = o.delivery_id"
        " WHERE o.cleared_at IS NULL AND d.status = 'delivered' GROUP BY d.recipient"
    )
    return {r["recipient"]: r["n"] for r in rows}


async def mails_of(pool: asyncpg.Pool, message_id: uuid.UUID) -> dict[str, Any]:
    """Return a message's mails with their notices, and the ZAMs sent back (console/API)."""
    async with pool.acquire() as conn:
        mails = await conn.fetch(
            "SELECT id, recipient, status, flags, attempts, ack_code, last_error, delivered_at,"
            " updated_at FROM deliveries WHERE message_id = $1 AND kind = 'message'"
            " AND content_type LIKE $2 ORDER BY created_at, recipient",
            message_id,
            MAIL_TYPE_LIKE,
        )
        notices = await conn.fetch(
            "SELECT delivery_id, kind, status, final, success, code, label, words, received_at"
            " FROM mssante_notices WHERE message_id = $1 ORDER BY received_at",
            message_id,
        )
        zams = await conn.fetch(
            "SELECT id, kind, recipient, status, attempts, ack_code, last_error, delivered_at,"
            " control_id FROM deliveries WHERE message_id = $1 AND kind LIKE 'zam:%'"
            " ORDER BY created_at",
            message_id,
        )
        overdue = await conn.fetch(
            "SELECT delivery_id, alerted_at, cleared_at FROM mssante_overdue WHERE message_id = $1",
            message_id,
        )
    return {
        "mails": [dict(r) for r in mails],
        "notices": [dict(r) for r in notices],
        "zams": [dict(r) for r in zams],
        "overdue": [dict(r) for r in overdue],
    }
