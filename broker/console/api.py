"""The status API: where a message is and why (``/api/messages``), for operators and the console.

- ``GET /api/messages?control_id=&sender=&status=&since=`` — messages, newest
  first, with a count of their deliveries by status;
- ``GET /api/messages/{id}`` — one message's status and its deliveries:
  ``recipient``, ``status`` (pending | delivered | failed | dead | blocked),
  ``attempts``, ``last_error``, ``rule`` (the first rule that chose the
  recipient; ``rules`` lists them all and ``fields`` the message fields that
  matched).

Metadata only: ids, codes, statuses and reasons, never payloads or patient
data (design invariant 6). The operator console (issue 7) builds on these
models; the OpenAPI document is generated from them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from broker.ids import id_time

MessageStatus = Literal["accepted", "rejected", "routed", "unroutable", "blocked"]
DeliveryStatus = Literal["pending", "delivered", "failed", "dead", "blocked"]


class Delivery(BaseModel):
    """One delivery of a message to one recipient."""

    id: uuid.UUID
    recipient: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    rule: str | None = Field(description="The first rule that chose this recipient.")
    rules: list[str] = Field(description="Every rule that chose this recipient.")
    fields: list[str] = Field(description="Message fields that matched, as FIELD=identifier.")
    ack_code: str | None = Field(description="MSA-1, HTTP status or mailbox state of the answer.")
    flags: list[str] = Field(description="What the render changed: ins_stripped, chars_escaped…")
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    flagged: bool = Field(description="Waiting in a mailbox, unacknowledged for too long.")
    replays: int
    created_at: datetime
    updated_at: datetime


class MessageSummary(BaseModel):
    """A message as listed: its status and how its deliveries stand."""

    id: uuid.UUID
    received_at: datetime
    sender: str | None
    control_id: str
    message_type: str
    status: MessageStatus
    reason: str | None
    deliveries: dict[str, int] = Field(description="Number of deliveries per status.")


class MessageList(BaseModel):
    """A page of messages, newest first."""

    messages: list[MessageSummary]


class MessageDetail(BaseModel):
    """One message and every delivery of it."""

    id: uuid.UUID
    received_at: datetime
    channel: str
    format: str
    sender: str | None
    control_id: str
    message_type: str
    version: str
    status: MessageStatus
    reason: str | None
    updated_at: datetime
    deliveries: list[Delivery]


def status_router(pool: asyncpg.Pool) -> APIRouter:
    """Return the ``/api/messages`` routes reading from ``pool``."""
    router = APIRouter(prefix="/api", tags=["status"])

    @router.get("/messages", summary="Find messages")
    async def list_messages(
        control_id: str | None = None,
        sender: str | None = None,
        status: MessageStatus | None = None,
        since: datetime | None = None,
        delivery_status: Annotated[
            DeliveryStatus | None,
            Query(description="Only messages with at least one delivery in this status."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> MessageList:
        rows = await pool.fetch(
            "SELECT m.id, m.received_at, m.sender, m.control_id, m.message_type, m.status,"
            " m.reason FROM messages m"
            " WHERE ($1::text IS NULL OR m.control_id = $1)"
            " AND ($2::text IS NULL OR m.sender = $2)"
            " AND ($3::text IS NULL OR m.status = $3)"
            " AND ($4::timestamptz IS NULL OR m.received_at >= $4)"
            " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM deliveries d"
            "  WHERE d.message_id = m.id AND d.status = $5))"
            " ORDER BY m.received_at DESC, m.id DESC LIMIT $6",
            control_id,
            sender,
            status,
            since,
            delivery_status,
            limit,
        )
        counts: dict[uuid.UUID, dict[str, int]] = {}
        if rows:
            for row in await pool.fetch(
                "SELECT message_id, status, count(*) AS n FROM deliveries"
                " WHERE message_id = ANY($1::uuid[]) GROUP BY message_id, status",
                [r["id"] for r in rows],
            ):
                counts.setdefault(row["message_id"], {})[row["status"]] = row["n"]
        return MessageList(
            messages=[MessageSummary(**dict(r), deliveries=counts.get(r["id"], {})) for r in rows]
        )

    @router.get(
        "/messages/{message_id}",
        summary="One message and its deliveries",
        responses={404: {"description": "No message with this id."}},
    )
    async def get_message(message_id: uuid.UUID) -> MessageDetail:
        row = await pool.fetchrow(
            "SELECT id, received_at, channel, format, sender, control_id, message_type, version,"
            " status, reason, updated_at FROM messages WHERE id = $1 AND received_at = $2",
            message_id,
            id_time(message_id),
        )
        if row is None:  # an id not made by carebroker, or a clock anomaly: search all
            row = await pool.fetchrow(
                "SELECT id, received_at, channel, format, sender, control_id, message_type,"
                " version, status, reason, updated_at FROM messages WHERE id = $1",
                message_id,
            )
        if row is None:
            raise HTTPException(404, f"no message {message_id}")
        deliveries = await pool.fetch(
            "SELECT id, recipient, status, attempts, last_error, rules, reasons, ack_code, flags,"
            " next_attempt_at, delivered_at, flagged_at IS NOT NULL AS flagged, replays,"
            " created_at, updated_at FROM deliveries WHERE message_id = $1"
            " ORDER BY created_at, recipient",
            message_id,
        )
        return MessageDetail(**dict(row), deliveries=[_delivery(d) for d in deliveries])

    return router


def _delivery(row: asyncpg.Record) -> Delivery:
    data: dict[str, Any] = dict(row)
    reasons = data.pop("reasons") or []
    rules = list(data.pop("rules") or [])
    pending = data["status"] == "pending"
    return Delivery(
        **{**data, "next_attempt_at": data["next_attempt_at"] if pending else None},
        rule=rules[0] if rules else None,
        rules=rules,
        fields=[f"{r['field']}={r['value']}" for r in reasons],
    )
