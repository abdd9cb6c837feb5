"""Send mails over SMTP submission for the application mailbox (aiosmtplib), and say what happened.

:class:`MailSender` keeps up to ``connections`` authenticated SMTP sessions
(TLS from the first byte, or STARTTLS required, with the mailbox's client
certificate: ``settings.py``) and sends one mail to one recipient at a time.
Every outcome is a :class:`Sent` (never an exception for a server's answer):

- ``accepted``: the server took the mail (250 to DATA);
- ``temporary``: a 4xx answer, a connection refused, a timeout, a dropped
  connection: try again later (the guide's SMTPERRORCODE ``101`` cannot
  connect, ``111`` connection refused, ``421``/``451``/... as the server said);
- ``permanent``: a 5xx answer (``550 5.1.1`` unknown mailbox ...), kept with
  the server's words; retrying would fail the same way.

A delivery status notification (RFC 3461) is asked for with ``NOTIFY`` and
``ORCPT`` on RCPT and ``RET=HDRS`` / ``ENVID`` (the delivery id) on MAIL,
when the server offers the DSN extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from adapters.mssante.mime import scrub_addresses
from adapters.mssante.settings import MssanteSettings, Server

log = logging.getLogger(__name__)
Verdict = Literal["accepted", "temporary", "permanent"]


@dataclass(frozen=True)
class Sent:
    """What the SMTP server made of one mail: verdict, code (SMTPERRORCODE), its words."""

    verdict: Verdict
    code: str
    words: str = ""


class MailSender:
    """A small pool of SMTP sessions to the submission server of the application mailbox."""

    def __init__(self, settings: MssanteSettings) -> None:
        server = settings.smtp
        if server is None or not settings.mailbox:
            raise ValueError("MSSanté sending needs SMTP_URL and MAILBOX")
        self.settings = settings
        self.server: Server = server
        self.mailbox = settings.mailbox
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.connections)
        self._tls = settings.tls_context() if server.security != "plain" else None

    async def send(
        self,
        mail: bytes,
        recipient: str,
        *,
        notify: bool = False,
        envelope_id: str | None = None,
    ) -> Sent:
        """Submit ``mail`` for ``recipient``; return the server's verdict (never raise for it)."""
        async with self._slots:
            try:
                client = await self._session()
            except (aiosmtplib.SMTPConnectError, OSError, TimeoutError) as exc:
                return _connection_trouble(exc)
            except aiosmtplib.SMTPResponseException as exc:
                return _answer(exc.code, exc.message)
            except aiosmtplib.SMTPException as exc:
                return Sent("temporary", "101", type(exc).__name__)
            mail_options: list[str] = []
            rcpt_options: list[str] = []
            if client.supports_extension("dsn"):
                rcpt_options.append("NOTIFY=SUCCESS,FAILURE,DELAY" if notify else "NOTIFY=FAILURE")
                rcpt_options.append(f"ORCPT=rfc822;{recipient}")
                mail_options.append("RET=HDRS")
                if envelope_id:
                    mail_options.append(f"ENVID={envelope_id}")
            try:
                await client.sendmail(
                    self.mailbox,
                    [recipient],
                    mail,
                    mail_options=mail_options,
                    rcpt_options=rcpt_options,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._keep(client)
                refused = exc.recipients[0]
                return _answer(refused.code, refused.message)
            except aiosmtplib.SMTPResponseException as exc:
                # The session may be in any state: start afresh next time.
                await _close(client)
                return _answer(exc.code, exc.message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _close(client)
                return _connection_trouble(exc)
            self._keep(client)
            return Sent("accepted", "250")

    async def _session(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        server = self.server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            tls_context=self._tls,
            timeout=self.settings.timeout_s,
        )
        await client.connect()
        if self.settings.password is not None:
            await client.login(self.settings.login, self.settings.password.get_secret_value())
        return client

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            self._idle.append(client)

    async def close(self) -> None:
        """Close every idle session (QUIT)."""
        idle, self._idle = self._idle, []
        for client in idle:
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        if client.is_connected:
            await client.quit()
    client.close()


def _answer(code: int, message: str) -> Sent:
    words = scrub_addresses(f"{code} {' '.join(message.split())}")[:500]
    if 400 <= code < 500:
        return Sent("temporary", str(code), words)
    if code >= 500:
        return Sent("permanent", str(code), words)
    return Sent("temporary", str(code), words)


def _connection_trouble(exc: BaseException) -> Sent:
    """Map a connection failure to the guide's codes: 111 refused, 101 cannot connect."""
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return Sent("temporary", "111", "connection refused")
    if isinstance(exc, TimeoutError):
        return Sent("temporary", "420", "timeout")
    return Sent("temporary", "101", f"cannot connect ({type(exc).__name__})")
