"""The routing roles' Kafka subscribers: thin, they decode, call the logic, commit.

- ``router``: a batch subscriber on ``care.messages.accepted.v1`` (consumer
  group ``router.route``) handing each batch to :class:`routing.router.Router`;
  offsets are committed after the store commits (``AckPolicy.MANUAL``).
- ``delivery``: a subscriber on ``care.deliveries.requested.v1`` (consumer
  group ``delivery.dispatch``) whose records only wake the
  :class:`routing.delivery.Dispatcher` (the work is in the store); its
  rebalance listener tells the dispatcher which partitions, so which lanes,
  this instance owns. It also serves the mailbox API.

Rebalances (docs/internals.md, "Scale-out and rebalances"): each listener
finishes or hands back what it holds before its partitions move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from broker import kafka, telemetry, topics
from broker.envelope import Envelope
from broker.errors import KafkaUnavailableError, PermanentError, TransientError
from routing import app_ack
from routing.delivery import FETCH_MAX, Dispatcher, lanes_named
from routing.mssante import MssanteService
from routing.router import Router
from routing.subscriber import (
    REVOKE_WAIT_S,
    KafkaMessage,
    kafka_broker,
    partition_list,
    records,
    subscribe,
)

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

BATCH_MAX = 500  # records the router takes per batch


class _RouterListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Finish the batch in hand before partitions move; log which ones this instance routes.

    Kafka calls ``on_partitions_revoked`` before the group is re-formed and
    waits for it. Letting the batch in hand commit its offsets first means the
    next owner starts after it; otherwise the commit comes too late (the
    group moved on), the next owner reads the batch again and waits on its
    row locks only to skip it — in a rebalance caused by a scale-up, every
    instance's batch in hand at once.
    """

    def __init__(self, in_hand: asyncio.Lock) -> None:
        self.in_hand = in_hand

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = [tp.partition for tp in revoked]
        if not partitions:
            return
        log.info("router: releasing partitions", extra={"partitions": partition_list(partitions)})
        # Bounded: a batch stuck on the store must not hold the whole group; past
        # this, the next owner reads it again, which the router tolerates.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REVOKE_WAIT_S), self.in_hand:
                pass
        log.info("router: partitions released", extra={"partitions": partition_list(partitions)})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        partitions = [tp.partition for tp in assigned]
        log.info("router: partitions owned", extra={"partitions": partition_list(partitions)})


class RouterRole:
    """The ``router`` role: a batch subscriber on ``care.messages.accepted.v1``."""

    name = "router"

    def __init__(self) -> None:
        self._broker: KafkaBroker | None = None
        self._router: Router | None = None
        self._ctx: Context | None = None
        self._in_hand = asyncio.Lock()  # held while a batch is routed and committed

    async def start(self, ctx: Context) -> None:
        """Subscribe (consumer group ``router.route``); route until stopped."""
        self._ctx = ctx
        partitions = await kafka.partitions_of(ctx.settings, topics.DELIVERIES)
        self._router = Router(
            ctx.stores.routing,
            ctx.directory,
            topic_prefix=ctx.settings.kafka_topic_prefix,
            partitions=partitions,
            on_routed=self._routed_here,
        )
        broker = kafka_broker(ctx.settings, self.name)
        subscribe(
            broker,
            ctx.settings,
            topics.ACCEPTED,
            topics.Groups.ROUTER,
            self._handle,
            max_records=BATCH_MAX,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,  # committed after the PostgreSQL commit
            max_partition_fetch_bytes=kafka.MAX_RECORD_BYTES,
            listener=_RouterListener(self._in_hand),
        )
        self._broker = broker
        try:
            await broker.start()
        except (OSError, TimeoutError, KafkaUnavailableError) as exc:
            raise KafkaUnavailableError(f"router cannot subscribe: {type(exc).__name__}") from exc

    def _routed_here(self, lanes: list[tuple[int, str]]) -> None:
        if self._ctx is not None:
            for hook in self._ctx.on_routed:
                hook(lanes)

    async def _handle(self, msg: KafkaMessage) -> None:
        async with self._in_hand:
            await self._route_batch(msg)

    async def _route_batch(self, msg: KafkaMessage) -> None:
        assert self._router is not None
        assert self._ctx is not None
        self._router.directory = self._ctx.directory  # pick up reloads between batches
        envelopes = []
        carriers: dict[uuid.UUID, dict[str, str]] = {}
        for record in records(msg):
            try:
                envelope = Envelope.model_validate_json(record.value)
            except ValidationError:
                # Stays `accepted` in PostgreSQL: republish_unrouted finds it again.
                log.error("router: record is not an envelope, skipped")  # noqa: TRY400
                continue
            envelopes.append(envelope)
            carriers[envelope.message_id] = telemetry.from_kafka_headers(record.headers)
        try:
            stats = await self._router.route(envelopes, carriers)
        except TransientError as exc:
            log.warning(
                "router: store unavailable, batch will be redelivered",
                extra={"error": type(exc).__name__},
            )
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        except PermanentError:  # StoreRefusedError among them
            # One message the store refuses must not hold the others: route them
            # one by one, and keep any that still fails as unroutable with the reason.
            log.exception("router: batch failed, routing one by one")
            stats = await self._router.route_one_by_one(envelopes)
        await msg.ack()
        if stats.skipped:
            # Kafka gave these again: a rebalance or a crash came before the
            # offsets of a batch another instance (or this one) had routed.
            log.info("router: messages already routed, skipped", extra={"count": stats.skipped})
        if stats.unroutable or stats.blocked:
            log.info(
                "router: batch routed",
                extra={
                    "routed": stats.routed,
                    "unroutable": stats.unroutable,
                    "blocked": stats.blocked,
                },
            )

    async def stop(self) -> None:
        """Leave the consumer group after the batch in hand."""
        if self._broker is not None:
            await self._broker.stop()

    def endpoints(self) -> list[str]:
        """Return nothing: the router serves no port."""
        return []


