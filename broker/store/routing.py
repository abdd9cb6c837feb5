"""The routing and delivery store on PostgreSQL (the interface is ``broker.store.work``).

Tables: ``messages`` (status, envelope), ``payloads``, ``deliveries`` (one
row per message, recipient and kind, with its lane and partition),
``app_acks``, ``consent_oppositions``, ``delivery_pauses``, ``outbox`` and
``audit_pending``. Statements are batched (``unnest`` of arrays): one
statement per table per unit of work, whatever the batch size. Indexes the
lane queries rely on: ``deliveries_pending`` (partition, lane, acceptance
order) and ``deliveries_mailbox``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from broker.envelope import Envelope
from broker.store import outbox
from broker.store.db import Connection, Pool
from broker.store.unit import AuditPart, UnitStore
from broker.store.work import (
    Changed,
    Claim,
    FinalDelivery,
    Flagged,
    Head,
    LaneHead,
    MailboxAck,
    MailboxEntry,
    MailboxItem,
    NewDelivery,
    OutcomeUpdate,
    OwedAck,
    Replayable,
    ReplaySelection,
    Reset,
)


class PgMessages:
    """Messages as routing sees them (``messages``, ``payloads``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def claim(self, claims: Sequence[Claim]) -> set[uuid.UUID]:
        """Give messages still ``accepted`` their status (one statement locks and updates)."""
        if not claims:
            return set()
        # A second router holding the same record (a rebalance) waits on the row,
        # then finds it routed and skips it.
        rows = await self.conn.fetch(
            "UPDATE messages m SET status = t.status, reason = t.reason, updated_at = now()"
            " FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[])"
            " AS t(id, at, status, reason)"
            " WHERE m.id = t.id AND m.received_at = t.at AND m.status = 'accepted'"
            " RETURNING m.id",
            [c.message_id for c in claims],
            [c.received_at for c in claims],
            [c.status for c in claims],
            [c.reason for c in claims],
        )
        return {r["id"] for r in rows}

    async def envelopes(
        self, keys: Sequence[tuple[uuid.UUID, datetime]]
    ) -> dict[uuid.UUID, Envelope]:
        """Return the stored envelopes with their payloads (retention may have taken some)."""
        if not keys:
            return {}
        rows = await self.conn.fetch(
            "SELECT m.id, m.envelope, p.data FROM unnest($1::uuid[], $2::timestamptz[])"
            " AS k(id, at) JOIN messages m ON m.id = k.id AND m.received_at = k.at"
            " JOIN payloads p ON p.message_id = m.id AND p.received_at = m.received_at",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {
            r["id"]: Envelope.model_validate({**r["envelope"], "payload": r["data"]})
            for r in rows
            if r["envelope"] is not None
        }

    async def reroute(
        self,
        *,
        message_id: uuid.UUID | None,
        sender: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Put selected ``unroutable`` messages back to ``accepted``."""
        rows = await self.conn.fetch(
            "UPDATE messages m SET status = 'accepted', reason = NULL, updated_at = now()"
            " WHERE m.status = 'unroutable'"
            " AND ($1::uuid IS NULL OR m.id = $1)"
            " AND ($2::text IS NULL OR m.sender = $2)"
            " AND ($3::timestamptz IS NULL OR m.received_at >= $3)"
            " AND ($4::timestamptz IS NULL OR m.received_at < $4)"
            " RETURNING m.id, m.received_at",
            message_id,
            sender,
            since,
            until,
        )
        return [(r["id"], r["received_at"]) for r in rows]


class PgDeliveries:
    """Delivery rows (``deliveries``, with ``delivery_pauses`` left out of the heads)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, rows: Sequence[NewDelivery]) -> set[uuid.UUID]:
        """Insert deliveries (``ON CONFLICT (message_id, recipient, kind) DO NOTHING``)."""
        if not rows:
            return set()
        inserted = await self.conn.fetch(
            "INSERT INTO deliveries (id, message_id, message_received_at, recipient, rules, lane,"
            " partition, status, payload, content_type, flags, last_error, reasons, control_id,"
            " trace, kind)"
            " SELECT t.id, t.message_id, t.at, t.recipient,"
            " string_to_array(t.rules, ','), t.lane, t.partition, t.status, t.payload,"
            " t.content_type, string_to_array(t.flags, ','), t.last_error, t.reasons::jsonb,"
            " t.control_id, t.trace, t.kind"
            " FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[],"
            " $6::text[], $7::integer[], $8::text[], $9::bytea[], $10::text[], $11::text[],"
            " $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::text[])"
            " AS t(id, message_id, at, recipient, rules, lane, partition, status, payload,"
            " content_type, flags, last_error, reasons, control_id, trace, kind)"
            " ON CONFLICT (message_id, recipient, kind) DO NOTHING RETURNING id",
            [r.id for r in rows],
            [r.message_id for r in rows],
            [r.message_received_at for r in rows],
            [r.recipient for r in rows],
            [",".join(r.rules) for r in rows],
            [r.lane for r in rows],
            [r.partition for r in rows],
            [r.status for r in rows],
            [r.payload for r in rows],
            [r.content_type for r in rows],
            [",".join(r.flags) for r in rows],
            [r.last_error for r in rows],
            [json.dumps(r.reasons) for r in rows],
            [r.control_id for r in rows],
            [r.trace or None for r in rows],
            [r.kind for r in rows],
        )
        return {r["id"] for r in inserted}

    async def scan_heads(
        self,
        partitions: Sequence[int],
        busy_lanes: Sequence[str],
        open_circuits: Sequence[str],
        limit: int,
    ) -> list[LaneHead]:
        """Return every lane's head (index ``deliveries_pending``), oldest first."""
        rows = await self.conn.fetch(
            "SELECT h.id, h.partition, h.lane,"
            " GREATEST(0, extract(epoch FROM h.next_attempt_at - now()))::float8 AS wait_s"
            " FROM (SELECT DISTINCT ON (partition, lane) id, partition, lane,"
            "  recipient, next_attempt_at, message_received_at, message_id"
            "  FROM deliveries WHERE status = 'pending' AND posted_at IS NULL"
            "  AND partition = ANY($1::int[])"
            "  ORDER BY partition, lane, message_received_at, message_id) h"
            " WHERE h.lane NOT IN (SELECT unnest($2::text[]))"  # hashed: thousands in flight
            # A recipient whose circuit is open, or that an operator paused (from the
            # console), is left alone by every instance; so in probe_heads.
            " AND NOT (h.recipient = ANY($3::text[]))"
            " AND NOT EXISTS (SELECT 1 FROM delivery_pauses p WHERE p.recipient = h.recipient)"
            " ORDER BY h.message_received_at, h.message_id LIMIT $4",
            list(partitions),
            list(busy_lanes),
            list(open_circuits),
            limit,
        )
        return [LaneHead(*r) for r in rows]

    async def probe_heads(
        self, lanes: Sequence[tuple[int, str]], open_circuits: Sequence[str]
    ) -> list[LaneHead]:
        """Return the heads of these lanes: one index probe each."""
        if not lanes:
            return []
        rows = await self.conn.fetch(
            "SELECT h.id, h.partition, h.lane,"
            " GREATEST(0, extract(epoch FROM h.next_attempt_at - now()))::float8 AS wait_s"
            " FROM unnest($1::int[], $2::text[]) AS c(partition, lane)"
            " CROSS JOIN LATERAL (SELECT id, partition, lane, recipient, next_attempt_at,"
            "  message_received_at, message_id FROM deliveries"
            "  WHERE partition = c.partition AND lane = c.lane"
            "  AND status = 'pending' AND posted_at IS NULL"
            "  ORDER BY message_received_at, message_id LIMIT 1) h"
            " WHERE NOT (h.recipient = ANY($3::text[]))"
            " AND NOT EXISTS (SELECT 1 FROM delivery_pauses p WHERE p.recipient = h.recipient)"
            " ORDER BY h.message_received_at, h.message_id",
            [lane[0] for lane in lanes],
            [lane[1] for lane in lanes],
            list(open_circuits),
        )
        return [LaneHead(*r) for r in rows]

    async def load_heads(self, ids: Sequence[uuid.UUID]) -> list[Head]:
        """Return these deliveries if still pending, in acceptance order."""
        if not ids:
            return []
        rows = await self.conn.fetch(
            "SELECT id, message_id, control_id, recipient, lane, partition, attempts,"
            " COALESCE(replayed_at, created_at) AS since, content_type, payload, kind, trace"
            " FROM deliveries WHERE id = ANY($1::uuid[]) AND status = 'pending'"
            " ORDER BY message_received_at, message_id",
            list(ids),
        )
        return [Head(**dict(r)) for r in rows]

    async def record_outcomes(self, updates: Sequence[OutcomeUpdate]) -> list[Changed]:
        """Write outcomes in one statement; return the rows written."""
        if not updates:
            return []
        changed = await self.conn.fetch(
            "UPDATE deliveries d SET status = t.status, attempts = d.attempts + 1,"
            " next_attempt_at = COALESCE(t.next_at, d.next_attempt_at),"
            " last_error = t.error, response = COALESCE(t.response, d.response),"
            " ack_code = t.ack_code, delivered_at = t.delivered_at,"
            " posted_at = COALESCE(t.posted_at, d.posted_at), updated_at = now()"
            " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[],"
            " $6::text[], $7::timestamptz[], $8::timestamptz[])"
            " AS t(id, status, next_at, error, response, ack_code, delivered_at, posted_at)"
            " WHERE d.id = t.id AND (d.status = 'pending'"
            " OR (d.status = 'blocked' AND t.status = 'delivered'))"
            " RETURNING d.id, d.message_id, d.kind, d.status",
            [u.id for u in updates],
            [u.status for u in updates],
            [u.next_attempt_at for u in updates],
            [u.error for u in updates],
            [u.response for u in updates],
            [u.ack_code for u in updates],
            [u.delivered_at for u in updates],
            [u.posted_at for u in updates],
        )
        return [Changed(*r) for r in changed]

    async def final_states(self, message_ids: Sequence[uuid.UUID]) -> list[FinalDelivery]:
        """Return the ``message`` deliveries of these messages."""
        if not message_ids:
            return []
        rows = await self.conn.fetch(
            "SELECT message_id, recipient, status, last_error, response, ack_code FROM deliveries"
            " WHERE message_id = ANY($1::uuid[]) AND kind = 'message'",
            list(message_ids),
        )
        return [FinalDelivery(**dict(r)) for r in rows]

    async def flag_unacknowledged(
        self, mailboxes: Sequence[tuple[str, float]], partitions: Sequence[int]
    ) -> list[Flagged]:
        """Flag posted mailbox deliveries of ``partitions`` unacknowledged past their limit."""
        if not mailboxes or not partitions:
            return []
        rows = await self.conn.fetch(
            "UPDATE deliveries d SET flagged_at = now(), updated_at = now(),"
            " last_error = 'not acknowledged by the partner within '"
            " || t.after_s::bigint || ' s'"
            " FROM unnest($1::text[], $2::float8[]) AS t(recipient, after_s)"
            " WHERE d.recipient = t.recipient AND d.status = 'pending'"
            " AND d.posted_at IS NOT NULL AND d.flagged_at IS NULL"
            " AND d.posted_at < now() - make_interval(secs => t.after_s)"
            " AND d.partition = ANY($3::int[])"
            " RETURNING d.id, d.message_id, d.recipient, d.control_id",
            [m[0] for m in mailboxes],
            [m[1] for m in mailboxes],
            list(partitions),
        )
        return [Flagged(*r) for r in rows]

    async def replayable(self, selection: ReplaySelection) -> list[Replayable]:
        """Return and lock (``FOR UPDATE``) the deliveries a replay selects."""
        rows = await self.conn.fetch(
            "SELECT d.id, d.message_id, d.message_received_at, d.recipient, d.lane, d.partition,"
            " d.status, d.payload IS NULL AS needs_render, d.control_id, m.patient_digests,"
            " d.discarded_at IS NOT NULL AS discarded"
            " FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id AND m.received_at = d.message_received_at"
            " WHERE d.status = ANY($1::text[])"
            " AND ($2::uuid IS NULL OR d.message_id = $2)"
            " AND ($3::text IS NULL OR d.recipient = $3)"
            " AND ($4::timestamptz IS NULL OR d.message_received_at >= $4)"
            " AND ($5::timestamptz IS NULL OR d.message_received_at < $5)"
            " AND (cardinality($6::uuid[]) = 0 OR d.id = ANY($6::uuid[]))"
            " ORDER BY d.message_received_at, d.message_id FOR UPDATE OF d",
            sorted(selection.statuses),
            selection.message_id,
            selection.recipient,
            selection.since,
            selection.until,
            list(selection.delivery_ids),
        )
        return [
            Replayable(**{**dict(r), "patient_digests": list(r["patient_digests"] or [])})
            for r in rows
        ]

    async def reset(self, resets: Sequence[Reset]) -> None:
        """Put deliveries back to pending: attempts 0, due now, not discarded, not posted."""
        if not resets:
            return
        await self.conn.execute(
            "UPDATE deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(),"
            " replayed_at = now(), replays = d.replays + 1, last_error = NULL,"
            " posted_at = NULL, fetched_at = NULL, flagged_at = NULL, delivered_at = NULL,"
            " discarded_at = NULL, discarded_by = NULL, discard_reason = NULL,"
            " payload = COALESCE(t.payload, d.payload),"
            " content_type = COALESCE(t.content_type, d.content_type),"
            " flags = COALESCE(string_to_array(t.flags, ','), d.flags),"
            " control_id = COALESCE(t.control_id, d.control_id), updated_at = now()"
            " FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], $5::text[])"
            " AS t(id, payload, content_type, flags, control_id) WHERE d.id = t.id",
            [r.id for r in resets],
            [r.payload for r in resets],
            [r.content_type for r in resets],
            [",".join(r.flags) if r.flags is not None else None for r in resets],
            [r.control_id for r in resets],
        )

    async def mailbox(self, recipient: str, limit: int) -> list[MailboxEntry]:
        """Return the posted, unacknowledged messages of a mailbox, oldest first."""
        rows = await self.conn.fetch(
            "SELECT d.id, d.message_id, d.control_id, m.message_type,"
            " d.message_received_at AS received_at, d.posted_at, d.content_type,"
            " octet_length(d.payload) AS size, d.fetched_at IS NOT NULL AS fetched"
            " FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id AND m.received_at = d.message_received_at"
            " WHERE d.recipient = $1 AND d.status = 'pending' AND d.posted_at IS NOT NULL"
            " ORDER BY d.message_received_at, d.message_id LIMIT $2",
            recipient,
            limit,
        )
        return [MailboxEntry(**dict(r)) for r in rows]

    async def mailbox_fetch(self, delivery_id: uuid.UUID, recipient: str) -> MailboxItem | None:
        """Return one mailbox message; note the first fetch."""
        row = await self.conn.fetchrow(
            "SELECT id, message_id, control_id, payload, content_type, fetched_at"
            " FROM deliveries WHERE id = $1 AND recipient = $2 AND posted_at IS NOT NULL"
            " AND status IN ('pending', 'delivered')",
            delivery_id,
            recipient,
        )
        if row is None:
            return None
        first = row["fetched_at"] is None
        if first:
            await self.conn.execute(
                "UPDATE deliveries SET fetched_at = now(), updated_at = now() WHERE id = $1",
                delivery_id,
            )
        return MailboxItem(
            row["id"],
            row["message_id"],
            row["control_id"],
            row["payload"],
            row["content_type"],
            first,
        )

    async def mailbox_ack(self, delivery_id: uuid.UUID, recipient: str) -> MailboxAck:
        """Mark a posted mailbox message delivered; tell how it stood when it already was."""
        row = await self.conn.fetchrow(
            "UPDATE deliveries SET status = 'delivered', delivered_at = now(),"
            " ack_code = 'mailbox-ack', last_error = NULL, updated_at = now()"
            " WHERE id = $1 AND recipient = $2 AND posted_at IS NOT NULL"
            " AND status = 'pending' RETURNING message_id, control_id, kind",
            delivery_id,
            recipient,
        )
        if row is not None:
            return MailboxAck("delivered", True, row["message_id"], row["control_id"], row["kind"])
        status = await self.conn.fetchval(
            "SELECT status FROM deliveries WHERE id = $1 AND recipient = $2"
            " AND posted_at IS NOT NULL",
            delivery_id,
            recipient,
        )
        return MailboxAck(status)


class PgAppAcks:
    """Application ACKs owed (``app_acks``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def expect(self, owed: Sequence[OwedAck]) -> None:
        """Note ACKs owed (``ON CONFLICT (message_id) DO NOTHING``)."""
        if not owed:
            return
        await self.conn.execute(
            "INSERT INTO app_acks (message_id, message_received_at, sender, condition, header,"
            " codec, ordering_key, trace)"
            " SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],"
            " $5::text[], $6::text[], $7::text[], $8::jsonb[])"
            " ON CONFLICT (message_id) DO NOTHING",
            [o.message_id for o in owed],
            [o.message_received_at for o in owed],
            [o.sender for o in owed],
            [o.condition for o in owed],
            [o.header for o in owed],
            [o.codec for o in owed],
            [o.ordering_key for o in owed],
            [o.trace for o in owed],
        )

    async def lock_waiting(self, message_ids: Sequence[uuid.UUID]) -> list[OwedAck]:
        """Return and lock (``FOR UPDATE``, in message id order) the ACKs still waiting."""
        ids = sorted(set(message_ids))
        if not ids:
            return []
        rows = await self.conn.fetch(
            "SELECT message_id, message_received_at, sender, condition, header, codec,"
            " ordering_key, trace FROM app_acks"
            " WHERE message_id = ANY($1::uuid[]) AND status = 'waiting'"
            " ORDER BY message_id FOR UPDATE",
            ids,
        )
        return [OwedAck(**dict(r)) for r in rows]

    async def decide(
        self, message_id: uuid.UUID, status: str, code: str, reason: str | None
    ) -> None:
        """Record the decision about one owed ACK."""
        await self.conn.execute(
            "UPDATE app_acks SET status = $2, code = $3, reason = $4, decided_at = now()"
            " WHERE message_id = $1",
            message_id,
            status,
            code,
            reason,
        )

    async def stale(self, older_than_s: float, limit: int) -> list[uuid.UUID]:
        """Return waiting ACKs whose message has deliveries, none of them pending."""
        # Only those with deliveries, none pending: a delivery retrying for days
        # must not keep newer ones out of the batch.
        rows = await self.conn.fetch(
            "SELECT a.message_id FROM app_acks a WHERE a.status = 'waiting'"
            " AND a.message_received_at < now() - make_interval(secs => $1)"
            " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = a.message_id"
            "  AND d.kind = 'message')"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = a.message_id"
            "  AND d.kind = 'message' AND d.status = 'pending')"
            " ORDER BY a.message_received_at LIMIT $2",
            older_than_s,
            limit,
        )
        return [r["message_id"] for r in rows]

    async def count_decided(self, message_ids: Sequence[uuid.UUID]) -> int:
        """Return how many of these messages' ACKs are decided."""
        if not message_ids:
            return 0
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM app_acks WHERE message_id = ANY($1::uuid[])"
            " AND status <> 'waiting'",
            list(message_ids),
        )
        return count


class PgConsentView:
    """Patient oppositions (``consent_oppositions``), read by routing and replay."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def opposed(self, digests: Iterable[str]) -> set[str]:
        """Return which of these digests have an opposition on file."""
        wanted = list(set(digests))
        if not wanted:
            return set()
        rows = await self.conn.fetch(
            "SELECT digest FROM consent_oppositions WHERE digest = ANY($1::text[])", wanted
        )
        return {r["digest"] for r in rows}


class PgOutbox:
    """The outbox, written in the unit of work's transaction."""

    def __init__(self, conn: Connection, shards: int) -> None:
        self.conn = conn
        self.shards = shards

    async def publish(self, rows: Sequence[outbox.OutboxRow]) -> None:
        """Insert outbox rows; the relay wakes at commit."""
        await outbox.insert(self.conn, rows, self.shards)


class PgWork:
    """One PostgreSQL transaction (or connection), its parts sharing it."""

    def __init__(self, conn: Connection, outbox_shards: int) -> None:
        self.conn = conn
        self._messages = PgMessages(conn)
        self._deliveries = PgDeliveries(conn)
        self._acks = PgAppAcks(conn)
        self._consent = PgConsentView(conn)
        self._outbox = PgOutbox(conn, outbox_shards)
        self._audit = AuditPart(conn)

    @property
    def messages(self) -> PgMessages:
        """Messages as routing sees them."""
        return self._messages

    @property
    def deliveries(self) -> PgDeliveries:
        """Delivery rows."""
        return self._deliveries

    @property
    def acks(self) -> PgAppAcks:
        """Application ACKs owed."""
        return self._acks

    @property
    def consent(self) -> PgConsentView:
        """Patient oppositions."""
        return self._consent

    @property
    def outbox(self) -> PgOutbox:
        """Records for Kafka."""
        return self._outbox

    @property
    def audit(self) -> AuditPart:
        """Audit events."""
        return self._audit


class PgRoutingStore(UnitStore[PgWork]):
    """The routing and delivery store on a PostgreSQL pool."""

    def __init__(self, pool: Pool, *, outbox_shards: int = 8) -> None:
        super().__init__(pool)
        self.outbox_shards = outbox_shards

    def unit(self, conn: Connection) -> PgWork:
        """Return the routing tables' parts on ``conn``."""
        return PgWork(conn, self.outbox_shards)


__all__ = ["PgRoutingStore", "PgWork"]
