"""Ingress has PostgreSQL connections of its own: no other load can keep a sender waiting.

A process running the ``mllp`` role opens ``database_ingress_pool_size``
connections for ingress besides the general pool every other role shares
(``broker.app.open_stores``). Here the general pool is exhausted, as a flood
of console sign-ins or a router backlog would exhaust it, and a lab's result
must still be stored and acknowledged AA.
"""

from __future__ import annotations

import asyncio

import asyncpg
from hl7.mllp import open_hl7_connection

from adapters.hl7v2.role import MllpRole
from broker.app import open_stores
from broker.console.partners import health
from broker.context import Context
from broker.health import Readiness
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings
from tests.integration.mllp.conftest import directory
from tests.messages import ORU, variant


async def send(port: int, frame: bytes) -> bytes:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    try:
        writer.writeblock(frame)
        await writer.drain()
        async with asyncio.timeout(20):
            return bytes(await reader.readblock())
    finally:
        writer.close()


async def test_a_sender_is_acknowledged_while_every_general_connection_is_taken(
    settings: Settings, database_url: str, pool: asyncpg.Pool
) -> None:
    settings = settings.model_copy(
        update={"database_pool_size": 2, "database_ingress_pool_size": 1}
    )
    stores = await open_stores(settings, database_url, ("mllp", "console"))
    ctx = Context(
        settings=settings,
        stores=stores,
        directory=directory(),
        pseudonymizer=Pseudonymizer(b"k" * 32),
        readiness=Readiness(),
        producer=None,  # type: ignore[arg-type]  # ingress writes the outbox, never Kafka
        stop=asyncio.Event(),
    )
    role = MllpRole()
    await role.start(ctx)
    assert role.server is not None
    general = stores.database.general
    held = [await general.acquire() for _ in range(settings.database_pool_size)]
    console_read = asyncio.create_task(health(stores.console, ["labo-sud"]))
    try:
        answer = await send(role.server.port, variant(ORU, "RESERVED-1"))
        # The sender was answered, its message durably stored, while the console's
        # query still waits for a general connection.
        assert b"MSA|AA|RESERVED-1" in answer
        assert not console_read.done()
        stored = await pool.fetchval("SELECT status FROM messages WHERE control_id = 'RESERVED-1'")
        assert stored == "accepted"
    finally:
        for conn in held:
            await general.release(conn)
        await console_read  # answered once a connection is free again
        await role.stop()
        await stores.database.close()
