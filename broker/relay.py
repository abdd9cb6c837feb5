"""The outbox relay: publish what PostgreSQL committed to Kafka, shard by shard, in order.

Each outbox shard is relayed by one process at a time (a PostgreSQL advisory
lock held on a dedicated connection), so rows of one key leave in the order
they were committed even with several relay instances running. Rows are
deleted only after Kafka acknowledged them; a crash in between republishes
them, and consumers are idempotent (design invariant 3). While Kafka is down
rows simply wait: senders are still answered, because acceptance depends on
PostgreSQL alone (design invariant 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from broker import telemetry, topics
from broker.errors import KafkaUnavailableError, StoreUnavailableError
from broker.kafka import Producer, Record
from broker.store.outbox import OutboxRow, OutboxStore, Queued, ShardLocks

log = logging.getLogger(__name__)

BATCH_ROWS = 500
BATCH_BYTES = 16 * 1024 * 1024
_PUBLISHED = telemetry.meter().create_counter(
    "carebroker.relay.published", unit="{record}", description="Outbox rows published to Kafka."
)


class Relay:
    """Move outbox rows to Kafka."""

    def __init__(self, store: OutboxStore, producer: Producer) -> None:
        self.store = store
        self.producer = producer
        self.shards = store.shards
        self.owned: set[int] = set()
        self.published = 0
        self.kafka_ok = True
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; survive store and Kafka outages."""
        backoff = 0.1
        while not stop.is_set():
            try:
                async with self.store.session(self._notified) as locks:
                    try:
                        await self._loop(locks, stop)
                    finally:
                        self.owned.clear()
                backoff = 0.1
            except StoreUnavailableError:
                log.warning("relay: message store unavailable, retrying")
                self.owned.clear()
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _loop(self, locks: ShardLocks, stop: asyncio.Event) -> None:
        next_claim = 0.0
        loop = asyncio.get_running_loop()
        kafka_backoff = 0.2
        while not stop.is_set():
            if loop.time() >= next_claim:
                await self._claim(locks)
                next_claim = loop.time() + 5.0
            self._wake.clear()
            try:
                moved = 0
                for shard in sorted(self.owned):
                    moved += await self._drain(shard)
                self.kafka_ok = True
                kafka_backoff = 0.2
            except KafkaUnavailableError:
                self.kafka_ok = False
                log.warning("relay: Kafka unavailable, rows wait in the outbox")
                await _sleep_or_stop(stop, kafka_backoff)
                kafka_backoff = min(kafka_backoff * 2, 5.0)
                continue
            if moved == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        stop_wait = asyncio.ensure_future(stop.wait())
                        wake_wait = asyncio.ensure_future(self._wake.wait())
                        try:
                            await asyncio.wait(
                                {stop_wait, wake_wait}, return_when=asyncio.FIRST_COMPLETED
                            )
                        finally:
                            stop_wait.cancel()
                            wake_wait.cancel()

    async def _claim(self, locks: ShardLocks) -> None:
        for shard in range(self.shards):
            if shard in self.owned:
                continue
            if await locks.try_claim(shard):
                self.owned.add(shard)

    async def _drain(self, shard: int) -> int:
        rows = await self.store.queued(shard, BATCH_ROWS, BATCH_BYTES)
        if not rows:
            return 0
        with telemetry.internal_span(
            "relay outbox", {"carebroker.shard": shard, "messaging.batch.message_count": len(rows)}
        ):
            await self.producer.publish([_record(r) for r in rows])
            await self.store.forget([r.id for r in rows])
        self.published += len(rows)
        _PUBLISHED.add(len(rows))
        return len(rows)


def _record(row: Queued) -> Record:
    """Build the Kafka record of an outbox row, continuing the trace its headers carry.

    A row written with a trace context gets its own ``send`` span (child of the
    writer's span), and the record carries that span's context, so the
    consumer's ``process`` span hangs below the publish (messaging conventions).
    When nobody collects spans the headers pass as they are: the trace still
    continues, and the relay does not pay ~17 µs a record for spans no one sees.
    """
    headers: dict[str, str] = dict(row.headers or {})
    if headers and telemetry.is_recording() and telemetry.has_context(headers):
        with telemetry.send_span(row.topic, headers, partition=row.partition):
            headers.update(telemetry.current_context())
    kafka_headers = telemetry.to_kafka_headers(headers)
    return Record(row.topic, row.value, row.key, row.partition, kafka_headers)


async def republish_unrouted(
    store: OutboxStore,
    topic_prefix: str,
    older_than: timedelta = timedelta(0),
    within: timedelta = timedelta(days=7),
) -> int:
    """Queue again every accepted message the router has not taken yet; return how many.

    Run at start-up when the Kafka broker keeps nothing across restarts (the
    local tansu), and by operators after a Kafka data loss. The router is
    idempotent, so a message that was in fact routed is not delivered twice.
    """
    now = datetime.now(UTC)
    accepted_topic = topics.ACCEPTED.full_name(topic_prefix)
    total = 0
    cursor = None
    while True:
        envelopes = await store.unrouted(now - within, now - older_than, cursor, 500)
        if not envelopes:
            return total
        await store.publish(
            [
                OutboxRow(accepted_topic, e.model_dump_json().encode(), e.ordering_key.encode())
                for e in envelopes
            ]
        )
        total += len(envelopes)
        cursor = (envelopes[-1].received_at, envelopes[-1].message_id)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
