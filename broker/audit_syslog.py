"""Stream the audit trail to an Audit Record Repository over syslog (IHE ATNA ITI-20).

Each chained event leaves as a DICOM/RFC 3881 ``AuditMessage``
(``broker.audit_export.to_atna``) in an RFC 5424 syslog message, framed by
octet counting (``MSG-LEN SP SYSLOG-MSG``, RFC 5425 §4.3 / RFC 6587 §3.4.1),
over TCP or TLS (RFC 5425; mutual TLS when a client certificate is set, as
ITI-19 asks). Header per ITI-20: facility 10 (security/authorization) and
severity 5 (notice), so PRI 85; APP-NAME ``carebroker``; MSGID
``IHE+RFC-3881``; the message is UTF-8 with a BOM.

Never dropped: the sender keeps its position in the chain (``audit_cursors``)
in PostgreSQL and advances it only after a batch was written and flushed to
the repository. While the repository is unreachable, nothing moves: the
audit table itself is the local buffer, and the sender catches up, in chain
order, when the repository is back. After a crash the last batch may be sent
twice; each message carries its chain position and event id, so the
repository can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from datetime import date

from broker.audit_export import to_atna
from broker.errors import StoreRefusedError, StoreUnavailableError
from broker.settings import Settings
from broker.store.audit import AuditStore, Row

log = logging.getLogger(__name__)

PRI = 10 * 8 + 5  # facility 10 authpriv, severity 5 notice (IHE ITI-20)
MSGID = "IHE+RFC-3881"
BOM = "\ufeff"
CURSOR = "syslog"  # this follower's name in audit_cursors


def frame(row: Row, hostname: str, site: str = "carebroker") -> bytes:
    """Return one RFC 5424 syslog message with its octet-counting frame."""
    timestamp = row.recorded_at.isoformat(timespec="microseconds")
    header = f"<{PRI}>1 {timestamp} {hostname} carebroker {os.getpid()} {MSGID} -"
    body = f"{header} {BOM}{to_atna(row, site)}".encode()
    return f"{len(body)} ".encode() + body


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Return the client TLS context for the repository (server verified, client cert if set)."""
    context = ssl.create_default_context(
        cafile=str(settings.audit_syslog_ca) if settings.audit_syslog_ca else None
    )
    if settings.audit_syslog_cert:
        context.load_cert_chain(
            str(settings.audit_syslog_cert),
            str(settings.audit_syslog_key) if settings.audit_syslog_key else None,
        )
    return context


class SyslogSender:
    """Forward chained audit events to a syslog repository, from where it last stopped."""

    def __init__(self, store: AuditStore, settings: Settings, batch: int = 200) -> None:
        if settings.audit_syslog_host is None:
            raise ValueError("audit_syslog_host is not set")
        self.store = store
        self.host = settings.audit_syslog_host
        self.port = settings.audit_syslog_port
        self.ssl = tls_context(settings) if settings.audit_syslog_tls else None
        self.batch = batch
        self.hostname = socket.gethostname() or "-"
        self.sent = 0
        self.connected = False
        self._writer: asyncio.StreamWriter | None = None

    async def position(self) -> tuple[date, int] | None:
        """Return the last (day, seq) the repository has, or None before the first send."""
        return await self.store.position(CURSOR)

    async def send_pending(self) -> int:
        """Send every event after the cursor, a batch at a time; return how many were sent.

        Raises OSError when the repository cannot be reached or the connection
        breaks; what was not confirmed stays after the cursor.
        """
        total = 0
        while True:
            after = await self.position()
            rows = await self.store.read(after=after, limit=self.batch)
            if not rows:
                return total
            writer = await self._connect()
            try:
                writer.writelines(frame(row, self.hostname) for row in rows)
                await writer.drain()
            except OSError:
                await self._close()
                raise
            last = rows[-1]
            await self.store.advance(CURSOR, last.day, last.seq)
            total += len(rows)
            self.sent += len(rows)

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
        self._writer = writer
        self.connected = True
        return writer

    async def _close(self) -> None:
        self.connected = False
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await self._writer.wait_closed()
            self._writer = None

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Send until ``stop`` is set; back off while the repository or the store is away."""
        backoff = interval
        while not stop.is_set():
            try:
                await self.send_pending()
                backoff = interval
            except (OSError, TimeoutError, ssl.SSLError):
                log.warning(
                    "audit repository unreachable; events wait in the audit trail",
                    extra={"repository": f"{self.host}:{self.port}"},
                )
                backoff = min(backoff * 2, 30.0)
            except (StoreUnavailableError, StoreRefusedError):
                log.warning("audit syslog: store unavailable, retrying")
                backoff = min(backoff * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
        await self._close()
