"""Traces across the store, the outbox, the relay and Kafka (real PostgreSQL, real tansu)."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer
from opentelemetry.trace import SpanKind

from broker import kafka, telemetry, topics
from broker.relay import Relay
from broker.settings import Settings
from broker.store.messages import Accepted, MessageStore
from tests.conftest import wait_for
from tests.integration.observe.conftest import Telemetry
from tests.integration.test_store import envelope


async def _relay_and_consume(settings: Settings, pool: asyncpg.Pool, count: int):  # type: ignore[no-untyped-def]
    await kafka.ensure_topics(settings)
    producer = kafka.Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(Relay(pool, producer, settings.outbox_shards).run(stop))
    consumer = AIOKafkaConsumer(
        topics.ACCEPTED.full_name(settings.kafka_topic_prefix),
        **kafka.client_options(settings),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records = []
    try:
        async with asyncio.timeout(20):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"))
    finally:
        await consumer.stop()
        stop.set()
        await task
        await producer.stop()
    return records


async def test_one_trace_runs_from_the_store_through_kafka_to_the_consumer(
    settings: Settings, pool: asyncpg.Pool, otel: Telemetry
) -> None:
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    with telemetry.internal_span("ingress mllp") as ingress:
        await store.accept([Accepted(envelope("T1"), b"A")])
    trace_id = ingress.get_span_context().trace_id
    [row] = await pool.fetch("SELECT headers FROM outbox")
    assert set(row["headers"]) == {"traceparent"}

    [record] = await _relay_and_consume(settings, pool, 1)
    carrier = telemetry.from_kafka_headers(record.headers)
    topic = topics.ACCEPTED.full_name(settings.kafka_topic_prefix)
    with telemetry.process_span(topic, "router.route", carrier, partition=record.partition) as span:
        assert span.get_span_context().trace_id == trace_id

    spans = {s.name: s for s in otel.spans.get_finished_spans()}
    store_span, send, process = (
        spans["store accept"],
        spans[f"send {topic}"],
        spans[f"process {topic}"],
    )
    assert (
        store_span.parent is not None
        and store_span.parent.span_id == ingress.get_span_context().span_id
    )
    assert send.kind == SpanKind.PRODUCER and send.parent.span_id == store_span.context.span_id  # type: ignore[union-attr]
    assert process.kind == SpanKind.CONSUMER and process.parent.span_id == send.context.span_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in (store_span, send, process)} == {trace_id}
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == topic
    assert process.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == "router.route"
    assert "relay outbox" in spans


async def test_a_trace_the_ingress_put_in_the_envelope_is_the_one_carried(
    settings: Settings, pool: asyncpg.Pool, otel: Telemetry
) -> None:
    with telemetry.internal_span("ingress fhir"):
        carrier = telemetry.current_context()
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    await store.accept([Accepted(envelope("T2").model_copy(update={"trace": carrier}), b"A")])
    [row] = await pool.fetch("SELECT headers FROM outbox")
    assert row["headers"] == carrier
    [record] = await _relay_and_consume(settings, pool, 1)
    sent = telemetry.from_kafka_headers(record.headers)["traceparent"]
    assert sent.split("-")[1] == carrier["traceparent"].split("-")[1]  # same trace id
    assert sent != carrier["traceparent"]  # but the parent is now the relay's send span


async def test_the_relay_counts_what_it_published(
    settings: Settings, pool: asyncpg.Pool, otel: Telemetry
) -> None:
    def published() -> int:
        data = otel.metrics.get_metrics_data()
        return sum(
            point.value
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "carebroker.relay.published"
            for point in metric.data.data_points  # type: ignore[union-attr]
        )

    before = published()
    store = MessageStore(pool, topic_prefix=settings.kafka_topic_prefix)
    await store.accept([Accepted(envelope(f"M{i}"), b"A") for i in range(3)])
    await _relay_and_consume(settings, pool, 3)
    assert published() - before == 3
