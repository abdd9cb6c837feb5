"""Traces across every hop: ingress, store, outbox, relay, Kafka, router, delivery.

Real PostgreSQL, real tansu, real partner sinks; spans collected with the
in-memory exporter.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer
from hl7.mllp import open_hl7_connection
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from broker import kafka, telemetry, topics
from broker.relay import Relay
from broker.settings import Settings
from broker.store.messages import Accepted, MessageStore
from broker.store.outbox import OutboxStore
from tests.conftest import wait_for
from tests.integration.observe.conftest import Flowing, Telemetry
from tests.integration.test_store import envelope
from tests.messages import ORU


async def _relay_and_consume(settings: Settings, pool: asyncpg.Pool, count: int):  # type: ignore[no-untyped-def]
    await kafka.ensure_topics(settings)
    producer = kafka.Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(Relay(OutboxStore(pool, settings.outbox_shards), producer).run(stop))
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


async def test_one_trace_follows_a_message_from_mllp_to_every_partner(
    flowing: Flowing, otel: Telemetry
) -> None:
    """ingress mllp -> send (relay) -> process (router) -> send to each partner, one trace.

    The message is sent over MLLP with python-hl7's client to the real ingress;
    the router's deliveries and the second Kafka hop join the same trace.
    """
    pipeline = flowing.pipeline
    reader, writer = await open_hl7_connection("127.0.0.1", flowing.mllp_port)
    writer.writeblock(ORU.replace(b"\n", b"\r"))
    await writer.drain()
    assert b"MSA|AA|LS-0001" in bytes(await reader.readblock())
    writer.close()
    [message_id] = [r["id"] for r in await pipeline.pool.fetch("SELECT id FROM messages")]
    await pipeline.wait_status([message_id], {"delivered"})

    prefix = pipeline.settings.kafka_topic_prefix
    accepted = topics.ACCEPTED.full_name(prefix)
    requested = topics.DELIVERIES.full_name(prefix)

    def spans() -> dict[str, list[ReadableSpan]]:
        found: dict[str, list[ReadableSpan]] = {}
        for span in otel.spans.get_finished_spans():
            found.setdefault(span.name, []).append(span)
        return found

    # The wake-up spans of the delivery role end when the records arrive.
    await wait_for(lambda: len(spans().get(f"process {requested}", [])) >= 2, timeout=20)
    by_name = spans()
    [ingress] = by_name["ingress mllp"]
    trace_id = ingress.context.trace_id
    in_trace = {
        name: [s for s in found if s.context.trace_id == trace_id]
        for name, found in by_name.items()
    }
    # The group commit serves many connections: its span links to each ingress trace.
    ingress_id = ingress.context.span_id
    [store] = [
        s for s in by_name["store accept"] if ingress_id in [k.context.span_id for k in s.links]
    ]
    [relayed] = in_trace[f"send {accepted}"]
    [routed] = in_trace[f"process {accepted}"]
    [dupont] = in_trace["send cabinet-dupont"]
    [nord] = in_trace["send maison-sante-nord"]
    handed = in_trace[f"send {requested}"]
    woken = in_trace[f"process {requested}"]

    def parent(span: ReadableSpan) -> int:
        assert span.parent is not None, span.name
        return span.parent.span_id

    assert ingress.kind == SpanKind.SERVER and ingress.parent is None
    assert parent(relayed) == ingress.context.span_id
    assert store.start_time is not None and relayed.start_time is not None
    assert store.start_time < relayed.start_time  # published once the commit is done
    assert parent(routed) == relayed.context.span_id and routed.kind == SpanKind.CONSUMER
    assert parent(dupont) == parent(nord) == routed.context.span_id
    assert len(handed) == 2 and {parent(s) for s in handed} == {routed.context.span_id}
    assert {parent(s) for s in woken} == {s.context.span_id for s in handed}

    assert ingress.attributes is not None and routed.attributes is not None
    assert ingress.attributes["carebroker.control_id"] == "LS-0001"
    assert ingress.attributes["carebroker.outcome"] == "accepted"
    assert routed.attributes["messaging.consumer.group.name"] == "router.route"
    assert routed.attributes["carebroker.outcome"] == "routed"
    assert routed.attributes["carebroker.recipients"] == 2
    for sent, protocol in ((dupont, "mllp"), (nord, "fhir")):
        assert sent.attributes is not None
        assert sent.attributes["network.protocol.name"] == protocol
        assert sent.attributes["carebroker.outcome"] == "delivered"
        assert sent.attributes["messaging.message.id"] == str(message_id)
    assert dupont.attributes is not None and dupont.attributes["carebroker.ack_code"] == "AA"
