"""The mailbox HTTP API: partners without an interface poll carebroker for their messages.

Store-and-forward, as NHS MESH mailboxes work (domain-requirements §3 peer
systems): a message for a ``mailbox`` partner waits in PostgreSQL; the
partner lists it, fetches it and acknowledges it, and only the
acknowledgement makes the delivery ``delivered``. A message left
unacknowledged longer than the endpoint's ``unacked_alert_after_s`` is
flagged to operators by the delivery workers.

- ``GET /mailbox/{partner}/messages`` — waiting messages, oldest first;
- ``GET /mailbox/{partner}/messages/{id}`` — one message's bytes;
- ``POST /mailbox/{partner}/messages/{id}/ack`` — acknowledge (idempotent).

Each call needs ``Authorization: Bearer <token>`` with a token of that very
partner (``token_sha256`` in the directory; ``Directory.by_token``). Fetch and
acknowledgement are audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel

from broker.directory import MailboxEndpoint, Partner
from broker.events import AuditEvent
from broker.store import events
from broker.store.db import transaction
from routing import app_ack

if TYPE_CHECKING:
    from broker.context import Context


class MailboxEntry(BaseModel):
    """One message waiting in a mailbox (metadata only; fetch it for the content)."""

    id: uuid.UUID
    message_id: uuid.UUID
    control_id: str
    message_type: str
    received_at: datetime
    posted_at: datetime
    content_type: str
    size: int
    fetched: bool


class MailboxListing(BaseModel):
    """The waiting messages of one partner, oldest first."""

    partner: str
    messages: list[MailboxEntry]


class AckResult(BaseModel):
    """The state of a delivery after the partner acknowledged it."""

    id: uuid.UUID
    status: str


def mailbox_router(ctx: Context, acks: app_ack.Lanes | None = None) -> APIRouter:
    """Return the mailbox API bound to this process's store and directory.

    ``acks``: where an application ACK owed to a sender is queued when this
    acknowledgement makes the last delivery of its message final.
    """
    router = APIRouter(prefix="/mailbox", tags=["mailbox"])

    def authorise(partner_id: str, authorization: str | None) -> Partner:
        scheme, _, token = (authorization or "").partition(" ")
        partner = ctx.directory.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if partner is None:
            raise HTTPException(
                401, "a partner bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
        if partner.id != partner_id:
            raise HTTPException(403, "this token belongs to another partner")
        if not isinstance(partner.endpoint, MailboxEndpoint):
            raise HTTPException(404, f"partner {partner_id} has no mailbox")
        return partner

    @router.get("/{partner}/messages", summary="List waiting messages, oldest first")
    async def list_messages(
        partner: str,
        authorization: Annotated[str | None, Header()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> MailboxListing:
        authorise(partner, authorization)
        rows = await ctx.pool.fetch(
            "SELECT d.id, d.message_id, d.control_id, m.message_type,"
            " d.message_received_at AS received_at, d.posted_at, d.content_type,"
            " octet_length(d.payload) AS size, d.fetched_at IS NOT NULL AS fetched"
            " FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id AND m.received_at = d.message_received_at"
            " WHERE d.recipient = $1 AND d.status = 'pending' AND d.posted_at IS NOT NULL"
            " ORDER BY d.message_received_at, d.message_id LIMIT $2",
            partner,
            limit,
        )
        return MailboxListing(partner=partner, messages=[MailboxEntry(**dict(r)) for r in rows])

    @router.get(
        "/{partner}/messages/{delivery_id}",
        summary="Fetch one message",
        response_class=Response,
        responses={200: {"description": "The message, in the format the partner accepts."}},
    )
    async def fetch_message(
        partner: str,
        delivery_id: uuid.UUID,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        authorise(partner, authorization)
        async with transaction(ctx.pool) as conn:
            row = await conn.fetchrow(
                "SELECT id, message_id, control_id, payload, content_type, fetched_at"
                " FROM deliveries WHERE id = $1 AND recipient = $2 AND posted_at IS NOT NULL"
                " AND status IN ('pending', 'delivered')",
                delivery_id,
                partner,
            )
            if row is None or row["payload"] is None:
                raise HTTPException(404, "no such message in this mailbox")
            if row["fetched_at"] is None:
                await conn.execute(
                    "UPDATE deliveries SET fetched_at = now(), updated_at = now() WHERE id = $1",
                    delivery_id,
                )
                await events.record(
                    conn, [_event("delivery_attempted", partner, row, delivery_id, "mailbox_fetch")]
                )
        return Response(row["payload"], media_type=row["content_type"] or None)

    @router.post("/{partner}/messages/{delivery_id}/ack", summary="Acknowledge a message")
    async def acknowledge(
        partner: str,
        delivery_id: uuid.UUID,
        authorization: Annotated[str | None, Header()] = None,
    ) -> AckResult:
        authorise(partner, authorization)
        async with transaction(ctx.pool) as conn:
            row = await conn.fetchrow(
                "UPDATE deliveries SET status = 'delivered', delivered_at = now(),"
                " ack_code = 'mailbox-ack', last_error = NULL, updated_at = now()"
                " WHERE id = $1 AND recipient = $2 AND posted_at IS NOT NULL"
                " AND status = 'pending' RETURNING message_id, control_id, kind",
                delivery_id,
                partner,
            )
            if row is None:
                status = await conn.fetchval(
                    "SELECT status FROM deliveries WHERE id = $1 AND recipient = $2"
                    " AND posted_at IS NOT NULL",
                    delivery_id,
                    partner,
                )
                if status is None:
                    raise HTTPException(404, "no such message in this mailbox")
                return AckResult(id=delivery_id, status=status)
            if row["kind"] == app_ack.KIND:
                # An application ACK carebroker owed this partner: fetched and acknowledged.
                recorded = [_event("app_ack_sent", partner, row, delivery_id, "mailbox_ack")]
            else:
                recorded = [_event("delivered", partner, row, delivery_id, "mailbox_ack")]
                if acks is not None:
                    recorded += await app_ack.settle(
                        conn, [row["message_id"]], ctx.directory, acks, actor=f"partner:{partner}"
                    )
            await events.record(conn, recorded)
        return AckResult(id=delivery_id, status="delivered")

    return router


def _event(
    kind: Literal["delivery_attempted", "delivered", "app_ack_sent"],
    partner: str,
    row: asyncpg.Record,
    delivery_id: uuid.UUID,
    via: str,
) -> AuditEvent:
    """Return the audit event of a partner's mailbox action (the partner is the actor)."""
    return AuditEvent(
        kind=kind,
        actor=f"partner:{partner}",
        message_id=row["message_id"],
        control_id=row["control_id"] or None,
        recipient=partner,
        detail={"via": via, "delivery_id": str(delivery_id)},
    )
