"""An in-process MLLP listener on the real ingress pipeline, real PostgreSQL behind it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import hl7
import pytest
from hl7.mllp import open_hl7_connection

from adapters.hl7v2.checks import SenderCheck
from adapters.hl7v2.ingress import Ingress
from adapters.hl7v2.mllp import Limits, MllpServer
from broker.directory import Directory, parse_directory
from broker.pseudonym import Pseudonymizer
from broker.store.messages import MessageStore

PARTNERS: dict[str, Any] = {
    "partners": [
        {"id": "corpus-lab", "name": "Corpus sender", "kind": "lab", "facilities": ["CORPUS"]},
        {"id": "labo-sud", "name": "Laboratoire Sud", "kind": "lab", "facilities": ["LABO-SUD"]},
        {
            "id": "legacy-lab",
            "name": "Sends cp1252 labelled 8859/1",
            "kind": "lab",
            "facilities": ["LEGACY"],
            "inbound_charset": "cp1252",
        },
        {
            "id": "strict-lab",
            "name": "Asks for strict validation",
            "kind": "lab",
            "facilities": ["STRICT"],
            "strict": True,
        },
        {
            "id": "picky-hospital",
            "name": "Lists its applications",
            "kind": "hospital",
            "facilities": ["PICKY"],
            "applications": ["ADT1"],
        },
        {
            "id": "tls-clinic",
            "name": "Identified by its certificate",
            "kind": "clinic",
            "facilities": ["TLS-CLINIC"],
            "certificate_cn": "tls-clinic.example",
        },
        {
            "id": "other-clinic",
            "name": "Another certificate",
            "kind": "clinic",
            "facilities": ["OTHER-CLINIC"],
            "certificate_cn": "other-clinic.example",
        },
    ]
}


def directory(partners: dict[str, Any] | None = None) -> Directory:
    return parse_directory(partners or PARTNERS)


@dataclass
class Listener:
    """A running listener and what tests inspect behind it."""

    server: MllpServer
    ingress: Ingress
    store: MessageStore
    pool: asyncpg.Pool

    @property
    def port(self) -> int:
        return self.server.port

    async def send(self, data: bytes, *, tls: ssl.SSLContext | None = None) -> bytes:
        """Send one frame with python-hl7's MLLP client and return the answer block."""
        reader, writer = await open_hl7_connection("127.0.0.1", self.port, ssl=tls, limit=1 << 24)
        try:
            writer.writeblock(data)
            await writer.drain()
            async with asyncio.timeout(20):
                return bytes(await reader.readblock())
        finally:
            writer.close()


StartListener = Callable[..., Awaitable[Listener]]


@pytest.fixture
async def start_listener(pool: asyncpg.Pool, topic_prefix: str) -> AsyncIterator[StartListener]:
    started: list[Listener] = []

    async def start(
        *,
        max_frame_bytes: int = 8 * 1024 * 1024,
        idle_timeout_s: float = 60.0,
        tls: ssl.SSLContext | None = None,
        store_pool: asyncpg.Pool | None = None,
        partners: dict[str, Any] | None = None,
        senders: SenderCheck = "off",
        limits: Limits | None = None,
        ins_production: bool = False,
    ) -> Listener:
        store = MessageStore(store_pool or pool, topic_prefix=topic_prefix)
        ingress = Ingress(
            store,
            directory(partners),
            Pseudonymizer(b"k" * 32),
            senders=senders,
            ins_production=ins_production,
        )
        ingress.start()
        server = MllpServer(
            ingress.handle,
            host="127.0.0.1",
            port=0,
            limits=limits or Limits(max_frame_bytes, idle_timeout_s),
            tls=tls,
            on_incomplete=ingress.incomplete,
            on_overloaded=ingress.overloaded,
        )
        await server.start()
        listener = Listener(server, ingress, store, store_pool or pool)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.server.stop(grace_s=2)
        await listener.ingress.stop()


@pytest.fixture
async def listener(start_listener: StartListener) -> Listener:
    return await start_listener()


def parse_answer(block: bytes, encoding: str = "utf-8") -> hl7.Message:
    """Read an answer with python-hl7 (an independent reader of what carebroker wrote)."""
    return hl7.parse(block.decode(encoding))


def msa(answer: hl7.Message) -> tuple[str, str]:
    segment = answer.segment("MSA")
    return str(segment[1]), str(segment[2])
