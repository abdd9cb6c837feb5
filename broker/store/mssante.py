"""MSSanté mails in the store: notices read, ZAM deliveries queued, the sweeps' work lists.

A mail carebroker sent is a delivery whose payload is the whole mail
(``content_type`` ``message/rfc822...``, ``routing/cisis.py``); its flags say
whether the creator asked for a delivery notice (``ack_reception``) or a read
receipt (``ack_reading``). Notices read from the mailbox are rows of
``mssante_notices`` (migration ``0740_mssante.sql``), unique per (notice,
recipient block): the reader inserts the row, updates the delivery, and
queues the ZAM in one unit of work, so a notice read twice (a crash before
it was flagged on the server) does nothing the second time. A ZAM is a
delivery of kind ``zam:<event>:<mail delivery id>`` to the creator: one Z02
and one Z03 per mail at most, whatever notices come::

    async with stores.mssante.transaction() as work:
        recorded = await work.mails.record_notice(...)
        await work.deliveries.add([...])   # the ZAM
        await work.outbox.publish([...])   # its wake-up
        await work.audit.record([...])
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.store.db import Connection, Pool, connection
from broker.store.routing import PgDeliveries, PgOutbox
from broker.store.unit import AuditPart, UnitStore

MAIL_TYPE_LIKE = "message/rfc822%"
READER_LOCK = 0x6D7373616E7465  # advisory lock of the notice reader ("mssante")


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
    ack_code: str | None


def zam_kind(event: str, delivery_id: uuid.UUID) -> str:
    """Return the delivery kind of the ZAM ``event`` about one mail."""
    return f"zam:{event}:{delivery_id}"


class MailRows:
    """Mail deliveries, their notices (``mssante_notices``), overdue ones (``mssante_overdue``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def record_notice(
        self,
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
        row = await self.conn.fetchrow(
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

    async def mail(self, delivery_id: uuid.UUID) -> MailRow | None:
        """Return the mail delivery ``delivery_id`` (locked for the transaction), or None."""
        row = await self.conn.fetchrow(
            "SELECT d.id, d.message_id, d.message_received_at, d.recipient, d.status, d.flags,"
            " d.trace, d.ack_code, m.sender, m.envelope,"
            " substring(p.data FROM 1 FOR 65536) AS header,"
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
            ack_code=row["ack_code"],
        )

    async def fail(self, delivery_id: uuid.UUID, code: str, words: str) -> bool:
        """Mark a mail the recipient's server did not deliver (DSN failed); return if it changed."""
        changed = await self.conn.fetchval(
            "UPDATE deliveries SET status = 'failed', ack_code = $2, last_error = $3,"
            " response = $4, updated_at = now()"
            " WHERE id = $1 AND status IN ('delivered', 'pending') RETURNING id",
            delivery_id,
            code,
            f"recipient server: {words}",
            words.encode(),
        )
        return changed is not None

    async def failed_without_z02(self, limit: int = 200) -> list[uuid.UUID]:
        """Return mails that failed at the SMTP server, asked for ZAM^Z02, and have none yet."""
        rows = await self.conn.fetch(
            "SELECT d.id FROM deliveries d"
            " WHERE d.kind = 'message' AND d.content_type LIKE $1"
            " AND d.status IN ('failed', 'dead') AND 'ack_reception' = ANY(d.flags)"
            " AND NOT EXISTS (SELECT 1 FROM deliveries z WHERE z.message_id = d.message_id"
            "  AND z.kind = 'zam:Z02:' || d.id::text)"
            # Decided once: the refusal is recorded as a notice, whether a ZAM could go or not.
            " AND NOT EXISTS (SELECT 1 FROM mssante_notices n"
            "  WHERE n.notice_key = 'smtp:' || d.id::text)"
            " ORDER BY d.updated_at LIMIT $2",
            MAIL_TYPE_LIKE,
            limit,
        )
        return [r["id"] for r in rows]

    async def flag_overdue(self, after_s: float, limit: int = 200) -> list[uuid.UUID]:
        """Note mails sent ``after_s`` ago whose delivery notice, asked for, has not come."""
        rows = await self.conn.fetch(
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
            " RETURNING delivery_id",
            MAIL_TYPE_LIKE,
            after_s,
            limit,
        )
        return [r["delivery_id"] for r in rows]

    async def clear_overdue(self, delivery_id: uuid.UUID) -> bool:
        """Close the overdue note of a mail whose notice came; return whether one was open."""
        cleared = await self.conn.fetchval(
            "UPDATE mssante_overdue SET cleared_at = now()"
            " WHERE delivery_id = $1 AND cleared_at IS NULL RETURNING delivery_id",
            delivery_id,
        )
        return cleared is not None

    async def overdue_counts(self) -> dict[str, int]:
        """Return, per recipient, the mails whose delivery notice is overdue and has not come."""
        rows = await self.conn.fetch(
            "SELECT d.recipient, count(*) AS n FROM mssante_overdue o"
            " JOIN deliveries d ON d.id = o.delivery_id"
            " WHERE o.cleared_at IS NULL AND d.status = 'delivered' GROUP BY d.recipient"
        )
        return {r["recipient"]: r["n"] for r in rows}

    async def of_message(self, message_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
        """Return a message's mails, their notices and overdue notes, and its ZAMs (console)."""
        mails = await self.conn.fetch(
            "SELECT id, recipient, status, flags, attempts, ack_code, last_error, delivered_at,"
            " updated_at FROM deliveries WHERE message_id = $1 AND kind = 'message'"
            " AND content_type LIKE $2 ORDER BY created_at, recipient",
            message_id,
            MAIL_TYPE_LIKE,
        )
        notices = await self.conn.fetch(
            "SELECT delivery_id, kind, status, final, success, code, label, words, received_at"
            " FROM mssante_notices WHERE message_id = $1 ORDER BY received_at",
            message_id,
        )
        zams = await self.conn.fetch(
            "SELECT id, kind, recipient, status, attempts, ack_code, last_error, delivered_at,"
            " control_id FROM deliveries WHERE message_id = $1 AND kind LIKE 'zam:%'"
            " ORDER BY created_at",
            message_id,
        )
        overdue = await self.conn.fetch(
            "SELECT delivery_id, alerted_at, cleared_at FROM mssante_overdue WHERE message_id = $1",
            message_id,
        )
        return {
            "mails": [dict(r) for r in mails],
            "notices": [dict(r) for r in notices],
            "zams": [dict(r) for r in zams],
            "overdue": [dict(r) for r in overdue],
        }


class MssanteWork:
    """One transaction over the mails, the deliveries (ZAMs), the outbox and the audit trail."""

    def __init__(self, conn: Connection, outbox_shards: int) -> None:
        self.mails = MailRows(conn)
        self.deliveries = PgDeliveries(conn)
        self.outbox = PgOutbox(conn, outbox_shards)
        self.audit = AuditPart(conn)


class MssanteStore(UnitStore[MssanteWork]):
    """MSSanté mails, notices and ZAMs."""

    def __init__(self, pool: Pool, *, outbox_shards: int = 8) -> None:
        super().__init__(pool)
        self.outbox_shards = outbox_shards

    def unit(self, conn: Connection) -> MssanteWork:
        """Return the parts on ``conn``."""
        return MssanteWork(conn, self.outbox_shards)

    @asynccontextmanager
    async def reader_lock(self) -> AsyncIterator[bool]:
        """Hold the notice reader's advisory lock while the block runs; yield whether it was had.

        One reader at a time, whatever the number of delivery instances: a
        session lock on a connection kept for the reader's IMAP session.
        """
        async with connection(self.pool) as conn:
            held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", READER_LOCK))
            try:
                yield held
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock($1)", READER_LOCK)


__all__ = ["MailRow", "MailRows", "MssanteStore", "MssanteWork", "zam_kind"]
