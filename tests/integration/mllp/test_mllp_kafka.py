"""A resend of the same control id: the stored ACK again, and no second Kafka record."""

from __future__ import annotations

import asyncio

import asyncpg

from broker import kafka
from broker.relay import Relay
from broker.settings import Settings
from broker.store.outbox import OutboxStore
from tests.conftest import REPO, wait_for
from tests.integration.mllp.conftest import StartListener, msa, parse_answer
from tests.integration.mllp.kafka_records import accepted_records

ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")


async def test_resend_is_answered_identically_and_published_once(
    settings: Settings, pool: asyncpg.Pool, start_listener: StartListener
) -> None:
    await kafka.ensure_topics(settings)
    listener = await start_listener()
    producer = kafka.Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    relay = asyncio.create_task(
        Relay(OutboxStore(pool, settings.outbox_shards), producer).run(stop)
    )
    try:
        first = await listener.send(ORU)
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=20)
        again = await listener.send(ORU)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0  # nothing new to publish
    finally:
        stop.set()
        await relay
        await producer.stop()
    assert msa(parse_answer(first)) == msa(parse_answer(again)) == ("AA", "LS-0001")
    assert first == again
    assert settings.kafka_bootstrap_servers
    records = await accepted_records(settings.kafka_bootstrap_servers, settings.kafka_topic_prefix)
    assert [(r.control_id, r.sender) for r in records] == [("LS-0001", "labo-sud")]
    assert records[0].payload == ORU
