"""The outbox relay against a real PostgreSQL and a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer

from broker import kafka, topics
from broker.envelope import Envelope
from broker.relay import Relay, republish_unrouted
from broker.settings import Settings
from broker.store.messages import Accepted, MessageStore
from broker.store.outbox import OutboxStore
from tests.conftest import wait_for
from tests.integration.test_store import envelope


async def _consume(settings: Settings, count: int) -> list[Envelope]:
    consumer = AIOKafkaConsumer(
        topics.ACCEPTED.full_name(settings.kafka_topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"{settings.kafka_topic_prefix}check",
        max_partition_fetch_bytes=64 << 20,
    )
    await consumer.start()
    got: list[Envelope] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(Envelope.model_validate_json(r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def test_accepted_messages_reach_kafka_in_order_per_key(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await kafka.ensure_topics(settings)
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    sent = [envelope(f"C{i}") for i in range(50)]
    sent = [e.model_copy(update={"ordering_key": f"patient-{i % 3}"}) for i, e in enumerate(sent)]
    await store.accept([Accepted(e, b"A") for e in sent])
    producer = kafka.Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    relay = Relay(OutboxStore(pool, settings.outbox_shards), producer)
    task = asyncio.create_task(relay.run(stop))
    try:
        got = await _consume(settings, 50)
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"))
    finally:
        stop.set()
        await task
        await producer.stop()
    assert {e.message_id for e in got} == {e.message_id for e in sent}
    for key in ("patient-0", "patient-1", "patient-2"):
        assert [e.control_id for e in got if e.ordering_key == key] == [
            e.control_id for e in sent if e.ordering_key == key
        ]
    assert got[0].payload == sent[0].payload


async def test_rows_wait_in_the_outbox_while_kafka_is_unreachable(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    await store.accept([Accepted(envelope("K1"), b"A")])
    dead = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:9"})
    producer = kafka.Producer(dead)
    started = True
    try:
        await producer.start()
    except Exception:
        started = False
    assert not started
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_republish_unrouted_requeues_what_the_router_has_not_taken(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    envs = [envelope(f"R{i}") for i in range(3)]
    await store.accept([Accepted(e, b"A") for e in envs])
    await pool.execute("DELETE FROM outbox")
    await pool.execute("UPDATE messages SET status = 'routed' WHERE control_id = 'R0'")
    count = await republish_unrouted(
        OutboxStore(pool, settings.outbox_shards), settings.kafka_topic_prefix
    )
    assert count == 2
    rows = await pool.fetch("SELECT value FROM outbox ORDER BY id")
    again = [Envelope.model_validate_json(r["value"]) for r in rows]
    assert [e.control_id for e in again] == ["R1", "R2"]
    assert again[0].payload == envs[1].payload
