"""Read delivery status notifications (RFC 3464) and read receipts (RFC 8098) (pure).

A notice is a ``multipart/report`` mail:

- ``report-type=delivery-status`` (DSN): a ``message/delivery-status`` part
  with per-message fields (``Original-Envelope-Id``: the ENVID carebroker
  gave, the delivery id) and one block per recipient (``Final-Recipient``,
  ``Action``: delivered, relayed, expanded, delayed or failed, ``Status``
  ``5.1.1``, ``Diagnostic-Code`` ``smtp; 550 5.1.1 ...``), then the returned
  headers (``text/rfc822-headers`` or the whole ``message/rfc822``) with the
  original ``Message-ID``;
- ``report-type=disposition-notification`` (MDN): a
  ``message/disposition-notification`` part with ``Original-Message-ID``,
  ``Final-Recipient`` and ``Disposition`` (``automatic-action/
  MDN-sent-automatically; processed``, or ``.../processed/Error: 902^label``
  as the lps guide's ``struct-msg-mdn.md`` writes an integration error; RFC
  8098's ``processed/error`` with an ``Error:`` field is read too).

Each recipient block becomes a :class:`Report` naming the delivery it is about
(the Message-ID carebroker gave is ``<delivery id@domain>``), the outcome, the
code the ZAM carries (SMTPERRORCODE for a DSN, the consumer's error code for
an MDN) and the server's words, capped, every mail address in them replaced
(a patient's address is their INS: design invariant 6).
"""

from __future__ import annotations

import email
import email.parser
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from typing import Literal

from adapters.mssante.mime import delivery_of, scrub_addresses

Kind = Literal["dsn", "mdn"]
FINAL_ACTIONS = frozenset({"delivered", "relayed", "expanded", "failed"})
READ_TYPES = frozenset({"displayed", "processed", "dispatched"})
WORDS_MAX = 500
_SMTP_CODE = re.compile(r"\b([245]\d\d)\b")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Enhanced status (RFC 3463) -> the SMTP reply code of the guide's SMTPERRORCODE table.
_STATUS_CODES = {
    "5.1.1": "550",
    "5.1.2": "512",
    "5.1.3": "513",
    "5.1.10": "550",
    "5.2.1": "550",
    "5.2.2": "552",
    "5.2.3": "523",
    "5.3.4": "523",
    "5.4.4": "512",
    "5.7.1": "541",
    "4.2.2": "422",
    "4.3.1": "431",
    "4.4.1": "441",
    "4.4.2": "442",
    "4.4.7": "420",
}


@dataclass(frozen=True)
class Report:
    """What a notice says about one recipient of one mail."""

    delivery_id: uuid.UUID | None
    recipient: str = field(repr=False)
    status: str  # DSN Action, or the MDN disposition type
    final: bool
    success: bool
    code: str = ""  # SMTPERRORCODE (DSN failure) or the consumer's error code (MDN)
    label: str = ""
    words: str = ""


@dataclass(frozen=True)
class Notice:
    """A DSN or an MDN: its idempotency key and its reports."""

    kind: Kind
    key: str
    reports: tuple[Report, ...]


def read_notice(data: bytes) -> Notice | None:
    """Return the notice a mail is, or None when it is neither a DSN nor an MDN."""
    mail = email.message_from_bytes(data, policy=policy.default)
    if mail.get_content_type() != "multipart/report":
        return None
    report_type = str(mail.get_param("report-type", "")).lower()
    key = str(mail.get("Message-ID", "")).strip() or hashlib.sha256(data).hexdigest()
    if report_type == "delivery-status":
        return Notice("dsn", key, tuple(_dsn_reports(mail)))
    if report_type == "disposition-notification":
        return Notice("mdn", key, tuple(_mdn_reports(mail)))
    return None


def _part(mail: Message, content_type: str) -> Message | None:
    for part in mail.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # A parser that left the fields as text: split the blocks on blank lines.
    text = payload if isinstance(payload, str) else ""
    parser = email.parser.HeaderParser(policy=policy.default)
    return [parser.parsestr(block) for block in re.split(r"\r?\n\r?\n", text) if block.strip()]


def _original_message_id(mail: Message) -> str:
    for content_type in ("text/rfc822-headers", "message/rfc822"):
        part = _part(mail, content_type)
        if part is None:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return str(payload[0].get("Message-ID", ""))
        if isinstance(payload, str):
            headers = email.parser.HeaderParser(policy=policy.default).parsestr(payload)
            return str(headers.get("Message-ID", ""))
    return ""


def _address(value: str) -> str:
    """Return the address of an ``rfc822; addr`` field."""
    return value.partition(";")[2].strip() if ";" in value else value.strip()


def _dsn_reports(mail: Message) -> list[Report]:
    part = _part(mail, "message/delivery-status")
    if part is None:
        return []
    blocks = _blocks(part)
    if not blocks:
        return []
    per_message, recipients = blocks[0], blocks[1:]
    delivery_id = delivery_of(str(per_message.get("Original-Envelope-Id", ""))) or delivery_of(
        _original_message_id(mail)
    )
    reports = []
    for block in recipients:
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip()
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        failed = action == "failed"
        code = _smtp_code(diagnostic, status) if failed else ""
        reports.append(
            Report(
                delivery_id=delivery_id,
                recipient=_address(str(block.get("Final-Recipient", ""))),
                status=action,
                final=action in FINAL_ACTIONS,
                success=action in FINAL_ACTIONS and not failed,
                code=code,
                words=scrub_addresses(f"{status} {diagnostic}".strip())[:WORDS_MAX],
            )
        )
    return reports


def _smtp_code(diagnostic: str, status: str) -> str:
    """Return the SMTP reply code of a failure: the server's, else from the enhanced status."""
    text = diagnostic.partition(";")[2] or diagnostic
    match = _SMTP_CODE.search(text)
    if match:
        return match.group(1)
    found = _STATUS.search(status)
    if found is None:
        return "554"
    enhanced = ".".join(found.groups())
    return _STATUS_CODES.get(enhanced, "554" if enhanced.startswith("5") else "451")


def _mdn_reports(mail: Message) -> list[Report]:
    part = _part(mail, "message/disposition-notification")
    if part is None:
        return []
    blocks = _blocks(part)
    if not blocks:
        return []
    fields = blocks[0]
    disposition = " ".join(str(fields.get("Disposition", "")).split())
    _, _, outcome = disposition.partition(";")
    kind, _, modifier = outcome.strip().partition("/")
    kind = kind.strip().lower()
    code, label = "", ""
    error_text = ""
    if modifier.lower().startswith("error"):
        error_text = modifier.partition(":")[2].strip() or str(fields.get("Error", "")).strip()
    if error_text:
        head = error_text.split("|", 1)[0]
        code, _, rest = head.partition("^")
        code = code.strip()
        label = rest.split("^", 1)[0].strip()
    failed = bool(modifier) or kind not in READ_TYPES
    if failed and not code:
        code, label = "906", "Erreur 'Autre'"
    return [
        Report(
            delivery_id=delivery_of(str(fields.get("Original-Message-ID", ""))),
            recipient=_address(str(fields.get("Final-Recipient", ""))),
            status=kind or "unknown",
            final=True,
            success=not failed,
            code=code,
            label=label,
            words=scrub_addresses(disposition)[:WORDS_MAX],
        )
    ]
