"""The delivery state machine: what one attempt's outcome makes of its delivery row.

Pure (no I/O): the dispatcher (``routing/delivery.py``) writes what
:func:`decide` returns in one unit of work with every other outcome of its
batch. docs/internals.md, "Delivery state machine", draws the table:

- delivered (MLLP AA/CA, HTTP 2xx): ``delivered``, the answer kept;
  ``delivered`` (``app_ack_sent`` for an application ACK carebroker sent);
- posted to a mailbox: still ``pending``, ``posted_at`` set;
  ``delivery_attempted``;
- refused for good (MLLP AE/CE, HTTP 4xx): ``failed`` with the answer;
  ``failed`` and ``dead_lettered``;
- transient, limits reached (``max_attempts``, ``max_age_s``): ``dead`` with
  the limit named; ``dead_lettered``;
- transient: ``pending`` again, due after a backoff with jitter; ``retried``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from broker.directory import RetryPolicy
from broker.events import AuditEvent
from broker.store.work import Head, OutcomeUpdate
from routing import app_ack
from routing.retry import backoff, is_exhausted
from routing.transports import Outcome

ACTOR = "delivery"


def delivery_id(event: AuditEvent) -> uuid.UUID | None:
    value = event.detail.get("delivery_id")
    return uuid.UUID(value) if value else None


def _msa1(head: Head) -> str:
    """Return MSA-1 of an application ACK carebroker sends (for its audit event)."""
    at = head.payload.find(b"\rMSA")
    return head.payload[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else ""


def decide(
    head: Head, outcome: Outcome, policy: RetryPolicy, now: datetime
) -> tuple[OutcomeUpdate, list[AuditEvent]]:
    """Return the row update and audit events for one outcome (the delivery state machine)."""
    attempts = head.attempts + 1
    base = {
        "delivery_id": str(head.id),
        "attempt": attempts,
        "ack_code": outcome.ack_code,
    }

    def event(kind: Any, outcome_level: Any = "success", **extra: Any) -> AuditEvent:
        return AuditEvent(
            kind=kind,
            actor=ACTOR,
            outcome=outcome_level,
            message_id=head.message_id,
            control_id=head.control_id or None,
            recipient=head.recipient,
            detail={**base, **extra},
        )

    if head.kind == app_ack.KIND:
        base["app_ack"] = True
    if outcome.status == "delivered":
        written = OutcomeUpdate(
            head.id,
            "delivered",
            response=outcome.response,
            ack_code=outcome.ack_code,
            delivered_at=now,
        )
        if head.kind == app_ack.KIND:
            return written, [event("app_ack_sent", sent=True, acknowledgement=_msa1(head))]
        return written, [event("delivered")]
    if outcome.status == "posted":
        return (
            OutcomeUpdate(head.id, "pending", ack_code=outcome.ack_code, posted_at=now),
            [event("delivery_attempted", via="mailbox")],
        )
    if outcome.status == "failed":
        return (
            OutcomeUpdate(
                head.id,
                "failed",
                error=outcome.error,
                response=outcome.response,
                ack_code=outcome.ack_code,
            ),
            [
                event("failed", "serious_failure", reason=outcome.error),
                event("dead_lettered", "serious_failure", reason=outcome.error),
            ],
        )
    exhausted = is_exhausted(policy, attempts, head.since, now)
    if exhausted is not None:
        reason = f"{outcome.error}; {exhausted}"
        return (
            OutcomeUpdate(
                head.id, "dead", error=reason, response=outcome.response, ack_code=outcome.ack_code
            ),
            [event("dead_lettered", "serious_failure", reason=reason)],
        )
    retry_at = now + timedelta(seconds=backoff(policy, attempts))
    return (
        OutcomeUpdate(
            head.id,
            "pending",
            next_attempt_at=retry_at,
            error=outcome.error,
            response=outcome.response,
            ack_code=outcome.ack_code,
        ),
        [event("retried", "minor_failure", reason=outcome.error, retry_at=retry_at.isoformat())],
    )


__all__ = ["decide", "delivery_id"]
