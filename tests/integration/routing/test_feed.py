"""The FHIR feeds: every accepted message once, in order per patient, opposed patients absent.

Real PostgreSQL and tansu: messages are stored as ingress stores them, the
real relay publishes them, the real ``feed`` role (its own consumer group,
no router running) publishes them on ``care.fhir.canonical.v1`` and
``care.fhir.research.v1``, and a plain Kafka consumer reads both topics, as a
regional data platform would.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fhir.resources.R4B.bundle import Bundle

from adapters.fhir.extract import build_envelope as fhir_envelope
from adapters.hl7v2.er7 import replace_fields
from broker import kafka, topics
from broker.envelope import Envelope
from broker.ids import new_id_at
from broker.settings import Settings
from broker.store.messages import Accepted
from routing import consent
from routing.feed import audit_reads, committed_offsets
from tests.conftest import wait_for
from tests.corpus_messages import corpus_messages
from tests.integration.routing.conftest import (
    Pipeline,
    partners_yaml,
    start_pipeline,
    stop_pipeline,
)
from tests.integration.test_fhir_gateway import lab_message
from tests.messages import ORU, REF, variant
from tests.sinks import FhirSink, MllpSink

ROLES = ("relay", "feed")
LAB_FEED = "    feed: {canonical: ['*'], research: ['*']}\n"
GP_FEED = "    feed: {canonical: ['REF^*']}\n"  # cabinet-dupont: referrals, canonical only
OPPOSED = ("1.2.250.1.999.1", "LS-PAT-OPPOSED")  # PID-3 ...^^^LABO-SUD&1.2.250.1.999.1


def with_feeds(text: str) -> str:
    text = text.replace("  - id: labo-sud\n", "  - id: labo-sud\n" + LAB_FEED, 1)
    return text.replace("  - id: cabinet-dupont\n", "  - id: cabinet-dupont\n" + GP_FEED, 1)


@pytest.fixture
async def feed_pipeline(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    chu, dupont, fhir = sinks
    partners = tmp_path / "partners.yaml"
    partners.write_text(with_feeds(partners_yaml(chu.port, dupont.port, fhir.url)))
    running = await start_pipeline(settings, pool, sinks, partners, roles=ROLES)
    try:
        yield running
    finally:
        await stop_pipeline(running)


def corpus_payloads() -> list[bytes]:
    """Every corpus v2 message, each with its own control id (none is a duplicate)."""
    found = []
    for index, (_, message) in enumerate(corpus_messages()):
        text = "\r".join(s.raw for s in message.segments) + "\r"
        found.append(replace_fields(text, {10: f"FEED-{index:04d}", 18: "UNICODE UTF-8"}).encode())
    return found


async def accept_fhir(pipeline: Pipeline, control_id: str) -> Envelope:
    document = lab_message(control_id)
    payload = json.dumps(document).encode()
    message_id, at = new_id_at()
    envelope = fhir_envelope(
        document,
        payload=payload,
        sender="labo-sud",
        control_id=control_id,
        message_id=message_id,
        received_at=at,
        pseudonymizer=pipeline.ctx.pseudonymizer,
    )
    await pipeline.ctx.stores.messages.accept([Accepted(envelope, b"{}")])
    return envelope


async def read_all(settings: Settings, topic: topics.Topic) -> list[Any]:
    """Every record of a topic, partition by partition (a platform's consumer, no group)."""
    name = topic.full_name(settings.kafka_topic_prefix)
    consumer = AIOKafkaConsumer(**kafka.client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(settings.kafka_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Any] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for tp_records in batch.values():
                found.extend(tp_records)
        return found
    finally:
        await consumer.stop()


async def all_fed(pipeline: Pipeline, expected: int) -> bool:
    """Whether the feed decided on ``expected`` messages and committed past every one.

    Kafka's end offsets are not used: tansu reports the base offset of a
    partition's last batch, not its end. The records' own offsets are.
    """
    decided = [e for e in await pipeline.audit() if e["kind"] in ("published", "withheld")]
    if len({e["message_id"] for e in decided}) < expected:
        return False
    settings = pipeline.settings
    accepted = await read_all(settings, topics.ACCEPTED)
    last: dict[int, int] = {}
    for record in accepted:
        last[record.partition] = max(last.get(record.partition, -1), record.offset)
    group = topics.group_id(settings.kafka_topic_prefix, topics.Groups.FEED)
    done = await committed_offsets(
        settings, group, topics.ACCEPTED.full_name(settings.kafka_topic_prefix)
    )
    return all(done.get(partition, 0) > offset for partition, offset in last.items())


def header(record: Any, name: str) -> str:
    return next(v.decode() for k, v in record.headers if k == name)


async def test_every_message_once_in_order_per_patient_opposed_patient_absent(
    feed_pipeline: Pipeline,
) -> None:
    pipeline = feed_pipeline
    await consent.add(
        pipeline.ctx.stores.consent,
        pipeline.ctx.pseudonymizer,
        authority=OPPOSED[0],
        value=OPPOSED[1],
        actor="test",
    )
    corpus = [(raw, "labo-sud") for raw in corpus_payloads()]
    accepted = await pipeline.accept(*corpus)
    # One patient's results, accepted one after the other: the feed keeps their order.
    series = []
    for n in range(8):
        series += await pipeline.accept((variant(ORU, f"SERIES-{n}", "PAT-SERIES"), "labo-sud"))
    opposed = await pipeline.accept(
        (variant(ORU, "OPP-1", OPPOSED[1]), "labo-sud"),
        (variant(ORU, "OPP-2", OPPOSED[1]), "labo-sud"),
    )
    fhir_in = await accept_fhir(pipeline, "FHIR-0001")
    (referral,) = await pipeline.accept((REF, "cabinet-dupont"))  # canonical only
    (not_enabled,) = await pipeline.accept((variant(ORU, "CHU-1"), "chu-montpellier"))
    assert len(accepted) == len(corpus) > 100

    decided = [*accepted, *series, *opposed, fhir_in, referral]
    await wait_for(lambda: all_fed(pipeline, len(decided)), timeout=120)
    canonical = await read_all(pipeline.settings, topics.CANONICAL)
    research = await read_all(pipeline.settings, topics.RESEARCH)

    # Every message once, on each stream its sender enables; FHIR in as well as v2.
    published = [*accepted, *series, fhir_in]
    ids = [header(r, "message-id") for r in canonical]
    assert sorted(ids) == sorted(str(e.message_id) for e in [*published, referral])
    assert len(research) == len(published)
    assert str(not_enabled.message_id) not in ids
    for record in canonical:
        bundle = json.loads(record.value)
        assert bundle["type"] == "message"
        assert bundle["identifier"]["value"] == f"urn:uuid:{header(record, 'message-id')}"

    # Keyed by the patient's pseudonymous ordering key, in acceptance order per patient.
    by_id = {str(e.message_id): e for e in [*published, referral]}
    order: dict[bytes, list[str]] = defaultdict(list)
    for record in sorted(canonical, key=lambda r: (r.partition, r.offset)):
        assert record.key.decode() == by_id[header(record, "message-id")].ordering_key
        order[record.key].append(header(record, "message-id"))
    for key, sequence in order.items():
        expected = [
            str(e.message_id) for e in [*published, referral] if e.ordering_key.encode() == key
        ]
        assert sequence == expected
    series_key = series[0].ordering_key.encode()
    assert order[series_key] == [str(e.message_id) for e in series]

    # The opposed patient is on neither stream; each message's withholding is audited.
    assert not {str(e.message_id) for e in opposed} & set(ids)
    events = await pipeline.audit()
    withheld = [e for e in events if e["kind"] == "withheld"]
    assert {e["message_id"] for e in withheld} == {str(e.message_id) for e in opposed}
    assert {e["detail"]["reason"] for e in withheld} == {"patient opposition on file"}
    assert OPPOSED[1] not in str(events)
    placed = {
        (r["topic"], r["partition"], r["offset"])
        for e in events
        if e["kind"] == "published"
        for r in e["detail"]["records"]
    }
    assert placed == {(r.topic, r.partition, r.offset) for r in [*canonical, *research]}

    # Research records: keyed by the research pseudonym, one per patient, never the routing key.
    routing_keys = {e.ordering_key for e in published}
    assert all(json.loads(r.value)["identifier"]["value"] == r.key.decode() for r in research)
    assert not routing_keys & {r.key.decode() for r in research}
    assert all("message-id" not in dict(r.headers) for r in research)
    assert len({r.key for r in research}) == len({e.ordering_key for e in published})
    for record in research[:20]:
        Bundle.model_validate(json.loads(record.value))


async def test_what_a_platform_reads_is_audited_per_consumer_group(
    feed_pipeline: Pipeline,
) -> None:
    pipeline = feed_pipeline
    envelopes = await pipeline.accept(
        *((variant(ORU, f"READ-{n}", f"PAT-{n}"), "labo-sud") for n in range(5))
    )
    await wait_for(lambda: all_fed(pipeline, len(envelopes)), timeout=60)
    group = f"{pipeline.settings.kafka_topic_prefix}platform-occitanie"
    name = topics.CANONICAL.full_name(pipeline.settings.kafka_topic_prefix)
    platform = AIOKafkaConsumer(
        name,
        **kafka.client_options(pipeline.settings),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await platform.start()
    try:
        read = 0
        while read < len(envelopes):
            batch = await platform.getmany(timeout_ms=1000)
            read += sum(len(r) for r in batch.values())
        await platform.commit()
    finally:
        await platform.stop()

    audited = pipeline.settings.feed.model_copy(update={"consumer_groups": f"other-group, {group}"})
    settings = pipeline.settings.model_copy(update={"feed": audited})
    store = pipeline.ctx.stores.feed
    assert await audit_reads(settings, store) == 1
    assert await audit_reads(settings, store) == 0  # nothing more read: nothing more audited
    events = [e for e in await pipeline.audit() if e["kind"] == "feed_read"]
    assert len(events) == 1
    detail = events[0]["detail"]
    assert (detail["group"], detail["topic"], detail["records"]) == (group, name, 5)
    published = {
        (r["partition"], r["offset"])
        for e in await pipeline.audit()
        if e["kind"] == "published"
        for r in e["detail"]["records"]
        if r["stream"] == "canonical"
    }
    # Which messages the group read follows from the two: every published offset is in a range.
    assert all(
        any(lo <= offset < hi for p, (lo, hi) in detail["read"].items() if int(p) == partition)
        for partition, offset in published
    )
