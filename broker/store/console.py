"""What the operator console reads and changes: traffic, partners' health, messages, actions.

The console's routes (``broker/console/``) shape answers; this store runs the
statements. Reads are index lookups over the last hour or one message
(indexes of migrations 0500 and 0510); changes (a pause, a discarded dead
letter, a content view) are made in a :class:`ConsoleWork` together with
their audit events. Rows come back as plain dicts of column values: the
console turns them into its API models.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.ids import id_time
from broker.store import search
from broker.store.db import Connection
from broker.store.unit import AuditPart, UnitStore

Row = dict[str, Any]


@dataclass
class Traffic:
    """The last hour per minute and the queues now, as the flows page reads them."""

    received: list[Row] = field(default_factory=list)  # partner, ago, n, rejected
    delivered: list[Row] = field(default_factory=list)  # recipient, ago, n
    latency: list[Row] = field(default_factory=list)  # recipient, p50, p95
    failed: list[Row] = field(default_factory=list)  # recipient, ago, n
    queued: list[Row] = field(default_factory=list)  # recipient, n, oldest
    dead: list[Row] = field(default_factory=list)  # recipient, n
    paused: set[str] = field(default_factory=set)


def _rows(records: Sequence[Any]) -> list[Row]:
    return [dict(r) for r in records]


class TrafficRows:
    """Traffic per partner and queues (``messages``, ``deliveries``, ``delivery_pauses``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def last_hour(self, now: datetime, since: datetime) -> Traffic:
        """Read received/rejected, delivered, latency and failures per minute, and the queues."""
        conn = self.conn
        traffic = Traffic()
        traffic.received = _rows(
            await conn.fetch(
                "SELECT coalesce(sender, '') AS partner,"
                " floor(extract(epoch FROM $1 - received_at) / 60)::int AS ago,"
                " count(*) AS n, count(*) FILTER (WHERE status = 'rejected') AS rejected"
                " FROM messages WHERE received_at > $2 AND received_at <= $1 GROUP BY 1, 2",
                now,
                since,
            )
        )
        traffic.delivered = _rows(
            await conn.fetch(
                "SELECT recipient, floor(extract(epoch FROM $1 - delivered_at) / 60)::int AS ago,"
                " count(*) AS n FROM deliveries WHERE delivered_at > $2 AND delivered_at <= $1"
                " GROUP BY 1, 2",
                now,
                since,
            )
        )
        traffic.latency = _rows(
            await conn.fetch(
                "SELECT recipient,"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
                " delivered_at - message_received_at)) AS p50,"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM"
                " delivered_at - message_received_at)) AS p95"
                " FROM deliveries WHERE delivered_at > $2 AND delivered_at <= $1 GROUP BY 1",
                now,
                since,
            )
        )
        traffic.failed = _rows(
            await conn.fetch(
                "SELECT recipient, floor(extract(epoch FROM $1 - updated_at) / 60)::int AS ago,"
                " count(*) AS n FROM deliveries WHERE status IN ('failed', 'dead')"
                " AND updated_at > $2 AND updated_at <= $1 GROUP BY 1, 2",
                now,
                since,
            )
        )
        # A dead letter an operator discarded is neither queued nor dead any more.
        traffic.queued = _rows(
            await conn.fetch(
                "SELECT recipient, count(*) AS n, min(message_received_at) AS oldest"
                " FROM deliveries WHERE status IN ('pending', 'failed') AND discarded_at IS NULL"
                " GROUP BY 1"
            )
        )
        traffic.dead = _rows(
            await conn.fetch(
                "SELECT recipient, count(*) AS n FROM deliveries WHERE status = 'dead'"
                " AND discarded_at IS NULL GROUP BY 1"
            )
        )
        traffic.paused = {
            r["recipient"] for r in await conn.fetch("SELECT recipient FROM delivery_pauses")
        }
        return traffic

    async def health(self, ids: Sequence[str]) -> list[Row]:
        """Return each partner's last contact and newest delivery error (p, last_*)."""
        return _rows(
            await self.conn.fetch(
                "SELECT p,"
                " (SELECT max(received_at) FROM messages WHERE sender = p) AS last_received_at,"
                " (SELECT max(delivered_at) FROM deliveries WHERE recipient = p"
                "  AND delivered_at IS NOT NULL) AS last_delivered_at,"
                " e.last_error, e.updated_at AS last_error_at"
                " FROM unnest($1::text[]) AS p"
                " LEFT JOIN LATERAL (SELECT last_error, updated_at FROM deliveries"
                "  WHERE recipient = p AND last_error IS NOT NULL"
                "  ORDER BY updated_at DESC LIMIT 1) e ON true",
                list(ids),
            )
        )


class PauseRows:
    """Recipients whose deliveries an operator paused (``delivery_pauses``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def all(self) -> list[Row]:
        """Return every pause (recipient, reason, paused_by, paused_at)."""
        return _rows(
            await self.conn.fetch(
                "SELECT recipient, reason, paused_by, paused_at FROM delivery_pauses"
            )
        )

    async def add(self, recipient: str, reason: str, by: str) -> Row | None:
        """Pause a recipient; None when it already was."""
        row = await self.conn.fetchrow(
            "INSERT INTO delivery_pauses (recipient, reason, paused_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (recipient) DO NOTHING"
            " RETURNING recipient, reason, paused_by, paused_at",
            recipient,
            reason,
            by,
        )
        return dict(row) if row else None

    async def get(self, recipient: str) -> Row | None:
        """Return a recipient's pause, if any."""
        row = await self.conn.fetchrow(
            "SELECT recipient, reason, paused_by, paused_at FROM delivery_pauses"
            " WHERE recipient = $1",
            recipient,
        )
        return dict(row) if row else None

    async def remove(self, recipient: str) -> Row | None:
        """Resume a recipient; return the pause it had (paused_at, paused_by), if any."""
        row = await self.conn.fetchrow(
            "DELETE FROM delivery_pauses WHERE recipient = $1 RETURNING paused_at, paused_by",
            recipient,
        )
        return dict(row) if row else None


class DeadLetterRows:
    """Deliveries ``failed`` or ``dead`` not discarded (index ``deliveries_dead_letters``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def page(
        self, recipient: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Row]:
        """Return up to ``limit`` dead letters, newest first, before the ``after`` cursor."""
        return _rows(
            await self.conn.fetch(
                "SELECT d.id, d.message_id, d.control_id, m.message_type, m.sender, d.recipient,"
                " d.status, d.attempts, d.ack_code, d.last_error,"
                " d.message_received_at AS received_at, d.updated_at AS failed_at, d.replays"
                " FROM deliveries d LEFT JOIN messages m"
                " ON m.id = d.message_id AND m.received_at = d.message_received_at"
                " WHERE d.status IN ('failed', 'dead') AND d.discarded_at IS NULL"
                " AND ($1::text IS NULL OR d.recipient = $1)"
                " AND ($2::timestamptz IS NULL OR (d.updated_at, d.id) < ($2, $3::uuid))"
                " ORDER BY d.updated_at DESC, d.id DESC LIMIT $4",
                recipient,
                after[0] if after else None,
                after[1] if after else None,
                limit,
            )
        )

    async def discard(
        self, ids: Sequence[uuid.UUID], recipient: str | None, by: str, reason: str
    ) -> list[Row]:
        """Discard these dead letters (or all of a recipient's); return them."""
        return _rows(
            await self.conn.fetch(
                "UPDATE deliveries SET discarded_at = now(), discarded_by = $3,"
                " discard_reason = $4"
                " WHERE status IN ('failed', 'dead') AND discarded_at IS NULL"
                " AND (cardinality($1::uuid[]) = 0 OR id = ANY($1::uuid[]))"
                " AND ($2::text IS NULL OR recipient = $2)"
                " RETURNING id, message_id, control_id, recipient, status",
                list(ids),
                recipient,
                by,
                reason,
            )
        )


class MessageRows:
    """One message, its deliveries and their content; the operators' search."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def _one(self, message_id: uuid.UUID, query: str) -> Row | None:
        """Run ``query`` (``$1`` = id, ``$2`` = received_at or NULL), one partition first.

        ``messages`` is partitioned by ``received_at``, the time inside a
        carebroker UUIDv7 id: the first try reads one partition. An id made
        elsewhere, or a row whose time was set apart from its id, is then
        looked for in every partition through the ``messages_id`` index.
        """
        if message_id.version == 7:
            row = await self.conn.fetchrow(query, message_id, id_time(message_id))
            if row is not None:
                return dict(row)
        row = await self.conn.fetchrow(query, message_id, None)
        return dict(row) if row else None

    async def exists(self, message_id: uuid.UUID) -> bool:
        """Tell whether a message is stored."""
        return (
            await self._one(
                message_id,
                "SELECT true AS found FROM messages m WHERE m.id = $1"
                " AND ($2::timestamptz IS NULL OR m.received_at = $2)",
            )
            is not None
        )

    async def summary(self, message_id: uuid.UUID) -> Row | None:
        """Return a message's metadata (no payload)."""
        return await self._one(
            message_id,
            "SELECT id, received_at, channel, format, sender, control_id, message_type,"
            " version, status, reason, updated_at, peer, peer_certificate FROM messages m"
            " WHERE m.id = $1 AND ($2::timestamptz IS NULL OR m.received_at = $2)",
        )

    async def deliveries(self, message_id: uuid.UUID) -> list[Row]:
        """Return a message's deliveries (metadata only), oldest first."""
        return _rows(
            await self.conn.fetch(
                "SELECT id, recipient, status, attempts, last_error, rules, reasons, ack_code,"
                " flags, next_attempt_at, delivered_at, flagged_at IS NOT NULL AS flagged,"
                " replays, created_at, updated_at FROM deliveries WHERE message_id = $1"
                " ORDER BY created_at, recipient",
                message_id,
            )
        )

    async def original(self, message_id: uuid.UUID) -> Row | None:
        """Return a message's original bytes (``data``, None when gone) and what reads them."""
        return await self._one(
            message_id,
            "SELECT m.id, m.control_id, m.sender, m.charset, p.data, p.truncated"
            " FROM messages m LEFT JOIN payloads p"
            " ON p.message_id = m.id AND p.received_at = m.received_at"
            " WHERE m.id = $1 AND ($2::timestamptz IS NULL OR m.received_at = $2)",
        )

    async def delivery_content(self, message_id: uuid.UUID, delivery_id: uuid.UUID) -> Row | None:
        """Return what one recipient was sent (``payload``) and answered (``response``)."""
        row = await self.conn.fetchrow(
            "SELECT id, message_id, recipient, status, ack_code, control_id, content_type,"
            " payload, response FROM deliveries WHERE id = $1 AND message_id = $2",
            delivery_id,
            message_id,
        )
        return dict(row) if row else None

    async def search(
        self, filters: search.Filters, limit: int, after: search.Cursor | None
    ) -> tuple[search.Page, dict[uuid.UUID, search.Deliveries]]:
        """Return a page of the operators' search and how each message's deliveries stand."""
        page = await search.find(self.conn, filters, limit, after)
        deliveries = await search.deliveries_of(self.conn, [r["id"] for r in page.rows])
        return page, deliveries


class ConsoleWork:
    """One transaction (or connection) of the console, its parts sharing it."""

    def __init__(self, conn: Connection) -> None:
        self.traffic = TrafficRows(conn)
        self.pauses = PauseRows(conn)
        self.dead_letters = DeadLetterRows(conn)
        self.messages = MessageRows(conn)
        self.audit = AuditPart(conn)


class ConsoleStore(UnitStore[ConsoleWork]):
    """The console's reads and operator actions."""

    def unit(self, conn: Connection) -> ConsoleWork:
        """Return the console's parts on ``conn``."""
        return ConsoleWork(conn)


__all__ = ["ConsoleStore", "ConsoleWork", "Row", "Traffic"]
