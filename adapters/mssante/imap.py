"""Read the application mailbox over IMAP (aioimaplib): search, fetch, flag, wait for new mail.

:class:`ImapMailbox` is the one IMAP client of carebroker: the notice reader
(``routing/notices.py``: DSN and MDN) and the inbound document intake (issue
16: XDM mails) both read the same mailbox through it, each taking its own
kind of mail (a notice is ``multipart/report``; see :data:`REPORTS`) and
marking what it finished with its own keyword, so neither takes the other's
mail. A mail is marked only after its effect is committed (design invariant
1): a crash in between reads it again, and the reader's idempotency keys make
that harmless.

Waiting: IMAP IDLE (RFC 2177) when the server offers it, for at most
``notice_poll_s``, then a search again; polling every ``notice_poll_s``
otherwise. Errors become :class:`MailboxError` (transient: the reader
reconnects after a pause) naming the command, never mail content.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable
from typing import Any

import aioimaplib

from adapters.mssante.settings import MssanteSettings
from broker.errors import TransientError

REPORTS = 'HEADER Content-Type "multipart/report"'
_UIDS = re.compile(rb"^[0-9 ]*$")


class MailboxError(TransientError):
    """The IMAP server refused a command or the connection failed."""


class ImapMailbox:
    """One IMAP session on the application mailbox's folder."""

    def __init__(self, settings: MssanteSettings) -> None:
        server = settings.imap
        if server is None:
            raise ValueError("reading the mailbox needs IMAP_URL")
        self.settings = settings
        self.server = server
        self.client: aioimaplib.IMAP4 | None = None

    async def connect(self) -> None:
        """Connect, log in (password, or the certificate alone) and select the folder."""
        server, settings = self.server, self.settings
        try:
            if server.security == "tls":
                client = aioimaplib.IMAP4_SSL(
                    server.host,
                    server.port,
                    timeout=settings.timeout_s,
                    ssl_context=settings.tls_context(),
                )
            else:
                client = aioimaplib.IMAP4(server.host, server.port, timeout=settings.timeout_s)
            await client.wait_hello_from_server()
        except (OSError, TimeoutError) as exc:
            raise MailboxError(f"cannot connect to the IMAP server ({type(exc).__name__})") from exc
        self.client = client
        if settings.password is not None:
            await self._ok(
                "LOGIN", client.login(settings.login, settings.password.get_secret_value())
            )
        await self._ok("SELECT", client.select(server.folder))

    async def search(self, criteria: str) -> list[str]:
        """Return the UIDs of the folder's mails matching ``criteria``, oldest first."""
        response = await self._ok("SEARCH", self._client.uid_search(criteria))
        uids: list[str] = []
        for line in response.lines:
            if isinstance(line, bytes) and _UIDS.match(line) and line.strip():
                uids += line.decode().split()
        return sorted(uids, key=int)

    async def fetch(self, uid: str) -> bytes:
        """Return the whole mail ``uid`` (without setting \\Seen)."""
        response = await self._ok("FETCH", self._client.uid("fetch", uid, "(BODY.PEEK[])"))
        literals = [bytes(line) for line in response.lines if isinstance(line, bytearray)]
        if not literals:
            raise MailboxError("FETCH returned no message body")
        return max(literals, key=len)

    async def flag(self, uid: str, *flags: str) -> None:
        """Add ``flags`` (keywords or system flags) to mail ``uid``."""
        await self._ok("STORE", self._client.uid("store", uid, "+FLAGS", f"({' '.join(flags)})"))

    async def wait(self, timeout: float) -> None:
        """Return when new mail may have come (IDLE push), or after ``timeout`` seconds."""
        client = self._client
        if not client.has_capability("IDLE"):
            await asyncio.sleep(timeout)
            return
        try:
            idle = await client.idle_start(timeout=timeout + 5)
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await client.wait_server_push(timeout)
            client.idle_done()
            await asyncio.wait_for(idle, self.settings.timeout_s)
        except (OSError, TimeoutError, aioimaplib.Abort) as exc:
            raise MailboxError(f"IDLE failed ({type(exc).__name__})") from exc

    async def close(self) -> None:
        """Log out (best effort)."""
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 1)

    @property
    def _client(self) -> aioimaplib.IMAP4:
        if self.client is None:
            raise MailboxError("not connected")
        return self.client

    async def _ok(self, command: str, pending: Awaitable[Any]) -> Any:
        try:
            response = await pending
        except (OSError, TimeoutError, aioimaplib.Abort) as exc:
            raise MailboxError(f"IMAP {command} failed ({type(exc).__name__})") from exc
        if response.result != "OK":
            raise MailboxError(f"IMAP {command} answered {response.result}")
        return response
