"""The message store: accepted and rejected input, kept with its metadata and original bytes.

:meth:`MessageStore.accept` is the durable-accept step of design invariant 1:
one transaction stores a whole batch (metadata, original bytes, the
idempotency key with the answer to give, the outbox record for Kafka and the
``received`` audit event). Only after it commits may the caller send a positive
ACK. Batching is what makes durable ingress fast: one commit, one fsync, for
hundreds of messages from every open connection.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from broker import telemetry, topics
from broker.envelope import Channel, Envelope, Format
from broker.events import AuditEvent
from broker.ids import id_time
from broker.store import events as audit_events
from broker.store import outbox
from broker.store.db import connection, transaction

REJECTED_PAYLOAD_CAP = 1024 * 1024  # bytes of a refused frame kept for operators
LINKS_MAX = 128  # span links of one group commit to the traces it serves


@dataclass
class Accepted:
    """A message to store as accepted; ``answer`` is what a resend will get back."""

    envelope: Envelope
    answer: bytes
    actor: str = "ingress"
    peer: str | None = None  # source address ("host:port") of a network peer
    peer_certificate: str | None = None  # subject of its verified client certificate


@dataclass
class Rejected:
    """Refused input, kept with its reason so operators can see it (design invariant 2)."""

    message_id: uuid.UUID
    received_at: datetime
    channel: Channel
    format: Format
    payload: bytes
    reason: str
    answer: bytes | None = None
    sender: str | None = None
    sending_application: str = ""
    sending_facility: str = ""
    control_id: str = ""
    message_type: str = ""
    version: str = ""
    batch_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    actor: str = "ingress"
    size: int | None = None  # bytes received, when ``payload`` is already only the first ones
    peer: str | None = None
    peer_certificate: str | None = None

    @property
    def received_size(self) -> int:
        """Return how many bytes were received (``payload`` may hold fewer)."""
        return max(self.size or 0, len(self.payload))


@dataclass(frozen=True)
class AcceptResult:
    """What happened to one accepted message: stored now, or a duplicate of an earlier one."""

    message_id: uuid.UUID
    duplicate: bool
    answer: bytes


# Envelope fields stored as messages columns of the same name (id: message_id).
_ENVELOPE_COLUMNS = (
    "message_id",
    "received_at",
    "channel",
    "format",
    "sender",
    "sending_application",
    "sending_facility",
    "control_id",
    "message_type",
    "version",
    "batch_id",
    "charset",
)


class MessageStore:
    """Durable writes and lookups of messages (PostgreSQL, asyncpg)."""

    def __init__(
        self, pool: asyncpg.Pool, *, topic_prefix: str = "", outbox_shards: int = 8
    ) -> None:
        self.pool = pool
        self.topic_prefix = topic_prefix
        self.outbox_shards = outbox_shards

    async def accept(self, items: Sequence[Accepted]) -> list[AcceptResult]:
        """Store a batch durably, de-duplicating by (sender, MSH-3, control id).

        Returns one result per item, in order. A duplicate (of an earlier message
        or of an item earlier in the same batch) is not stored again: its result
        carries the original message id and answer. Raises StoreUnavailableError
        when nothing could be stored; then nothing was.
        """
        if not items:
            return []
        # A group commit serves many ingress traces: linked to each (up to a bound).
        links = [i.envelope.trace for i in items[:LINKS_MAX] if i.envelope.trace]
        with telemetry.internal_span(
            "store accept", {"carebroker.batch.size": len(items)}, links=links
        ) as span:
            results = await self._accept(items)
            span.set_attribute("carebroker.duplicates", sum(r.duplicate for r in results))
        return results

    async def _accept(self, items: Sequence[Accepted]) -> list[AcceptResult]:
        first_of: dict[tuple[str, str, str], int] = {}
        for i, item in enumerate(items):
            first_of.setdefault(_key(item.envelope), i)
        unique = [items[i] for i in sorted(first_of.values())]
        async with transaction(self.pool) as conn:
            inserted = {
                (r[0], r[1], r[2])
                for r in await conn.fetch(
                    "INSERT INTO ingress_keys (sender, sending_application, control_id,"
                    " message_id, received_at, ack)"
                    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[],"
                    " $5::timestamptz[], $6::bytea[])"
                    " ON CONFLICT DO NOTHING"
                    " RETURNING sender, sending_application, control_id",
                    *_columns(
                        unique,
                        lambda i: [
                            i.envelope.sender,
                            i.envelope.sending_application,
                            i.envelope.control_id,
                            i.envelope.message_id,
                            i.envelope.received_at,
                            i.answer,
                        ],
                    ),
                )
            }
            fresh = [i for i in unique if _key(i.envelope) in inserted]
            earlier = await self._earlier(conn, [k for k in first_of if k not in inserted])
            await self._insert_accepted(conn, fresh)
            results = self._results(items, first_of, inserted, earlier)
            duplicates = [
                (item, result)
                for item, result in zip(items, results, strict=True)
                if result.duplicate
            ]
            if duplicates:
                await conn.execute(
                    "UPDATE ingress_keys k SET duplicates = k.duplicates + d.n FROM"
                    " (SELECT s, a, c, count(*) AS n FROM unnest($1::text[], $2::text[],"
                    " $3::text[]) AS t(s, a, c) GROUP BY s, a, c) d"
                    " WHERE (k.sender, k.sending_application, k.control_id) = (d.s, d.a, d.c)",
                    *_columns([d[0] for d in duplicates], lambda i: list(_key(i.envelope))),
                )
            await audit_events.record(
                conn,
                [
                    *(
                        AuditEvent(
                            kind="received",
                            actor=i.actor,
                            message_id=i.envelope.message_id,
                            control_id=i.envelope.control_id,
                            partner=i.envelope.sender,
                            detail=_with_peer(
                                {
                                    "message_type": i.envelope.message_type,
                                    "channel": i.envelope.channel,
                                    "size": len(i.envelope.payload),
                                },
                                i,
                            ),
                        )
                        for i in fresh
                    ),
                    *(
                        AuditEvent(
                            kind="duplicate",
                            actor=i.actor,
                            message_id=r.message_id,
                            control_id=i.envelope.control_id,
                            partner=i.envelope.sender,
                        )
                        for i, r in duplicates
                    ),
                ],
            )
        return results

    async def _earlier(
        self, conn: asyncpg.Connection, keys: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], tuple[uuid.UUID, bytes]]:
        if not keys:
            return {}
        rows = await conn.fetch(
            "SELECT k.sender, k.sending_application, k.control_id, k.message_id, k.ack"
            " FROM ingress_keys k JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(s, a, c)"
            " ON (k.sender, k.sending_application, k.control_id) = (t.s, t.a, t.c)",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
        )
        return {(r[0], r[1], r[2]): (r[3], r[4] or b"") for r in rows}

    @staticmethod
    def _results(
        items: Sequence[Accepted],
        first_of: dict[tuple[str, str, str], int],
        inserted: set[tuple[str, str, str]],
        earlier: dict[tuple[str, str, str], tuple[uuid.UUID, bytes]],
    ) -> list[AcceptResult]:
        results = []
        for i, item in enumerate(items):
            key = _key(item.envelope)
            if key in inserted:
                first = items[first_of[key]]
                duplicate = i != first_of[key]
                results.append(AcceptResult(first.envelope.message_id, duplicate, first.answer))
            else:
                message_id, answer = earlier[key]
                results.append(AcceptResult(message_id, True, answer))
        return results

    async def _insert_accepted(self, conn: asyncpg.Connection, fresh: list[Accepted]) -> None:
        if not fresh:
            return
        envelopes = [i.envelope for i in fresh]
        # Serialise each envelope once: the stored routing view is the Kafka
        # record without its payload (the payload is the envelope's last field).
        views = [e.model_dump_json(exclude={"payload"}) for e in envelopes]
        # One statement for the batch (unnest), not one per row: a text[] column
        # cannot be unnested from a ragged 2-D array, so each message's patient
        # digests (32 hex characters each) travel space-joined.
        await conn.execute(
            "INSERT INTO messages (id, received_at, channel, format, sender, sending_application,"
            " sending_facility, control_id, message_type, version, status, batch_id, charset,"
            " size, patient_digests, envelope, ack, peer, peer_certificate)"
            " SELECT id, received_at, channel, format, sender, sending_application,"
            " sending_facility, control_id, message_type, version, 'accepted', batch_id, charset,"
            " size, string_to_array(digests, ' '), envelope::jsonb, ack, peer, peer_certificate"
            " FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],"
            " $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
            " $12::text[], $13::integer[], $14::text[], $15::text[], $16::bytea[], $17::text[],"
            " $18::text[])"
            " AS t(id, received_at, channel, format, sender, sending_application,"
            " sending_facility, control_id, message_type, version, batch_id, charset, size,"
            " digests, envelope, ack, peer, peer_certificate)",
            *(
                [getattr(e, name) for e in envelopes]
                for name in _ENVELOPE_COLUMNS  # $1 to $12, in this order
            ),
            [len(e.payload) for e in envelopes],
            [" ".join(k.digest for k in e.patient_keys) for e in envelopes],
            views,
            [i.answer for i in fresh],
            [i.peer for i in fresh],
            [i.peer_certificate for i in fresh],
        )
        await conn.execute(
            "INSERT INTO payloads (message_id, received_at, data)"
            " SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bytea[])",
            [e.message_id for e in envelopes],
            [e.received_at for e in envelopes],
            [e.payload for e in envelopes],
        )
        accepted_topic = topics.ACCEPTED.full_name(self.topic_prefix)
        # The trace the ingress started, else the store span: the relay
        # continues it into Kafka headers.
        here = telemetry.current_context() or None
        await outbox.insert(
            conn,
            [
                outbox.OutboxRow(
                    accepted_topic,
                    with_payload(view, e.payload),
                    e.ordering_key.encode(),
                    headers=e.trace or here,
                )
                for e, view in zip(envelopes, views, strict=True)
            ],
            self.outbox_shards,
        )

    async def reject(self, items: Sequence[Rejected]) -> None:
        """Keep refused input with its reason (bytes capped) and audit the refusal."""
        if not items:
            return
        items = [_storable(r) for r in items]
        with telemetry.internal_span("store reject", {"carebroker.batch.size": len(items)}):
            await self._reject(items)

    async def _reject(self, items: Sequence[Rejected]) -> None:
        async with transaction(self.pool) as conn:
            await conn.executemany(
                "INSERT INTO messages (id, received_at, channel, format, sender,"
                " sending_application, sending_facility, control_id, message_type, version,"
                " status, reason, batch_id, size, ack, peer, peer_certificate)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'rejected', $11, $12, $13, $14,"
                " $15, $16)",
                [
                    (
                        r.message_id,
                        r.received_at,
                        r.channel,
                        r.format,
                        r.sender,
                        r.sending_application,
                        r.sending_facility,
                        r.control_id,
                        r.message_type,
                        r.version,
                        r.reason,
                        r.batch_id,
                        r.received_size,
                        r.answer,
                        r.peer,
                        r.peer_certificate,
                    )
                    for r in items
                ],
            )
            await conn.execute(
                "INSERT INTO payloads (message_id, received_at, data, truncated)"
                " SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bytea[], $4::bool[])",
                [r.message_id for r in items],
                [r.received_at for r in items],
                [r.payload[:REJECTED_PAYLOAD_CAP] for r in items],
                [r.received_size > min(len(r.payload), REJECTED_PAYLOAD_CAP) for r in items],
            )
            await audit_events.record(
                conn,
                [
                    AuditEvent(
                        kind="rejected",
                        actor=r.actor,
                        outcome="minor_failure",
                        message_id=r.message_id,
                        control_id=r.control_id or None,
                        partner=r.sender,
                        detail={"reason": r.reason, **r.detail},
                    )
                    for r in items
                ],
            )

    async def get(self, message_id: uuid.UUID) -> dict[str, Any] | None:
        """Return one message's metadata (no payload), or None."""
        async with connection(self.pool) as conn:
            row = await conn.fetchrow(
                "SELECT id, received_at, channel, format, sender, sending_application,"
                " sending_facility, control_id, message_type, version, status, reason, batch_id,"
                " charset, size, updated_at, peer, peer_certificate"
                " FROM messages WHERE id = $1 AND received_at = $2",
                message_id,
                id_time(message_id),
            )
        return dict(row) if row else None

    async def payload(self, message_id: uuid.UUID) -> bytes | None:
        """Return the original bytes of a message, or None when gone (retention)."""
        async with connection(self.pool) as conn:
            data: bytes | None = await conn.fetchval(
                "SELECT data FROM payloads WHERE message_id = $1 AND received_at = $2",
                message_id,
                id_time(message_id),
            )
        return data


