"""`GET /metrics` against a real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from broker import kafka, metrics, topics
from broker.settings import Settings
from broker.store.audit import AuditWriter
from broker.store.messages import Accepted, MessageStore
from routing.subscriber import group_id
from tests.integration.audit.conftest import accept, hops, reject
from tests.integration.observe.conftest import http_get
from tests.integration.test_store import envelope

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(pool: asyncpg.Pool, lag: metrics.LagProbe | None = None) -> tuple[str, Samples]:
    """GET /metrics as Prometheus would."""
    response = await http_get("/metrics", pool, lag=lag)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def insert_delivery(
    pool: asyncpg.Pool, recipient: str, status: str, age: timedelta = timedelta(0)
) -> None:
    await pool.execute(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane, partition,"
        " status, created_at) VALUES ($1, $2, now(), $3, 'lane', 0, $4, now() - $5::interval)",
        uuid.uuid4(),
        uuid.uuid4(),
        recipient,
        status,
        age,
    )


async def test_metrics_count_messages_per_partner_and_type(pool: asyncpg.Pool) -> None:
    [first, _] = await accept(pool, "C1", "C2")
    await accept(pool, "H1", sender="chu-montpellier")
    await MessageStore(pool).accept([Accepted(envelope("C1"), b"A")])  # a resend
    await reject(pool)
    await hops(pool, first, "cabinet-dupont")
    await AuditWriter(pool).drain_all()
    _, samples = await scrape(pool)
    oru = {"message_type": "ORU^R01"}
    assert value(samples, "carebroker_messages_received_total", partner="labo-sud", **oru) == 2
    assert (
        value(samples, "carebroker_messages_received_total", partner="chu-montpellier", **oru) == 1
    )
    assert value(samples, "carebroker_duplicates_total", partner="labo-sud", **oru) == 1
    # The rejected frame had no readable type: labelled unknown, never free text.
    assert (
        value(
            samples,
            "carebroker_messages_rejected_total",
            partner="labo-sud",
            message_type="unknown",
        )
        == 1
    )
    # Delivery events count for the recipient, with the message's type looked up.
    assert (
        value(samples, "carebroker_messages_delivered_total", partner="cabinet-dupont", **oru) == 1
    )
    assert (
        value(
            samples,
            "carebroker_audit_events_total",
            kind="routed",
            partner="cabinet-dupont",
            message_type="ORU^R01",
        )
        == 1
    )
    # Scraping twice counts nothing twice: counts live with the chain, not the scrape.
    _, again = await scrape(pool)
    assert value(again, "carebroker_messages_received_total", partner="labo-sud", **oru) == 2


async def test_metrics_show_queues_backlog_and_latency(pool: asyncpg.Pool) -> None:
    await insert_delivery(pool, "cabinet-dupont", "pending", timedelta(minutes=10))
    await insert_delivery(pool, "cabinet-dupont", "pending")
    await insert_delivery(pool, "chu-montpellier", "dead")
    await insert_delivery(pool, "chu-montpellier", "delivered")
    [message_id] = await accept(pool, "C1")  # leaves an outbox row and a pending audit event
    _, samples = await scrape(pool)
    assert value(samples, "carebroker_delivery_queue_depth", recipient="cabinet-dupont") == 2
    age = value(samples, "carebroker_delivery_queue_oldest_age_seconds", recipient="cabinet-dupont")
    assert age is not None and 590 <= age <= 3600
    assert value(samples, "carebroker_deliveries", recipient="chu-montpellier", status="dead") == 1
    assert value(samples, "carebroker_delivery_queue_depth", recipient="chu-montpellier") is None
    assert value(samples, "carebroker_outbox_backlog") == 1
    assert value(samples, "carebroker_audit_pending") == 1
    assert value(samples, "carebroker_store_up") == 1

    await hops(pool, message_id, "cabinet-dupont")
    await AuditWriter(pool).drain_all()
    _, samples = await scrape(pool)
    histogram = "carebroker_delivery_latency_seconds"
    assert value(samples, f"{histogram}_count", recipient="cabinet-dupont") == 1
    assert value(samples, f"{histogram}_bucket", recipient="cabinet-dupont", le="+Inf") == 1
    # Delivered within seconds of acceptance: in the 10 s bucket, not in the 0.1 s one... or
    # faster; the histogram is cumulative either way.
    ten = value(samples, f"{histogram}_bucket", recipient="cabinet-dupont", le="10.0")
    assert ten == 1
    total = value(samples, f"{histogram}_sum", recipient="cabinet-dupont")
    assert total is not None and 0 <= total < 10


async def test_consumer_lag_per_role_comes_from_kafka(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await kafka.ensure_topics(settings)
    producer = kafka.Producer(settings)
    await producer.start()
    accepted = topics.ACCEPTED.full_name(settings.kafka_topic_prefix)
    try:
        # One at a time: tansu gives a multi-record batch a single offset.
        for partition in (0, 0, 0, 1, 1):
            await producer.publish([kafka.Record(accepted, b"x", partition=partition)])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        **kafka.client_options(settings),
        # The group the router role joins: the deployment's prefix included.
        group_id=group_id(settings, topics.Groups.ROUTER),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(accepted, 0)])
        await consumer.commit({TopicPartition(accepted, 0): 2})  # the router took two of three
    finally:
        await consumer.stop()
    _, samples = await scrape(pool, metrics.LagProbe(settings))
    assert value(samples, "carebroker_consumer_lag", role="router", partition="0") == 1
    assert value(samples, "carebroker_consumer_lag", role="router", partition="1") == 2
    assert value(samples, "carebroker_consumer_lag", role="delivery", partition="0") == 0


async def test_an_unreachable_store_or_kafka_still_answers(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    dead = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:9"})
    await pool.execute("DROP TABLE audit_counters")  # the store answers with an error
    text, samples = await scrape(pool, metrics.LagProbe(dead, timeout=2))
    assert value(samples, "carebroker_store_up") == 0
    assert "carebroker_consumer_lag" not in text


def test_labels_never_carry_free_text() -> None:
    shot = metrics.Snapshot(
        counters=[("received", "labo-sud", "DUPONT^JEAN 1970", 1)],
        deliveries=[("cabinet dupont <script>", "pending", 1, 5.0)],
    )
    text = metrics.render(shot).decode()
    assert "DUPONT" not in text and "script" not in text
    assert 'message_type="other"' in text and 'recipient="other"' in text
    assert datetime.now(UTC)  # rendering did no I/O
