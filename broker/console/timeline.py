"""``GET /api/messages/{id}/timeline``: every hop of one message, from the audit trail.

The message page's timeline (issue 7): received, routed (to whom, by which
rule), translated, each delivery attempt with the partner's ACK code,
retries, dead letters, replays and who looked at the content, in the order the
audit writer chained them (``broker.store.audit.timeline``, index
``audit_message``). Events are ids, codes and reasons (design invariant 6),
so viewers may read them.

Interim: the search API is adding ``GET /api/messages/{id}/audit`` over the
same function; once it is merged the console reads that one and this module
goes (its events have the same fields).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from broker.console.auth import Viewer
from broker.console.deps import Ctx
from broker.store import audit

router = APIRouter(prefix="/api/messages", tags=["messages"])


class TimelineEvent(BaseModel):
    """One chained audit event about the message."""

    day: date
    seq: int = Field(description="Position in the day's hash chain.")
    event_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    kind: str
    actor: str
    outcome: str
    control_id: str | None
    partner: str | None
    recipient: str | None
    rule: str | None
    detail: dict[str, Any]


class Timeline(BaseModel):
    """A message's events in chain order (an event appears once the audit writer chained it)."""

    message_id: uuid.UUID
    events: list[TimelineEvent]


@router.get("/{message_id}/timeline", summary="A message's hops, from the audit trail")
async def message_timeline(message_id: uuid.UUID, _: Viewer, ctx: Ctx) -> Timeline:
    """Return the message's audit events in order (empty for an unknown id)."""
    rows = await audit.timeline(ctx.pool, message_id)
    return Timeline(
        message_id=message_id,
        events=[
            TimelineEvent(**{name: getattr(row, name) for name in TimelineEvent.model_fields})
            for row in rows
        ],
    )
