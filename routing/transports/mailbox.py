"""Deliver by posting to the partner's mailbox: the message waits in PostgreSQL.

Nothing leaves carebroker here. The delivery worker marks the delivery
``posted``; the partner lists, fetches and acknowledges it over HTTP
(``routing/mailbox.py``), and only its acknowledgement makes it delivered.
"""

from __future__ import annotations

from routing.transports import Outcome, Outgoing


class MailboxTransport:
    """Post to a mailbox: always immediate, never fails."""

    concurrency = 64

    async def send(self, item: Outgoing) -> Outcome:
        """Return ``posted``: the row itself is the mailbox entry."""
        return Outcome("posted", "mailbox")

    async def close(self) -> None:
        """Nothing to close."""
