"""Clinical content for operators: a message as received, and what each recipient was sent.

- ``GET /api/messages/{id}/content`` — the original bytes as the sender sent
  them: HL7 v2 segments with every valued field named (``PID-5 Patient
  Name``, :mod:`broker.console.structure`), or the FHIR resource tree.
- ``GET /api/messages/{id}/deliveries/{delivery_id}/content`` — what one
  recipient was sent (``deliveries.payload``, translated for it) and its
  answer to the last attempt (``deliveries.response``: the ACK with its MSA
  and ERR, or the OperationOutcome).

Both need the ``operator`` role (a viewer gets 403: metadata only, issue 7)
and every view is a ``content_viewed`` audit event naming the user, committed
before the content leaves: if the event cannot be recorded, nothing is shown
(design invariant 5; IHE BALP "read" of a patient's data). Nothing here is
logged.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from adapters.hl7v2 import charset
from broker.console.auth import Operator, Principal
from broker.console.deps import Ctx
from broker.console.structure import LabelledSegment, label_message
from broker.errors import MessageError
from broker.events import AuditEvent
from broker.store.audit import AuditStore

# A page cannot usefully show more; the rest stays in the store, untouched.
DISPLAY_MAX_CHARS = 2 * 1024 * 1024
DISPLAY_MAX_SEGMENTS = 2000

router = APIRouter(prefix="/api/messages", tags=["messages"])

_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "Clinical content needs the operator role."}
}


class Content(BaseModel):
    """Bytes shown to a person: as text, and labelled when carebroker can read them."""

    model_config = ConfigDict(hide_input_in_errors=True)

    format: Literal["hl7v2", "fhir", "text"]
    charset: str | None = Field(description="The codec the bytes were read with.")
    size: int = Field(description="Bytes stored.")
    truncated: bool = Field(
        description="The store kept only the start (rejected input), or the page shows only it."
    )
    text: str = Field(repr=False)
    segments: list[LabelledSegment] | None = Field(
        default=None, repr=False, description="HL7 v2: every segment, valued fields named."
    )
    resource: Any = Field(default=None, repr=False, description="FHIR: the resource as JSON.")
    problem: str | None = Field(
        default=None, description="Why the text could not be labelled (it is shown as is)."
    )


class MessageContent(BaseModel):
    """A message's original content."""

    message_id: uuid.UUID
    control_id: str
    original: Content


class DeliveryContent(BaseModel):
    """What one recipient was sent, and what it answered last."""

    message_id: uuid.UUID
    delivery_id: uuid.UUID
    recipient: str
    status: str
    ack_code: str | None
    sent: Content | None = Field(description="None: nothing rendered (blocked, or refused).")
    answer: Content | None = Field(description="None: no answer yet (or a mailbox).")


def read_content(data: bytes, stored_truncated: bool = False, codec: str | None = None) -> Content:
    """Decode stored bytes for display and label them (HL7 v2 segments, FHIR JSON)."""
    head = data.lstrip()[:3]
    if head in (b"MSH", b"FHS", b"BHS"):
        try:
            text, used = charset.decode(data, codec)
        except MessageError:
            text, used = data.decode("utf-8", errors="replace"), "utf-8 (with replacements)"
        cut = len(text) > DISPLAY_MAX_CHARS
        text = text[:DISPLAY_MAX_CHARS]
        try:
            segments = label_message(text, DISPLAY_MAX_SEGMENTS)
        except MessageError as exc:
            return _text("text", text, used, len(data), stored_truncated or cut, str(exc))
        content = _text("hl7v2", text, used, len(data), stored_truncated or cut)
        return content.model_copy(update={"segments": segments})
    text = data.decode("utf-8", errors="replace")
    cut = stored_truncated or len(text) > DISPLAY_MAX_CHARS
    if head[:1] in (b"{", b"[") and not cut:
        try:
            resource = json.loads(text)
        except ValueError as exc:
            problem = f"not valid JSON: {type(exc).__name__} at character {getattr(exc, 'pos', 0)}"
            return _text("text", text, "utf-8", len(data), cut, problem)
        content = _text("fhir", text, "utf-8", len(data), cut)
        return content.model_copy(update={"resource": resource})
    return _text("text", text[:DISPLAY_MAX_CHARS], "utf-8", len(data), cut)


def _text(
    kind: Literal["hl7v2", "fhir", "text"],
    text: str,
    codec: str,
    size: int,
    truncated: bool,
    problem: str | None = None,
) -> Content:
    return Content(
        format=kind, charset=codec, size=size, truncated=truncated, text=text, problem=problem
    )


def _codec_of(content_type: str) -> str | None:
    """Return the charset parameter of a media type (``...; charset=utf-8``), if any."""
    _, _, params = content_type.partition(";")
    key, _, value = params.strip().partition("=")
    if key.strip().lower() != "charset" or not value.strip():
        return None
    return value.strip()


async def _viewed(store: AuditStore, who: Principal, event: dict[str, Any]) -> None:
    await store.record([AuditEvent(kind="content_viewed", actor=who.actor, **event)])


@router.get(
    "/{message_id}/content",
    summary="A message's original content, labelled (operator; audited)",
    responses={**_FORBIDDEN, 404: {"description": "No such message, or its content is gone."}},
)
async def message_content(message_id: uuid.UUID, who: Operator, ctx: Ctx) -> MessageContent:
    """Return the original bytes as the sender sent them, and record who looked."""
    async with ctx.stores.console.connection() as work:
        row = await work.messages.original(message_id)
    if row is None:
        raise HTTPException(404, f"no message {message_id}")
    if row["data"] is None:
        raise HTTPException(404, f"the content of {message_id} is gone (payload retention)")
    content = read_content(row["data"], row["truncated"], row["charset"])
    await _viewed(
        ctx.stores.audit,
        who,
        {
            "message_id": message_id,
            "control_id": row["control_id"] or None,
            "partner": row["sender"],
            "detail": {"part": "original", "format": content.format},
        },
    )
    return MessageContent(message_id=message_id, control_id=row["control_id"], original=content)


@router.get(
    "/{message_id}/deliveries/{delivery_id}/content",
    summary="What one recipient was sent and answered (operator; audited)",
    responses={**_FORBIDDEN, 404: {"description": "No such delivery of this message."}},
)
async def delivery_content(
    message_id: uuid.UUID, delivery_id: uuid.UUID, who: Operator, ctx: Ctx
) -> DeliveryContent:
    """Return the translated output sent to one recipient and its last answer; audited."""
    async with ctx.stores.console.connection() as work:
        row = await work.messages.delivery_content(message_id, delivery_id)
    if row is None:
        raise HTTPException(404, f"no delivery {delivery_id} of message {message_id}")
    sent = row["payload"]
    answer = row["response"]
    await _viewed(
        ctx.stores.audit,
        who,
        {
            "message_id": message_id,
            "control_id": row["control_id"] or None,
            "recipient": row["recipient"],
            "detail": {"part": "delivery", "delivery_id": str(delivery_id)},
        },
    )
    return DeliveryContent(
        message_id=message_id,
        delivery_id=delivery_id,
        recipient=row["recipient"],
        status=row["status"],
        ack_code=row["ack_code"],
        sent=read_content(sent, codec=_codec_of(row["content_type"])) if sent else None,
        answer=read_content(answer) if answer else None,
    )
