"""The feed role: accepted messages as FHIR for data platforms, and pseudonymised for research.

A FastStream subscriber (consumer group ``feed.publish``) reads
``care.messages.accepted.v1`` apart from the router (its own group, its own
process if wanted: the router's hot path does no feed work) and publishes,
for each message whose sender and type the directory enables (``feed:`` per
partner):

- ``care.fhir.canonical.v1``: the message as a FHIR R4 message Bundle (HL7 v2
  translated by the v2-to-FHIR implementation guide, with a sampled
  validation like the router's; FHIR as received), keyed by the patient's
  pseudonymous ordering key, so one patient's messages stay in order;
- ``care.fhir.research.v1``: the same Bundle pseudonymised under the research
  key (``adapters/translate/research.py``), keyed by the patient's research
  pseudonym.

A patient with an opposition on file is not published (audited
``withheld``, as is a message that cannot be translated); every message
published is audited ``published`` with the topic, partition and offset of
each of its records, in one transaction per batch, before the Kafka offsets
are committed. The same
message always gives the same Bundle id: after a crash between publishing
and committing, a record may come twice (Kafka's at-least-once), in the same
order, and a consumer drops the copy by ``Bundle.id``.

What the data platforms read is audited too: every ``feed.audit_interval_s``
the committed offsets of the consumer groups named in ``feed.consumer_groups``
are read, and each advance is a ``feed_read`` event (group, topic, partition,
from, to).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from adapters.translate.bundle import dumps
from adapters.translate.research import ResearchPseudonymizer
from adapters.translate.sampling import should_validate
from adapters.translate.settings import FeedSettings
from broker import kafka, topics
from broker.directory import Directory, Partner
from broker.envelope import Envelope
from broker.errors import KafkaUnavailableError, MessageError, TransientError
from broker.events import AuditEvent
from broker.settings import Settings
from broker.store.db import UNAVAILABLE
from broker.store.feed import FeedStore
from broker.store.stores import Stores
from routing.render import FHIR_CONTENT_TYPE, RenderError, fhir_message
from routing.subscriber import REVOKE_WAIT_S, KafkaMessage, kafka_broker, records, subscribe

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

ACTOR = "feed"
BATCH_MAX = 200
Stream = Literal["canonical", "research"]
STREAMS: tuple[Stream, ...] = ("canonical", "research")
OPPOSED = "patient opposition on file"
REFUSED_INS = "INS present without a qualified identity and the sender's identity policy is refuse"
_RETRY_LATER: tuple[type[BaseException], ...] = (
    TransientError,
    KafkaError,
    OSError,
    TimeoutError,
    *UNAVAILABLE,
)
_TRANSLATION_BUGS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


@dataclass
class FeedStats:
    """What one batch did (for logs and tests)."""

    published: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    withheld: int = 0
    not_enabled: int = 0


def streams_of(sender: Partner | None, message_type: str) -> tuple[Stream, ...]:
    """Return the feeds the directory enables for this sender and message type."""
    policy = sender.feed if sender is not None else None
    if policy is None:
        return ()
    return tuple(s for s in STREAMS if policy.publishes(s, message_type))


def any_feed(directory: Directory) -> bool:
    """Tell whether any partner of the directory has a feed enabled."""
    return any(
        p.feed is not None and (p.feed.canonical or p.feed.research)
        for p in directory.partners.values()
    )


class Feed:
    """Publish batches of accepted messages on the FHIR feeds (the logic under the subscriber)."""

    def __init__(
        self,
        store: FeedStore,
        producer: kafka.Producer,
        research: ResearchPseudonymizer,
        *,
        topic_prefix: str,
        validation_sample: float = 0.0,
    ) -> None:
        self.store = store
        self.producer = producer
        self.research = research
        self.topics: dict[Stream, str] = {
            "canonical": topics.CANONICAL.full_name(topic_prefix),
            "research": topics.RESEARCH.full_name(topic_prefix),
        }
        self.validation_sample = validation_sample

    async def publish(self, envelopes: Sequence[Envelope], directory: Directory) -> FeedStats:
        """Publish a batch in order, then audit it; raise to have Kafka give it again."""
        stats = FeedStats()
        wanted = []
        for envelope in envelopes:
            sender = directory.partner(envelope.sender)
            streams = streams_of(sender, envelope.message_type)
            if streams:
                wanted.append((envelope, sender, streams))
            else:
                stats.not_enabled += 1
        if not wanted:
            return stats
        opposed = await self.store.opposed(
            k.digest for envelope, _, _ in wanted for k in envelope.patient_keys
        )
        out: list[kafka.Record] = []
        published: list[tuple[Envelope, Stream, tuple[str, ...]]] = []
        audited: list[AuditEvent] = []
        for envelope, sender, streams in wanted:
            # Translation is CPU work, about 1 ms a message: let the consumer's heartbeats
            # and the other roles of the process run between messages, or a large batch
            # on a busy machine outlasts the group's session and Kafka takes the
            # partitions away mid-batch.
            await asyncio.sleep(0)
            made = _withheld_reason(envelope, sender, opposed) or self._render(envelope, sender)
            if isinstance(made, str):
                stats.withheld += 1
                audited.append(_withheld(envelope, streams, made))
                continue
            bundle, flags = made
            for stream in streams:
                try:
                    out.append(self._record(envelope, stream, bundle))
                except _TRANSLATION_BUGS as exc:  # content the pseudonymiser did not foresee
                    log.warning(
                        "feed: research record not made",
                        extra={"message_id": str(envelope.message_id), "error": type(exc).__name__},
                    )
                    stats.withheld += 1
                    reason = f"pseudonymisation failed ({type(exc).__name__})"
                    audited.append(_withheld(envelope, (stream,), reason))
                    continue
                published.append((envelope, stream, flags))
        placed = await self.producer.publish_placed(out) if out else []
        # One `published` event per message, naming where each of its records landed.
        landed: dict[uuid.UUID, tuple[Envelope, list[dict[str, Any]], tuple[str, ...]]] = {}
        for (envelope, stream, flags), (partition, offset) in zip(published, placed, strict=True):
            stats.published[stream] += 1
            where = {"stream": stream, "topic": self.topics[stream]}
            entry = landed.setdefault(envelope.message_id, (envelope, [], flags))
            entry[1].append({**where, "partition": partition, "offset": offset})
        for envelope, records_of, flags in landed.values():
            audited.append(
                AuditEvent(
                    kind="published",
                    actor=ACTOR,
                    message_id=envelope.message_id,
                    control_id=envelope.control_id,
                    partner=envelope.sender,
                    detail={"records": records_of, **({"flags": list(flags)} if flags else {})},
                )
            )
        await self.store.record(audited)
        return stats

    def _render(
        self, envelope: Envelope, sender: Partner | None
    ) -> tuple[dict[str, Any], tuple[str, ...]] | str:
        """Return the message's FHIR Bundle and flags, or why it cannot be made."""
        identity = envelope.identity
        try:
            bundle, flags, _ = fhir_message(
                envelope,
                # An INS travels only when the identity is qualified (as for a recipient).
                strip_ins=identity.ins_present and not identity.ins_qualified,
                validate=(sender is not None and sender.validate_fhir)
                or should_validate(str(envelope.message_id), self.validation_sample),
            )
        except (MessageError, RenderError) as exc:
            where = f" at {exc.location}" if isinstance(exc, MessageError) and exc.location else ""
            log.warning(
                "feed: message not translated",
                extra={"message_id": str(envelope.message_id), "error": type(exc).__name__},
            )
            return f"cannot be translated{where}"
        except _TRANSLATION_BUGS as exc:
            log.warning(
                "feed: translation failed",
                extra={"message_id": str(envelope.message_id), "error": type(exc).__name__},
            )
            return f"translation failed ({type(exc).__name__})"
        return bundle, tuple(flags)

    def _record(self, envelope: Envelope, stream: Stream, bundle: dict[str, Any]) -> kafka.Record:
        headers = [
            ("message-type", envelope.message_type.encode()),
            ("content-type", FHIR_CONTENT_TYPE.encode()),
        ]
        if stream == "canonical":
            return kafka.Record(
                self.topics[stream],
                dumps(bundle).encode(),
                envelope.ordering_key.encode(),
                headers=[
                    ("message-id", str(envelope.message_id).encode()),
                    ("sender", envelope.sender.encode()),
                    *headers,
                ],
            )
        record = self.research.transform(bundle, envelope.ordering_key)
        return kafka.Record(
            self.topics[stream],
            dumps(record).encode(),
            record["identifier"]["value"].encode(),
            headers=headers,
        )