def with_payload(view: str, payload: bytes) -> bytes:
    """Return the full envelope JSON from its view without payload (``Envelope.payload`` last).

    Equal to ``envelope.model_dump_json().encode()``, without serialising twice.
    """
    encoded = base64.urlsafe_b64encode(payload)
    return b"".join((view[:-1].encode(), b',"payload":"', encoded, b'"}'))


def _with_peer(detail: dict[str, Any], item: Accepted) -> dict[str, Any]:
    """Add who sent it, as the network saw it, to a ``received`` event's detail."""
    if item.peer is not None:
        detail["peer"] = item.peer
    if item.peer_certificate is not None:
        detail["certificate_subject"] = item.peer_certificate
    return detail


def _key(envelope: Envelope) -> tuple[str, str, str]:
    return (envelope.sender, envelope.sending_application, envelope.control_id)


def _columns(items: Sequence[Any], row: Any) -> list[list[Any]]:
    rows = [row(i) for i in items]
    return [list(col) for col in zip(*rows, strict=True)] if rows else []


_TEXT_FIELDS = (
    "reason",
    "sending_application",
    "sending_facility",
    "control_id",
    "message_type",
    "version",
    "batch_id",
)


def _storable(item: Rejected) -> Rejected:
    """Return ``item`` with NUL replaced in its text: refused input is kept whatever it holds.

    PostgreSQL text cannot hold NUL; ingress refuses such input, and this keeps
    the refusal itself from failing (and losing the batch it is stored with).
    """
    changes: dict[str, Any] = {
        name: value.replace("\x00", "\ufffd")
        for name in _TEXT_FIELDS
        if isinstance(value := getattr(item, name), str) and "\x00" in value
    }
    return replace(item, **changes) if changes else item
