"""Re-deliver from the store: dead letters after a fix, a partner after an outage, one message.

``carebroker replay`` selects deliveries by message id, recipient partner
and/or time range (message acceptance time) and puts them back to
``pending`` with a fresh attempt budget; the owning delivery instance is woken
through the outbox. By default only dead letters (``failed``, ``dead``) are
replayed: what a partner already acknowledged is not sent again, so a replay
never duplicates on the partner side. ``include_delivered`` re-sends those
too (the partner recognises the same MSH-10 / Bundle.identifier as a resend).

- The stored bytes are sent again, unchanged; a delivery that has none
  (blocked, or refused by the render) is rendered afresh with the current
  directory.
- A ``blocked`` delivery is replayed only when asked for by status and only
  if the patient no longer has an opposition on file.
- A message that was ``unroutable`` (say, before its recipient was added to
  the directory) is routed again when selected by id or with ``unroutable``.
- A dead letter an operator discarded (``discarded_at``, from the console)
  is left alone by a replay by partner or time range; selecting it by its
  message or delivery id replays it, and it is no longer discarded.

Each replayed delivery or message gets a ``replayed`` audit event naming the
operator (and the reason, when given).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from broker import topics
from broker.directory import Directory
from broker.envelope import DeliveryRequest, Envelope
from broker.events import AuditEvent
from broker.store import events, outbox
from broker.store.db import transaction
from routing import consent
from routing.render import RenderError, render_for

DEAD_LETTERS = ("failed", "dead")


@dataclass(frozen=True)
class Selection:
    """Which deliveries (and unroutable messages) to replay."""

    message_id: uuid.UUID | None = None
    delivery_ids: Sequence[uuid.UUID] = ()
    partner: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    statuses: Sequence[str] = DEAD_LETTERS
    include_delivered: bool = False
    unroutable: bool = False
    reason: str | None = None

    def is_empty(self) -> bool:
        """Tell whether nothing narrows the selection (refused: too broad by accident)."""
        return (
            self.message_id is None
            and not self.delivery_ids
            and self.partner is None
            and self.since is None
        )

    def names_deliveries(self) -> bool:
        """Tell whether the selection names messages or deliveries, not a range."""
        return self.message_id is not None or bool(self.delivery_ids)


@dataclass
class ReplayResult:
    """What a replay did."""

    deliveries: int = 0
    rerouted: int = 0
    skipped: list[str] = field(default_factory=list)


async def replay(
    pool: asyncpg.Pool,
    directory: Directory,
    selection: Selection,
    *,
    actor: str,
    topic_prefix: str,
    outbox_shards: int,
) -> ReplayResult:
    """Put the selected deliveries back to pending, re-route selected unroutable messages."""
    statuses = set(selection.statuses) | ({"delivered"} if selection.include_delivered else set())
    result = ReplayResult()
    deliveries_topic = topics.DELIVERIES.full_name(topic_prefix)
    async with transaction(pool) as conn:
        rows = await conn.fetch(
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
            sorted(statuses),
            selection.message_id,
            selection.partner,
            selection.since,
            selection.until,
            list(selection.delivery_ids),
        )
        opposed = await consent.opposed(conn, (d for r in rows for d in r["patient_digests"]))
        replayed: list[asyncpg.Record] = []
        payloads: dict[uuid.UUID, tuple[bytes, str, list[str], str | None]] = {}
        for row in rows:
            if row["discarded"] and not selection.names_deliveries():
                result.skipped.append(f"{row['id']}: discarded by an operator")
                continue
            if row["status"] == "blocked" and opposed & set(row["patient_digests"]):
                result.skipped.append(f"{row['id']}: patient opposition still on file")
                continue
            if row["needs_render"]:
                rendered = await _render_again(conn, directory, row)
                if isinstance(rendered, str):
                    result.skipped.append(f"{row['id']}: {rendered}")
                    continue
                payloads[row["id"]] = rendered
            replayed.append(row)
        if replayed:
            await conn.execute(
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
                [r["id"] for r in replayed],
                [payloads[r["id"]][0] if r["id"] in payloads else None for r in replayed],
                [payloads[r["id"]][1] if r["id"] in payloads else None for r in replayed],
                [",".join(payloads[r["id"]][2]) if r["id"] in payloads else None for r in replayed],
                [payloads[r["id"]][3] if r["id"] in payloads else None for r in replayed],
            )
            await outbox.insert(
                conn,
                [
                    outbox.OutboxRow(
                        deliveries_topic,
                        DeliveryRequest(
                            delivery_id=r["id"],
                            message_id=r["message_id"],
                            recipient=r["recipient"],
                            lane=r["lane"],
                        )
                        .model_dump_json()
                        .encode(),
                        r["lane"].encode(),
                        r["partition"],
                    )
                    for r in replayed
                ],
                outbox_shards,
            )
            await events.record(
                conn,
                [
                    AuditEvent(
                        kind="replayed",
                        actor=actor,
                        message_id=r["message_id"],
                        control_id=r["control_id"] or None,
                        recipient=r["recipient"],
                        detail={
                            "delivery_id": str(r["id"]),
                            "previous_status": r["status"],
                            **({"reason": selection.reason} if selection.reason else {}),
                        },
                    )
                    for r in replayed
                ],
            )
        result.deliveries = len(replayed)
        if selection.unroutable or selection.message_id is not None:
            result.rerouted = await _reroute(conn, selection, actor, topic_prefix, outbox_shards)
    return result


async def _render_again(
    conn: asyncpg.Connection, directory: Directory, row: asyncpg.Record
) -> tuple[bytes, str, list[str], str | None] | str:
    partner = directory.partner(row["recipient"])
    if partner is None or partner.endpoint is None:
        return f"partner {row['recipient']} is not in the directory or has no endpoint"
    envelope = await _envelope(conn, row["message_id"], row["message_received_at"])
    if envelope is None:
        return "the original message is no longer in the store (retention)"
    identity = envelope.identity
    try:
        rendered = render_for(
            envelope,
            partner,
            strip_ins=identity.ins_present and not identity.ins_qualified,
            sender=directory.partner(envelope.sender),
        )
    except RenderError as exc:
        return str(exc)
    return rendered.payload, rendered.content_type, list(rendered.flags), rendered.control_id


async def _envelope(
    conn: asyncpg.Connection, message_id: uuid.UUID, received_at: datetime
) -> Envelope | None:
    row = await conn.fetchrow(
        "SELECT m.envelope, p.data FROM messages m JOIN payloads p"
        " ON p.message_id = m.id AND p.received_at = m.received_at"
        " WHERE m.id = $1 AND m.received_at = $2",
        message_id,
        received_at,
    )
    if row is None or row["envelope"] is None:
        return None
    return Envelope.model_validate({**row["envelope"], "payload": row["data"]})


async def _reroute(
    conn: asyncpg.Connection,
    selection: Selection,
    actor: str,
    topic_prefix: str,
    outbox_shards: int,
) -> int:
    rows = await conn.fetch(
        "UPDATE messages m SET status = 'accepted', reason = NULL, updated_at = now()"
        " WHERE m.status = 'unroutable'"
        " AND ($1::uuid IS NULL OR m.id = $1)"
        " AND ($2::text IS NULL OR m.sender = $2)"
        " AND ($3::timestamptz IS NULL OR m.received_at >= $3)"
        " AND ($4::timestamptz IS NULL OR m.received_at < $4)"
        " RETURNING m.id, m.received_at",
        selection.message_id,
        selection.partner if selection.message_id is None else None,
        selection.since,
        selection.until,
    )
    envelopes = [await _envelope(conn, r["id"], r["received_at"]) for r in rows]
    found = [e for e in envelopes if e is not None]
    accepted_topic = topics.ACCEPTED.full_name(topic_prefix)
    await outbox.insert(
        conn,
        [
            outbox.OutboxRow(accepted_topic, e.model_dump_json().encode(), e.ordering_key.encode())
            for e in found
        ],
        outbox_shards,
    )
    await events.record(
        conn,
        [
            AuditEvent(
                kind="replayed",
                actor=actor,
                message_id=e.message_id,
                control_id=e.control_id,
                partner=e.sender,
                detail={
                    "previous_status": "unroutable",
                    "action": "route_again",
                    **({"reason": selection.reason} if selection.reason else {}),
                },
            )
            for e in found
        ],
    )
    return len(found)