def _withheld_reason(envelope: Envelope, sender: Partner | None, opposed: set[str]) -> str | None:
    if any(k.digest in opposed for k in envelope.patient_keys):
        return OPPOSED
    identity = envelope.identity
    refused = sender is not None and sender.identity_policy == "refuse"
    if refused and identity.ins_present and not identity.ins_qualified:
        return REFUSED_INS
    return None


def _withheld(envelope: Envelope, streams: Iterable[Stream], reason: str) -> AuditEvent:
    return AuditEvent(
        kind="withheld",
        actor=ACTOR,
        outcome="minor_failure",
        message_id=envelope.message_id,
        control_id=envelope.control_id,
        partner=envelope.sender,
        detail={"streams": list(streams), "reason": reason},
    )


def pseudonymizer(settings: FeedSettings, key: bytes) -> ResearchPseudonymizer:
    """Return the research stream's pseudonymiser under ``key`` and the feed settings."""
    return ResearchPseudonymizer(
        key,
        shift_days=settings.research_date_shift_days,
        birth_precision=settings.research_birth_date,
        postal_codes_kept=settings.postal_codes_kept(),
    )


async def research_key(settings: FeedSettings, stores: Stores) -> bytes:
    """Return the research key: the setting, else one generated once and kept in PostgreSQL."""
    if settings.research_key is not None:
        return settings.research_key.get_secret_value().encode()
    return await stores.secret("research_key", lambda: secrets.token_bytes(32))


