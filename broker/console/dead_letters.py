"""Dead letters: deliveries that will not go out on their own, and what operators do with them.

A delivery is a dead letter when it is ``failed`` (the partner refused it for
good: MLLP AE/CE, HTTP 4xx) or ``dead`` (retry limits reached). It has left
its lane (later messages of the patient flowed on) and waits for a person:

- ``GET /api/dead-letters`` — newest first, by recipient if asked, keyset
  paginated (``before`` = the ``next`` of the previous page);
- ``POST /api/dead-letters/retry`` — put chosen ones (or all of a
  recipient's) back to pending with a fresh attempt budget
  (``routing.replay``: same bytes, audited ``replayed`` with the reason);
- ``POST /api/dead-letters/discard`` — take chosen ones (or all of a
  recipient's) out of the queue for good: the delivery keeps its status and
  answer, ``discarded_at/by`` and ``discard_reason`` record the decision,
  audited ``dead_letter_discarded``. Flows, alerts and metrics stop counting
  it; a replay by partner or time range leaves it alone, and retrying it by
  id (here, or replaying its message) puts it back.

Changes need the ``operator`` role, a reason, and from a browser the CSRF
token. The list is metadata (ids, codes, the partner's error) for viewers.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.console.actions import REASON_CHARS
from broker.console.auth import Operator, Viewer
from broker.console.deps import Ctx
from broker.events import AuditEvent
from broker.store.console import ConsoleStore
from routing.replay import DEAD_LETTERS, Selection, replay

BULK_MAX = 1000

router = APIRouter(prefix="/api/dead-letters", tags=["dead letters"])


class DeadLetter(BaseModel):
    """One delivery waiting for an operator."""

    id: uuid.UUID
    message_id: uuid.UUID
    control_id: str = Field(description="MSH-10 / Bundle.identifier sent to the recipient.")
    message_type: str
    sender: str | None
    recipient: str
    status: str = Field(description="failed (refused by the partner) or dead (limits reached)")
    attempts: int
    ack_code: str | None
    last_error: str | None
    received_at: datetime = Field(description="When carebroker accepted the message.")
    failed_at: datetime = Field(description="When the delivery became a dead letter.")
    replays: int


class DeadLetters(BaseModel):
    """A page of dead letters, newest first."""

    dead_letters: list[DeadLetter]
    next: str | None = Field(description="Pass as `before` for the next (older) page.")


class Choice(BaseModel):
    """Which dead letters: these ids, or every one of a recipient; and why."""

    model_config = ConfigDict(hide_input_in_errors=True)

    delivery_ids: list[uuid.UUID] = Field(default_factory=list, max_length=BULK_MAX)
    recipient: str | None = Field(default=None, description="All of this recipient's.")
    reason: str = Field(min_length=1, max_length=REASON_CHARS)

    @model_validator(mode="after")
    def _one_way(self) -> Choice:
        if bool(self.delivery_ids) == bool(self.recipient):
            raise ValueError("give either delivery_ids or recipient")
        if not self.reason.strip():
            raise ValueError("say why (reason)")
        return self


class Done(BaseModel):
    """How many dead letters the action changed, and which were left alone."""

    changed: int
    skipped: list[str] = Field(default_factory=list)


def _cursor(failed_at: datetime, delivery_id: uuid.UUID) -> str:
    raw = f"{failed_at.isoformat()}|{delivery_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(text: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        when, _, ident = raw.partition("|")
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, "before: not a cursor from this API") from exc


async def dead_letter_page(
    store: ConsoleStore,
    recipient: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> DeadLetters:
    """Return one page of dead letters not discarded (index ``deliveries_dead_letters``)."""
    async with store.connection() as work:
        rows = await work.dead_letters.page(recipient, after, limit + 1)
    page = [DeadLetter(**{**r, "message_type": r["message_type"] or ""}) for r in rows]
    more = len(page) > limit
    page = page[:limit]
    return DeadLetters(
        dead_letters=page,
        next=_cursor(page[-1].failed_at, page[-1].id) if more else None,
    )


@router.get("", summary="Dead letters, newest first")
async def list_dead_letters(
    _: Viewer,
    ctx: Ctx,
    recipient: str | None = None,
    before: Annotated[str | None, Query(description="The `next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetters:
    """Return dead letters not discarded, newest first."""
    return await dead_letter_page(
        ctx.stores.console, recipient, _uncursor(before) if before else None, limit
    )


@router.post("/retry", summary="Retry dead letters (operator; audited)")
async def retry_dead_letters(body: Choice, who: Operator, ctx: Ctx) -> Done:
    """Put the chosen dead letters back to pending with a fresh attempt budget."""
    result = await replay(
        ctx.stores.routing,
        ctx.directory,
        Selection(
            delivery_ids=body.delivery_ids,
            partner=body.recipient,
            statuses=DEAD_LETTERS,
            reason=body.reason.strip(),
        ),
        actor=who.actor,
        topic_prefix=ctx.settings.kafka_topic_prefix,
    )
    return Done(changed=result.deliveries, skipped=result.skipped)


@router.post("/discard", summary="Discard dead letters for good (operator; audited)")
async def discard_dead_letters(body: Choice, who: Operator, ctx: Ctx) -> Done:
    """Take the chosen dead letters out of the queue; their status and answer stay."""
    reason = body.reason.strip()
    async with ctx.stores.console.transaction() as work:
        rows = await work.dead_letters.discard(body.delivery_ids, body.recipient, who.actor, reason)
        await work.audit.record(
            [
                AuditEvent(
                    kind="dead_letter_discarded",
                    actor=who.actor,
                    message_id=r["message_id"],
                    control_id=r["control_id"] or None,
                    recipient=r["recipient"],
                    detail={"delivery_id": str(r["id"]), "status": r["status"], "reason": reason},
                )
                for r in rows
            ],
        )
    found = {r["id"] for r in rows}
    skipped = [f"{i}: not a dead letter (any more)" for i in body.delivery_ids if i not in found]
    return Done(changed=len(rows), skipped=skipped)
