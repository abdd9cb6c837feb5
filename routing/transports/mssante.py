"""Deliver a mail over MSSanté: the stored mail, the sending mailbox's headers, one SMTP submission.

The router stored the whole mail for the recipient (``routing/cisis.py``,
``deliveries.payload``); this transport puts the sending mailbox's headers in
front of it (``From``, ``Date``, the delivery's ``Message-ID``, the read
receipt request, ``X-MSS-NIL``: ``adapters/mssante/mime.py``) and submits it
to the ``To`` address through the shared :class:`MailSender`. Outcomes:

- the server took it (250): ``delivered`` (its ack code ``250``); what
  happens next at the recipient's server comes back as a delivery status
  notification, read by ``routing/notices.py``;
- 4xx, connection refused, timeout: ``retry`` with backoff;
- 5xx: ``failed`` (dead-lettered) with the server's words kept
  (``deliveries.last_error`` and ``response``).

Without ``CAREBROKER_MSSANTE__SMTP_URL`` a delivery waits (``retry``) and
says why, rather than being lost.
"""

from __future__ import annotations

import email.parser
import email.policy
from datetime import UTC, datetime

from adapters.mssante import mime
from adapters.mssante.smtp import MailSender
from routing.transports import Outcome, Outgoing

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.SMTP)


class MssanteTransport:
    """Submit stored mails over SMTP for the application mailbox."""

    def __init__(self, partner_id: str, sender: MailSender | None) -> None:
        self.partner_id = partner_id
        self.sender = sender
        self.concurrency = sender.settings.connections if sender is not None else 1

    async def send(self, item: Outgoing) -> Outcome:
        """Send one stored mail; 4xx and connection trouble retry, 5xx fail with the words."""
        if self.sender is None:
            return Outcome(
                "retry",
                "not-configured",
                "MSSanté sending is not configured (CAREBROKER_MSSANTE__SMTP_URL, __MAILBOX)",
            )
        recipient = str(_HEADERS.parsebytes(item.payload).get("To", "")).strip()
        if not recipient:
            return Outcome("failed", "no-recipient", "the stored mail has no To address")
        requests = mime.Requests.of(item.content_type)
        settings = self.sender.settings
        header = mime.sending_headers(
            mailbox=self.sender.mailbox,
            delivery_id=item.delivery_id,
            now=datetime.now(UTC),
            read_receipt=requests.read_receipt,
            product_reference=settings.product_reference,
        )
        sent = await self.sender.send(
            header + item.payload,
            recipient,
            notify=requests.notify,
            envelope_id=item.delivery_id.hex,
        )
        if sent.verdict == "accepted":
            return Outcome("delivered", sent.code, None, sent.code.encode())
        if sent.verdict == "temporary":
            return Outcome("retry", sent.code, sent.words, sent.words.encode())
        return Outcome("failed", sent.code, sent.words, sent.words.encode())

    async def close(self) -> None:
        """Nothing of its own: the shared sender is closed by the delivery role."""
