"""Build the mails carebroker sends over MSSanté, and the envelope headers added at sending (pure).

A document mail (``mapping-mss.md``, MSSanté client requirements) is
``multipart/mixed``: the text body (CORPSMAIL_PS / CORPSMAIL_PATIENT, or a
default saying what the mail is), then the documents: each CDA R2 file, the
PDF each one carries, and ``IHE_XDM.zip``. Headers:

- ``To`` the RCT address, ``Reply-To`` the REPLY address when given;
- ``Subject`` ``XDM/1.0/DDM+<document title>`` (the subject convention by
  which receiving platforms recognise XDM mails, lps guide ``cas-usage.md``);
- ``X-MSS-CODECDA`` the CDA type codes (ClinicalDocument/code, comma
  separated), ``X-MSS-INS: O`` only when the message asserts a qualified
  identity (PID-32 ``VALI`` beside an INS), ``X-MSS-MES: FIN`` to a patient
  when NTE-4 said the patient may not answer (``mapping-mss.md``).

``From``, ``Date``, ``Message-ID``, ``Disposition-Notification-To`` (read
receipt asked for, ``ACK_LECTURE_MSS``) and ``X-MSS-NIL`` are the sending
mailbox's and the attempt's: :func:`sending_headers` writes them when the
transport sends, in front of the stored mail. The Message-ID is
``<delivery id@mailbox domain>``, the same on every resend, which is how a
notice (DSN ``Original-Envelope-Id``/headers, MDN ``Original-Message-ID``)
finds its delivery again (:func:`delivery_of`).

Whether the sender asked for a delivery notice (``ACK_RECEPTION``) or a read
receipt travels with the stored mail as parameters of its media type:
``message/rfc822; notify="SUCCESS,FAILURE,DELAY"; mdn=yes``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

MAIL_TYPE = "message/rfc822"
SUBJECT_PREFIX = "XDM/1.0/DDM+"
PATIENT_DOMAIN = "patient.mssante.fr"
_MESSAGE_ID = re.compile(r"<([0-9a-fA-F-]{32,36})@[^>]*>")
_ADDRESS = re.compile(r"[^\s<>;:,\"']+@[^\s<>;:,\"']+")


@dataclass(frozen=True)
class Attachment:
    """A file of the mail: name, media type, bytes."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Mail:
    """What one recipient's mail says (content, not the sending mailbox's headers)."""

    to: str
    subject: str
    body: str = field(repr=False)
    attachments: Sequence[Attachment] = ()
    reply_to: str = ""
    cda_codes: Sequence[str] = ()
    qualified_ins: bool = False
    no_reply: bool = False  # X-MSS-MES: FIN (to a patient only)


@dataclass(frozen=True)
class Requests:
    """What the sender asked for: a delivery notice (DSN), a read receipt (MDN)."""

    notify: bool = False
    read_receipt: bool = False

    def content_type(self) -> str:
        """Return the stored mail's media type, these requests as parameters."""
        params = ""
        if self.notify:
            params += '; notify="SUCCESS,FAILURE,DELAY"'
        if self.read_receipt:
            params += "; mdn=yes"
        return MAIL_TYPE + params

    @classmethod
    def of(cls, content_type: str) -> Requests:
        """Read the requests back from a stored mail's media type."""
        lowered = content_type.lower()
        return cls(notify="notify=" in lowered, read_receipt="mdn=yes" in lowered)


def is_patient_address(address: str) -> bool:
    """Tell whether ``address`` is a patient's MSSanté mailbox (Mon espace santé)."""
    return address.lower().endswith("@" + PATIENT_DOMAIN)


def build_mail(mail: Mail) -> bytes:
    """Return the mail (headers and MIME body, CRLF lines) without the sending headers."""
    message = EmailMessage(policy=policy.SMTP)
    message["To"] = mail.to
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Subject"] = mail.subject
    if mail.cda_codes:
        message["X-MSS-CODECDA"] = ",".join(dict.fromkeys(mail.cda_codes))
        if mail.qualified_ins:
            message["X-MSS-INS"] = "O"
    if mail.no_reply and is_patient_address(mail.to):
        message["X-MSS-MES"] = "FIN"
    message.set_content(mail.body, charset="utf-8", cte="quoted-printable")
    for attachment in mail.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message.as_bytes()


def scrub_addresses(text: str) -> str:
    """Return a server's words with every mail address replaced (a patient's is an INS)."""
    return _ADDRESS.sub("(address)", text)


def message_id(delivery_id: uuid.UUID, domain: str) -> str:
    """Return the Message-ID of a delivery's mail: the same on every attempt."""
    return f"<{delivery_id}@{domain}>"


def delivery_of(value: str) -> uuid.UUID | None:
    """Return the delivery id a Message-ID (or DSN envelope id) carebroker made names."""
    value = value.strip()
    match = _MESSAGE_ID.search(value)
    text = match.group(1) if match else value
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def sending_headers(
    *,
    mailbox: str,
    delivery_id: uuid.UUID,
    now: datetime,
    read_receipt: bool,
    product_reference: str | None = None,
) -> bytes:
    """Return the header lines the sending mailbox puts in front of a stored mail."""
    domain = mailbox.rpartition("@")[2] or "carebroker.invalid"
    lines = [
        f"From: {mailbox}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id(delivery_id, domain)}",
    ]
    if read_receipt:
        lines.append(f"Disposition-Notification-To: {mailbox}")
    if product_reference:
        lines.append(f"X-MSS-NIL: {product_reference}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii", errors="replace")
