"""Operator actions on messages and partners: replay, pause and resume delivery.

- ``POST /api/messages/{id}/replay`` — send a message again to one recipient
  or to all of them, whatever their delivery became (delivered, dead letter,
  blocked once the opposition is lifted); an unroutable message is routed
  again. It is ``routing.replay`` (the ``carebroker replay`` command) for
  one message: the stored bytes go out unchanged, so partners recognise the
  resend by its MSH-10 / Bundle.identifier. A delivery still pending is left
  to the delivery role.
- ``POST /api/partners/{id}/pause`` and ``/resume`` — stop and restart
  delivery to a partner (its endpoint down for maintenance, a wrong feed).
  The pause is a row in ``delivery_pauses``: every delivery instance leaves the
  partner's lanes alone while it exists (``routing.delivery.scan_heads``,
  ``probe_heads``; a resume is seen within ``SCAN_S``);
  attempts already under way finish. Messages keep being accepted, routed and
  queued for the partner, and flow again, in order, on resume.

Each needs the ``operator`` role and, from a browser, the CSRF token; each is
audited with the user's name in the transaction that makes the change
(``replayed``, ``delivery_paused``, ``delivery_resumed``). Pausing a paused
partner or resuming a running one changes nothing and records nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from broker.console.auth import Operator
from broker.console.deps import Ctx
from broker.context import Context
from broker.events import AuditEvent
from broker.store.console import ConsoleStore
from routing.replay import Selection, replay

REASON_CHARS = 500
# What "replay this message" re-sends: everything but what is still on its way.
REPLAYED_STATUSES = ("delivered", "failed", "dead", "blocked")

router = APIRouter(tags=["actions"])


class Reason(BaseModel):
    """Why an operator acts (kept in the audit trail; ids and words, no patient data)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    reason: str = Field(default="", max_length=REASON_CHARS)


class ReplayRequest(Reason):
    """Which recipient to replay to; all of the message's recipients when absent."""

    recipient: str | None = Field(default=None, max_length=200)


class ReplayDone(BaseModel):
    """What a replay did."""

    deliveries: int = Field(description="Deliveries put back to pending.")
    rerouted: int = Field(description="1 when the message was unroutable and is routed again.")
    skipped: list[str] = Field(description="Deliveries left alone, with the reason.")


class Pause(BaseModel):
    """A partner whose deliveries are paused."""

    recipient: str
    reason: str
    paused_by: str
    paused_at: datetime


class PauseState(BaseModel):
    """Whether a partner's deliveries are paused, after the request."""

    recipient: str
    paused: Pause | None
    changed: bool = Field(description="False when it already was in that state.")


@router.post(
    "/api/messages/{message_id}/replay",
    summary="Send a message again to one or all recipients (operator; audited)",
    responses={404: {"description": "No such message."}},
)
async def replay_message(
    message_id: uuid.UUID, body: ReplayRequest, who: Operator, ctx: Ctx
) -> ReplayDone:
    """Put the message's deliveries back to pending (or route it again); audited."""
    async with ctx.stores.console.connection() as work:
        found = await work.messages.exists(message_id)
    if not found:
        raise HTTPException(404, f"no message {message_id}")
    result = await replay(
        ctx.stores.routing,
        ctx.directory,
        Selection(
            message_id=message_id,
            partner=body.recipient,
            statuses=REPLAYED_STATUSES,
            reason=body.reason or None,
        ),
        actor=who.actor,
        topic_prefix=ctx.settings.kafka_topic_prefix,
    )
    return ReplayDone(
        deliveries=result.deliveries, rerouted=result.rerouted, skipped=result.skipped
    )


async def pauses(store: ConsoleStore) -> dict[str, Pause]:
    """Return the paused partners by id."""
    async with store.connection() as work:
        rows = await work.pauses.all()
    return {r["recipient"]: Pause(**r) for r in rows}


def _recipient(ctx: Context, partner: str) -> None:
    found = ctx.directory.partner(partner)
    if found is None:
        raise HTTPException(404, f"no partner {partner} in the directory")
    if found.endpoint is None:
        raise HTTPException(409, f"partner {partner} has no endpoint: nothing is delivered to it")


@router.post(
    "/api/partners/{partner}/pause",
    summary="Pause delivery to a partner (operator; audited)",
    responses={404: {"description": "No such partner."}, 409: {"description": "No endpoint."}},
)
async def pause_partner(partner: str, body: Reason, who: Operator, ctx: Ctx) -> PauseState:
    """Stop attempting deliveries to ``partner`` on every instance until resumed."""
    _recipient(ctx, partner)
    async with ctx.stores.console.transaction() as work:
        row = await work.pauses.add(partner, body.reason, who.actor)
        created = row is not None
        if created:
            await work.audit.record(
                [
                    AuditEvent(
                        kind="delivery_paused",
                        actor=who.actor,
                        partner=partner,
                        detail={"reason": body.reason} if body.reason else {},
                    )
                ],
            )
        else:
            row = await work.pauses.get(partner)
    assert row is not None  # paused now, by this request or before it
    return PauseState(recipient=partner, paused=Pause(**row), changed=created)


@router.post(
    "/api/partners/{partner}/resume",
    summary="Resume delivery to a paused partner (operator; audited)",
    responses={404: {"description": "No such partner."}},
)
async def resume_partner(partner: str, body: Reason, who: Operator, ctx: Ctx) -> PauseState:
    """Let every delivery instance attempt ``partner``'s lanes again, oldest first."""
    if ctx.directory.partner(partner) is None:
        raise HTTPException(404, f"no partner {partner} in the directory")
    async with ctx.stores.console.transaction() as work:
        row = await work.pauses.remove(partner)
        if row is not None:
            detail: dict[str, str] = {"paused_by": row["paused_by"]}
            if body.reason:
                detail["reason"] = body.reason
            await work.audit.record(
                [
                    AuditEvent(
                        kind="delivery_resumed", actor=who.actor, partner=partner, detail=detail
                    )
                ]
            )
    # The dispatchers look for ready lanes at least every second (IDLE_POLL_S):
    # no wake-up record is needed for the partner's queue to start moving.
    return PauseState(recipient=partner, paused=None, changed=row is not None)