class _DeliveryListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Tell the dispatcher which partitions (lanes) this instance owns."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = [tp.partition for tp in revoked]
        await self.dispatcher.revoke(partitions)
        if partitions:
            log.info("delivery: lanes released", extra={"partitions": partition_list(partitions)})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        partitions = [tp.partition for tp in assigned]
        self.dispatcher.assign(partitions)
        # The whole assignment, not a count: after a rebalance an operator (and the
        # scale-out test) reads here which instance took which lanes.
        log.info("delivery: lanes owned", extra={"partitions": partition_list(partitions)})


class DeliveryRole:
    """The ``delivery`` role: lanes owned through Kafka, work found in PostgreSQL, mailbox API."""

    name = "delivery"

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self._broker: KafkaBroker | None = None
        self._mssante: MssanteService | None = None

    async def start(self, ctx: Context) -> None:
        """Join ``delivery.dispatch``, start the workers, serve the mailbox API."""
        from routing.mailbox import mailbox_router

        topic = topics.DELIVERIES.full_name(ctx.settings.kafka_topic_prefix)
        acks = app_ack.Lanes(topic, await kafka.partitions_of(ctx.settings, topics.DELIVERIES))
        # MSSanté: one SMTP sender for every MSSanté recipient; notices read over IMAP.
        self._mssante = MssanteService(ctx, acks)
        dispatcher = Dispatcher(
            ctx.stores.routing,
            lambda: ctx.directory,
            acks=acks,
            transports=self._mssante.transport_for,
        )
        self.dispatcher = dispatcher
        dispatcher.start()
        # A router in this process says at once which lanes it gave work; the
        # Kafka record, also sent, is then only for instances elsewhere.
        ctx.on_routed.append(dispatcher.wake)
        broker = kafka_broker(ctx.settings, self.name)

        async def wake(msg: KafkaMessage) -> None:
            if telemetry.is_recording():
                # The Kafka hop of each delivery, in its trace: the record wakes this
                # instance; the attempt itself is traced from deliveries.trace.
                for record in records(msg):
                    with telemetry.process_span(
                        topic,
                        topics.Groups.DELIVERY,
                        telemetry.from_kafka_headers(record.headers),
                        partition=record.partition,
                    ):
                        pass
            named: list[tuple[int, str]] = []
            for record in records(msg):
                lanes = lanes_named(record.partition, record.value)
                if lanes is None:
                    dispatcher.wake(None)
                else:
                    named += lanes
            dispatcher.wake(named)

        subscribe(
            broker,
            ctx.settings,
            topics.DELIVERIES,
            topics.Groups.DELIVERY,
            wake,
            max_records=FETCH_MAX,
            auto_offset_reset="latest",
            ack_policy=AckPolicy.ACK_FIRST,  # a wake-up only: the work is in PostgreSQL
            listener=_DeliveryListener(dispatcher),
        )
        self._broker = broker
        try:
            await broker.start()
        except (OSError, TimeoutError) as exc:
            await dispatcher.stop()
            raise KafkaUnavailableError(f"delivery cannot subscribe: {type(exc).__name__}") from exc
        ctx.routers.append(mailbox_router(ctx, acks))
        await self._mssante.start()

    async def stop(self) -> None:
        """Leave the group (which waits for in-flight attempts), then stop the workers."""
        if self._broker is not None:
            await self._broker.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self._mssante is not None:
            await self._mssante.stop()

    def endpoints(self) -> list[str]:
        """Return the mailbox API line for the start-up banner."""
        return ["mailbox: /mailbox/{partner}/messages (partner bearer token)"]


__all__ = ["DeliveryRole", "RouterRole"]
