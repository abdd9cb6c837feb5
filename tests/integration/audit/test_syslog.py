"""The RFC 5424 syslog sender (IHE ATNA ITI-20) against a local TLS repository on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree import ElementTree as ET

import asyncpg
import pytest

from broker.audit_syslog import SyslogSender
from broker.local import free_port
from broker.settings import Settings
from broker.store import audit
from broker.store.audit import AuditStore, AuditWriter
from tests.certs import self_signed_certificate
from tests.conftest import wait_for
from tests.integration.audit.conftest import accept


class Repository:
    """An audit record repository: a TLS syslog listener that keeps what it receives."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.context = context
        self.data = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, ssl=self.context
        )

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            self.data.extend(chunk)
        writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def messages(self) -> list[str]:
        """Split the stream by octet counting (RFC 5425 §4.3)."""
        out, data = [], bytes(self.data)
        while data:
            length, _, rest = data.partition(b" ")
            out.append(rest[: int(length)].decode())
            data = rest[int(length) :]
        return out


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[tuple[Repository, Settings]]:
    cert, key = self_signed_certificate(tmp_path / "repository")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    repo = Repository(free_port(), context)
    settings = Settings(
        audit_syslog_host="127.0.0.1",
        audit_syslog_port=repo.port,
        audit_syslog_tls=True,
        audit_syslog_ca=cert,
    )
    yield repo, settings
    await repo.stop()


async def test_events_wait_while_the_repository_is_down_then_all_arrive_in_order(
    pool: asyncpg.Pool, repository: tuple[Repository, Settings]
) -> None:
    repo, settings = repository
    await accept(pool, "C1", "C2", "C3")
    await AuditWriter(pool).drain_all()
    sender = SyslogSender(AuditStore(pool), settings)
    with pytest.raises(ConnectionRefusedError):  # nobody listens yet
        await sender.send_pending()
    assert await sender.position() is None  # nothing confirmed, nothing skipped

    await repo.start()
    assert await sender.send_pending() == 3
    await accept(pool, "C4")
    await AuditWriter(pool).drain_all()
    assert await sender.send_pending() == 1
    rows = await audit.read(pool)
    assert await sender.position() == (rows[-1].day, rows[-1].seq)
    await sender._close()
    await wait_for(lambda: len(repo.messages()) == 4)

    messages = repo.messages()
    for message, row in zip(messages, rows, strict=True):
        header, _, body = message.partition(" \ufeff")
        pri_version, _timestamp, _host, app, _pid, msgid, structured = header.split(" ")
        assert (pri_version, app, msgid, structured) == ("<85>1", "carebroker", "IHE+RFC-3881", "-")
        xml = ET.fromstring(body)
        assert xml.tag == "AuditMessage"
        participant = xml.find("ParticipantObjectIdentification")
        assert participant is not None and participant.get("ParticipantObjectID") == str(
            row.message_id
        )


async def test_the_sender_catches_up_by_itself(
    pool: asyncpg.Pool, repository: tuple[Repository, Settings]
) -> None:
    repo, settings = repository
    await accept(pool, "C1", "C2")
    await AuditWriter(pool).drain_all()
    sender = SyslogSender(AuditStore(pool), settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop, interval=0.05))
    await asyncio.sleep(0.3)  # it tries, fails, backs off
    assert sender.sent == 0
    await repo.start()
    await wait_for(lambda: sender.sent == 2, timeout=20)
    stop.set()
    await task
    await wait_for(lambda: len(repo.messages()) == 2)


async def test_a_repository_with_an_untrusted_certificate_gets_nothing(
    pool: asyncpg.Pool, repository: tuple[Repository, Settings], tmp_path: Path
) -> None:
    repo, _ = repository
    # Another key pair: a CA that did not sign the repository's certificate.
    other_ca, _ = self_signed_certificate(tmp_path / "other")
    await repo.start()
    await accept(pool, "C1")
    await AuditWriter(pool).drain_all()
    sender = SyslogSender(
        AuditStore(pool),
        Settings(
            audit_syslog_host="127.0.0.1", audit_syslog_port=repo.port, audit_syslog_ca=other_ca
        ),
    )
    with pytest.raises(ssl.SSLError):
        await sender.send_pending()
    assert await sender.position() is None
    assert repo.data == b""
