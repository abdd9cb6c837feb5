"""Audit events: one per hop, one per operator action (design invariant 5).

Every role records :class:`AuditEvent` s with ``broker.store.events.record``
inside the transaction that changes the state they describe; the audit writer
chains them into the append-only audit table. Events carry ids and outcomes,
never message content (design invariant 6).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.ids import new_id

EventKind = Literal[
    "received",
    "rejected",
    "validated",
    "duplicate",
    "routed",
    "unroutable",
    "blocked",
    "translated",
    "delivery_attempted",
    "delivered",
    "failed",
    "retried",
    "dead_lettered",
    "replayed",
    "app_ack_sent",
    "notice_received",
    "content_viewed",
    "patient_searched",
    "partners_reloaded",
    "consent_changed",
    "config_changed",
    "user_changed",
    "alert_changed",
    "delivery_paused",
    "delivery_resumed",
    "dead_letter_discarded",
]


class AuditEvent(BaseModel):
    """One audited fact: who did what to which message, when, with what outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    event_id: uuid.UUID = Field(default_factory=new_id)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    kind: EventKind
    actor: str = Field(description="Role (`mllp`, `router` ...) or `user:<name>`.")
    outcome: Literal["success", "minor_failure", "serious_failure", "major_failure"] = "success"
    message_id: uuid.UUID | None = None
    control_id: str | None = None
    partner: str | None = Field(default=None, description="Sender, or the partner acted on.")
    recipient: str | None = None
    rule: str | None = None
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Ids, codes and reasons only; never clinical content."
    )
