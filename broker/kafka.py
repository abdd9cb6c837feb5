"""Kafka wiring: client options from settings, topic creation, the producer, FastStream.

aiokafka and FastStream errors are translated here, once. tansu (the local
Kafka-compatible broker) has no idempotent producer and no transactions, and
carebroker relies on neither: the outbox in PostgreSQL plus idempotent
consumers give at-least-once inside and exactly-once at the edge (design
invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from broker import topics
from broker.errors import KafkaUnavailableError, ServiceUnreachableError
from broker.settings import Settings

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 64 * 1024 * 1024  # accepted frames can be several MB (embedded PDFs)


def client_options(settings: Settings) -> dict[str, Any]:
    """Return the connection options every aiokafka client of this deployment uses."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers or "localhost:9092",
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return options


async def ensure_topics(
    settings: Settings, wanted: Sequence[topics.Topic] = topics.ALL, timeout: float = 15.0
) -> list[str]:
    """Create the topics carebroker needs, idempotently; return the names created now."""
    names = {t.full_name(settings.kafka_topic_prefix): t for t in wanted}
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=10000)
    where = settings.kafka_bootstrap_servers
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                # Another instance may create them at the same moment: that is fine.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(
                                n,
                                num_partitions=settings.kafka_partitions,
                                replication_factor=settings.kafka_replication_factor,
                                topic_configs={"max.message.bytes": str(MAX_RECORD_BYTES)},
                            )
                            for n in missing
                        ]
                    )
            return missing
    except (KafkaError, OSError, TimeoutError) as exc:
        raise ServiceUnreachableError(
            f"cannot reach Kafka at {where}: {exc.__class__.__name__}"
        ) from exc
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topic: topics.Topic) -> int:
    """Return how many partitions a topic has (the router needs it to place lanes)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        described = await admin.describe_topics([topic.full_name(settings.kafka_topic_prefix)])
        return len(described[0]["partitions"]) or settings.kafka_partitions
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"cannot describe {topic.name}") from exc
    finally:
        await admin.close()


@dataclass
class Record:
    """One record to publish."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None


class Producer:
    """A thin aiokafka producer: acks from all replicas, large records, errors translated."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(
            **client_options(settings),
            acks="all",
            linger_ms=2,
            max_batch_size=1024 * 1024,
            max_request_size=MAX_RECORD_BYTES,
            request_timeout_ms=15000,
        )

    async def start(self) -> None:
        """Connect; raise KafkaUnavailableError when the cluster cannot be reached."""
        try:
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            await self._producer.stop()
            raise KafkaUnavailableError(
                f"Kafka producer cannot start: {exc.__class__.__name__}"
            ) from exc

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()

    async def publish(self, records: Sequence[Record]) -> None:
        """Publish records and wait until every one is acknowledged by the cluster."""
        try:
            futures = [
                await self._producer.send(
                    r.topic, r.value, key=r.key, partition=r.partition, headers=r.headers
                )
                for r in records
            ]
            await asyncio.gather(*futures)
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailableError(f"publish failed: {exc.__class__.__name__}") from exc

    async def publish_placed(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Publish records in order; return where each landed: (partition, offset)."""
        try:
            futures = [
                await self._producer.send(
                    r.topic, r.value, key=r.key, partition=r.partition, headers=r.headers
                )
                for r in records
            ]
            placed = await asyncio.gather(*futures)
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailableError(f"publish failed: {exc.__class__.__name__}") from exc
        return [(m.partition, m.offset) for m in placed]

    async def is_ready(self) -> bool:
        """Tell whether the cluster answers a metadata request."""
        try:
            async with asyncio.timeout(3):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError):
            return False
        return True
