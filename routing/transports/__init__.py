"""How carebroker hands a message to a partner: one :class:`Transport` interface, one per endpoint.

The delivery workers (``routing/delivery.py``) never know which protocol a
partner speaks: they give a transport an :class:`Outgoing` item and get an
:class:`Outcome` back, which says what to do next:

- ``delivered`` — the partner took it (MLLP AA/CA, HTTP 2xx, a file written);
- ``retry`` — a transient failure (MLLP AR/CR or no ACK in time, HTTP 5xx or
  timeout, connection refused): try again after a backoff;
- ``failed`` — the partner refused this message for good (MLLP AE/CE, HTTP
  4xx): dead-lettered with the partner's answer kept, retried only by replay;
- ``posted`` — it waits in the partner's mailbox until the partner fetches and
  acknowledges it.

MSSanté (``mssante.py``): ``delivered`` means the SMTP server took the mail;
the recipient's server reports later in a notice (``routing/notices.py``).

Transports translate their library's exceptions into outcomes at this
boundary; nothing above them sees an ``OSError`` or an ``httpx`` error.
Errors carry codes and ids only, never message content (design invariant 6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from broker.directory import (
    DirectoryEndpoint,
    FhirEndpoint,
    MailboxEndpoint,
    MllpEndpoint,
    MssanteEndpoint,
    Partner,
)

if TYPE_CHECKING:
    from adapters.mssante.smtp import MailSender

OutcomeStatus = Literal["delivered", "retry", "failed", "posted"]


@dataclass(frozen=True)
class Outgoing:
    """One delivery to attempt: what to send, to whom, and the ids to check the answer against."""

    delivery_id: uuid.UUID
    message_id: uuid.UUID
    control_id: str
    recipient: str
    content_type: str
    payload: bytes = field(repr=False)
    expect_answer: bool = True  # False for an application ACK: never acknowledged


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: the next step, the partner's code, a reason, the answer kept."""

    status: OutcomeStatus
    ack_code: str
    error: str | None = None
    response: bytes | None = field(default=None, repr=False)

    @property
    def endpoint_answered(self) -> bool:
        """Tell whether the endpoint itself worked (for the circuit breaker)."""
        return self.status != "retry"


class Transport(Protocol):
    """Send to one partner endpoint; safe for ``concurrency`` concurrent sends."""

    concurrency: int

    async def send(self, item: Outgoing) -> Outcome:
        """Attempt one delivery; never raise for a partner-side failure, return an Outcome."""

    async def close(self) -> None:
        """Close connections; in-flight sends may fail with a retry outcome."""


def transport_for(partner: Partner, *, mail: MailSender | None = None) -> Transport:
    """Return a new transport for ``partner``'s endpoint (``mail``: the shared SMTP sender)."""
    from routing.transports.directory import DirectoryTransport
    from routing.transports.fhir import FhirTransport
    from routing.transports.mailbox import MailboxTransport
    from routing.transports.mllp import MllpTransport
    from routing.transports.mssante import MssanteTransport

    endpoint = partner.endpoint
    if isinstance(endpoint, MllpEndpoint):
        return MllpTransport(partner.id, endpoint)
    if isinstance(endpoint, FhirEndpoint):
        return FhirTransport(partner.id, endpoint)
    if isinstance(endpoint, MailboxEndpoint):
        return MailboxTransport()
    if isinstance(endpoint, MssanteEndpoint):
        return MssanteTransport(partner.id, mail)
    if isinstance(endpoint, DirectoryEndpoint):
        return DirectoryTransport(partner.id, endpoint)
    raise ValueError(f"partner {partner.id} has no endpoint to deliver to")
