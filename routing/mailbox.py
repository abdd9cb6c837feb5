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

from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel

from broker.directory import MailboxEndpoint, Partner
from broker.events import AuditEvent
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
    store = ctx.stores.routing

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
        async with store.connection() as work:
            rows = await work.deliveries.mailbox(partner, limit)
        return MailboxListing(
            partner=partner,
            messages=[MailboxEntry.model_validate(r, from_attributes=True) for r in rows],
        )

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
        async with store.transaction() as work:
            item = await work.deliveries.mailbox_fetch(delivery_id, partner)
            if item is None or item.payload is None:
                raise HTTPException(404, "no such message in this mailbox")
            if item.first_fetch:
                await work.audit.record(
                    [
                        _event(
                            "delivery_attempted",
                            partner,
                            item.message_id,
                            item.control_id,
                            delivery_id,
                            "mailbox_fetch",
                        )
                    ]
                )
        return Response(item.payload, media_type=item.content_type or None)

    @router.post("/{partner}/messages/{delivery_id}/ack", summary="Acknowledge a message")
    async def acknowledge(
        partner: str,
        delivery_id: uuid.UUID,
        authorization: Annotated[str | None, Header()] = None,
    ) -> AckResult:
        authorise(partner, authorization)
        async with store.transaction() as work:
            done = await work.deliveries.mailbox_ack(delivery_id, partner)
            if done.status is None:
                raise HTTPException(404, "no such message in this mailbox")
            if not done.acknowledged or done.message_id is None:
                return AckResult(id=delivery_id, status=done.status)
            kind: Literal["delivered", "app_ack_sent"] = (
                # An application ACK carebroker owed this partner: fetched and acknowledged.
                "app_ack_sent" if done.kind == app_ack.KIND else "delivered"
            )
            recorded = [
                _event(kind, partner, done.message_id, done.control_id, delivery_id, "mailbox_ack")
            ]
            if kind == "delivered" and acks is not None:
                recorded += await app_ack.settle(
                    work, [done.message_id], ctx.directory, acks, actor=f"partner:{partner}"
                )
            await work.audit.record(recorded)
        return AckResult(id=delivery_id, status="delivered")

    return router


def _event(
    kind: Literal["delivery_attempted", "delivered", "app_ack_sent"],
    partner: str,
    message_id: uuid.UUID,
    control_id: str,
    delivery_id: uuid.UUID,
    via: str,
) -> AuditEvent:
    """Return the audit event of a partner's mailbox action (the partner is the actor)."""
    return AuditEvent(
        kind=kind,
        actor=f"partner:{partner}",
        message_id=message_id,
        control_id=control_id or None,
        recipient=partner,
        detail={"via": via, "delivery_id": str(delivery_id)},
    )