async def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """Return the committed offset of ``group`` per partition of ``topic`` (none: absent).

    Read as a group member reads its own (OffsetFetch through a consumer that
    never joins the group), as the lag probe does.
    """
    consumer = AIOKafkaConsumer(
        **kafka.client_options(settings), group_id=group, enable_auto_commit=False
    )
    try:
        await consumer.start()
        await consumer.topics()  # refresh metadata
        found = {}
        for partition in sorted(consumer.partitions_for_topic(topic) or ()):
            done = await consumer.committed(TopicPartition(topic, partition))
            if done:
                found[partition] = done
        return found
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()


async def audit_reads(settings: Settings, store: FeedStore) -> int:
    """Audit how far each configured consumer group has read the feeds; return the events."""
    count = 0
    for group in settings.feed.audited_groups():
        for topic in (topics.CANONICAL, topics.RESEARCH):
            name = topic.full_name(settings.kafka_topic_prefix)
            committed = await committed_offsets(settings, group, name)
            if committed and await store.note_read(group, name, committed, actor=ACTOR):
                count += 1
    return count


class FeedRole:
    """The ``feed`` role: a batch subscriber on ``care.messages.accepted.v1``, ``feed.publish``."""

    name = "feed"

    def __init__(self) -> None:
        self._broker: KafkaBroker | None = None
        self._feed: Feed | None = None
        self._ctx: Context | None = None
        self._in_hand = asyncio.Lock()
        self._auditor: asyncio.Task[None] | None = None
        self._checked: tuple[Directory | None, bool] = (None, False)

    async def start(self, ctx: Context) -> None:
        """Subscribe; publish until stopped; audit the configured consumer groups' reading."""
        self._ctx = ctx
        key = await research_key(ctx.settings.feed, ctx.stores)
        store = ctx.stores.feed
        self._feed = Feed(
            store,
            ctx.producer,
            pseudonymizer(ctx.settings.feed, key),
            topic_prefix=ctx.settings.kafka_topic_prefix,
        )
        broker = kafka_broker(ctx.settings, self.name)
        subscribe(
            broker,
            ctx.settings,
            topics.ACCEPTED,
            topics.Groups.FEED,
            self._handle,
            max_records=BATCH_MAX,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,  # committed once published and audited
            max_partition_fetch_bytes=kafka.MAX_RECORD_BYTES,
            listener=_Listener(self._in_hand),
        )
        self._broker = broker
        try:
            await broker.start()
        except (OSError, TimeoutError, KafkaUnavailableError) as exc:
            raise KafkaUnavailableError(f"feed cannot subscribe: {type(exc).__name__}") from exc
        if ctx.settings.feed.audited_groups():
            self._auditor = asyncio.create_task(self._audit_reads(store), name="feed-audit")

    async def _handle(self, msg: KafkaMessage) -> None:
        async with self._in_hand:
            await self._publish_batch(msg)

    async def _publish_batch(self, msg: KafkaMessage) -> None:
        assert self._feed is not None
        assert self._ctx is not None
        directory = self._ctx.directory  # reloads apply from the next batch
        self._feed.validation_sample = directory.translation.validate_sample
        if self._checked[0] is not directory:
            self._checked = (directory, any_feed(directory))
        if not self._checked[1]:
            await msg.ack()  # nothing enabled: no decoding, no store
            return
        envelopes = []
        for record in records(msg):
            try:
                envelopes.append(Envelope.model_validate_json(record.value))
            except ValidationError:
                log.error("feed: record is not an envelope, skipped")  # noqa: TRY400
        try:
            stats = await self._feed.publish(envelopes, directory)
        except _RETRY_LATER as exc:
            log.warning(
                "feed: store or Kafka unavailable, batch will be redelivered",
                extra={"error": type(exc).__name__},
            )
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        await msg.ack()
        if stats.withheld:
            log.info(
                "feed: batch published",
                extra={"withheld": stats.withheld, **stats.published},
            )

    async def _audit_reads(self, store: FeedStore) -> None:
        assert self._ctx is not None
        settings = self._ctx.settings
        while True:
            await asyncio.sleep(settings.feed.audit_interval_s)
            try:
                await audit_reads(settings, store)
            except _RETRY_LATER as exc:
                log.warning("feed: reads not audited now", extra={"error": type(exc).__name__})

    async def stop(self) -> None:
        """Leave the consumer group after the batch in hand; stop auditing."""
        if self._auditor is not None:
            self._auditor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._auditor
        if self._broker is not None:
            await self._broker.stop()

    def endpoints(self) -> list[str]:
        """Return nothing: the feed serves no port."""
        return []


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Finish the batch in hand before partitions move, so its offsets commit first."""

    def __init__(self, in_hand: asyncio.Lock) -> None:
        self.in_hand = in_hand

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        if not list(revoked):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REVOKE_WAIT_S), self.in_hand:
                pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


__all__ = ["Feed", "FeedRole", "FeedStats", "audit_reads", "streams_of"]
