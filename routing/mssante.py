"""The delivery role's MSSanté side: the shared SMTP sender, and the reader of notices.

One :class:`~adapters.mssante.smtp.MailSender` per process serves every
MSSanté recipient's transport (their number is the number of addresses mailed,
the SMTP sessions' is ``CAREBROKER_MSSANTE__CONNECTIONS``). With an IMAP
server configured, the notice reader (``routing/notices.py``) runs here too:
it reads delivery status notifications and read receipts from the
application mailbox and turns them into delivery updates and ZAM messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from adapters.mssante.smtp import MailSender
from broker.directory import Partner
from routing import app_ack
from routing.transports import Transport, transport_for

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)


class MssanteService:
    """Own the SMTP sender and the notice reader of one delivery process."""

    def __init__(self, ctx: Context, acks: app_ack.Lanes) -> None:
        self.ctx = ctx
        self.acks = acks
        settings = ctx.settings.mssante
        self.sender = MailSender(settings) if settings.smtp is not None else None
        self._task: asyncio.Task[None] | None = None

    def transport_for(self, partner: Partner) -> Transport:
        """Return the transport of a partner; MSSanté ones share this process's sender."""
        return transport_for(partner, mail=self.sender)

    async def start(self) -> None:
        """Start reading notices when the mailbox's IMAP server is configured."""
        from routing.notices import NoticeReader

        if self.ctx.settings.mssante.imap is None:
            return
        reader = NoticeReader(self.ctx, self.acks, self.ctx.stores.mssante)
        self._task = asyncio.create_task(reader.run(), name="mssante-notices")

    async def stop(self) -> None:
        """Stop the reader, close the SMTP sessions."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.sender is not None:
            await self.sender.close()
