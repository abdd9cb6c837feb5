"""Read every record of the accepted topic, up to its end: what a consumer would ever see."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker import topics
from broker.envelope import Envelope


async def accepted_records(bootstrap: str, prefix: str) -> list[Envelope]:
    """Return the envelopes on ``<prefix>care.messages.accepted.v1``, all partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=64 << 20
    )
    await consumer.start()
    try:
        name = topics.ACCEPTED.full_name(prefix)
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []]
        if not partitions:
            await consumer.force_metadata_update()
            partitions = [
                TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        got: list[Envelope] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend(Envelope.model_validate_json(r.value) for r in records)
        return got
    finally:
        await consumer.stop()
