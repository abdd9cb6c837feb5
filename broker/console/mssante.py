"""A message's MSSanté mails for the console: per recipient, sent / delivered / read / failed.

``GET /api/messages/{id}/mssante`` reads the mail deliveries of a CI-SIS
document request, the notices the mailbox brought back about each
(``mssante_notices``: DSN, MDN) and the ZAMs sent to the creator
(deliveries of kind ``zam:...``), through ``broker/store/mssante.py``. The
server's words are shown as kept (mail addresses already replaced); the
patient's mailbox is named ``patient (MSSanté)``, never by its address.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from broker.console.auth import Viewer
from broker.console.deps import Ctx
from broker.directory import MSSANTE_PREFIX

router = APIRouter(prefix="/api/messages", tags=["messages"])
MailState = Literal["pending", "sent", "delivered", "read", "failed"]


class MailView(BaseModel):
    """One MSSanté recipient of a message, and what became of its mail."""

    delivery_id: uuid.UUID
    recipient: str = Field(description="The address, or `patient (MSSanté)`.")
    state: MailState = Field(
        description="pending: not sent yet; sent: the SMTP server took it; delivered: the "
        "recipient's server said so (DSN); read: read receipt (MDN); failed."
    )
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed: str | None = Field(default=None, description="The server's words when it failed.")
    code: str | None = Field(default=None, description="SMTP code, or the reader's error code.")
    read_error: str | None = Field(default=None, description="An MDN's error (code^label).")
    notice_asked: bool = Field(description="The creator asked for a delivery notice.")
    receipt_asked: bool = Field(description="The creator asked for a read receipt.")
    notice_overdue: bool = False


class ZamView(BaseModel):
    """One business acknowledgement sent back to the creator."""

    delivery_id: uuid.UUID
    event: str = Field(description="Z02 (reception) or Z03 (read).")
    about: uuid.UUID = Field(description="The mail delivery it reports on.")
    recipient: str
    status: str
    attempts: int
    control_id: str | None
    delivered_at: datetime | None
    last_error: str | None


class MssanteView(BaseModel):
    """A message's MSSanté mails and the ZAMs sent back."""

    message_id: uuid.UUID
    mails: list[MailView]
    zams: list[ZamView]


@router.get("/{message_id}/mssante", summary="A message's MSSanté mails and ZAMs")
async def get_mssante(message_id: uuid.UUID, _: Viewer, ctx: Ctx) -> MssanteView:
    """Return, per MSSanté recipient, sent / delivered / read / failed, and the ZAMs sent back."""
    async with ctx.stores.mssante.connection() as work:
        found = await work.mails.of_message(message_id)
    notices: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for notice in found["notices"]:
        notices.setdefault(notice["delivery_id"], []).append(notice)
    overdue = {o["delivery_id"] for o in found["overdue"] if o["cleared_at"] is None}
    mails = [_mail(m, notices.get(m["id"], []), m["id"] in overdue) for m in found["mails"]]
    zams = []
    for row in found["zams"]:
        _, event, about = row["kind"].split(":", 2)
        zams.append(
            ZamView(
                delivery_id=row["id"],
                event=event,
                about=uuid.UUID(about),
                recipient=row["recipient"],
                status=row["status"],
                attempts=row["attempts"],
                control_id=row["control_id"],
                delivered_at=row["delivered_at"],
                last_error=row["last_error"],
            )
        )
    return MssanteView(message_id=message_id, mails=mails, zams=zams)


def _mail(row: dict[str, Any], notices: list[dict[str, Any]], overdue: bool) -> MailView:
    flags = set(row["flags"] or [])
    recipient = str(row["recipient"])
    shown = (
        "patient (MSSanté)"
        if recipient.startswith(MSSANTE_PREFIX + "patient")
        else recipient.removeprefix(MSSANTE_PREFIX)
    )
    dsn = next((n for n in notices if n["kind"] == "dsn" and n["final"]), None)
    mdn = next((n for n in notices if n["kind"] == "mdn"), None)
    view = MailView(
        delivery_id=row["id"],
        recipient=shown,
        state="pending",
        notice_asked="ack_reception" in flags,
        receipt_asked="ack_reading" in flags,
        notice_overdue=overdue,
        code=row["ack_code"],
    )
    if row["status"] == "delivered" or dsn is not None:
        view.state, view.sent_at = "sent", row["delivered_at"]
    if dsn is not None and dsn["success"]:
        view.state, view.delivered_at = "delivered", dsn["received_at"]
    if mdn is not None:
        view.read_at = mdn["received_at"]
        if mdn["success"]:
            view.state = "read"
        else:
            view.read_error = f"{mdn['code']}^{mdn['label'] or ''}"
    if row["status"] in ("failed", "dead"):
        view.state, view.failed = "failed", row["last_error"]
    return view
