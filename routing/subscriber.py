"""The FastStream Kafka broker the routing roles subscribe with, built from settings.

The router and the delivery workers consume Kafka through FastStream
subscribers (thin: decode, call the logic, commit). Connection and security
options come from the same settings as ``broker.kafka.client_options``, so
every Kafka client of a deployment connects the same way. Consumer group ids
carry the topic prefix, so test runs and deployments sharing one cluster never
join each other's groups.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from faststream._internal.context import Context  # the class behind faststream.Context()
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage as _KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from broker import topics
from broker.settings import Settings
from broker.topics import Topic

# How long a silent instance keeps its partitions (a killed one, its lanes):
# Kafka's usual floor, so a failed instance's lanes move within seconds.
SESSION_TIMEOUT_MS = 6_000
# How long the group waits for its members to rejoin in a rebalance, that is,
# for their ``on_partitions_revoked`` to finish what they started (aiokafka's
# default is the session timeout). A member slower than this is dropped from
# the new group while still working on its old partitions: their next owner
# would start on them meanwhile (two instances on one lane).
REBALANCE_TIMEOUT_MS = 60_000
# The longest a role's revoke waits for its work in hand, within that.
REVOKE_WAIT_S = 45.0
BATCH_WAIT_MS = 10


class _OnTheLoop(Context):
    """FastStream's ``Context("message")``, resolved on the event loop.

    fast_depends runs a custom field's synchronous ``use`` in a worker thread:
    with FastStream's own ``KafkaMessage`` annotation, every batch a subscriber
    took crossed to a thread and back (a hand-over of the GIL each time) just
    to look the message up in a dict.
    """

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        found: dict[str, Any] = super().use(**kwargs)
        return found


# Annotate a handler's parameter with this to receive the batch message.
KafkaMessage = Annotated[_KafkaMessage, _OnTheLoop("message")]


class _ExpectedNotices(logging.Filter):
    """Drop FastStream's start-up reminder: carebroker creates its topics itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consumer-only mode" not in record.getMessage()


_LOG = logging.getLogger("routing.kafka")
_LOG.addFilter(_ExpectedNotices())
# FastStream's INFO lines (partition lists, shutdown callbacks) are long and
# say nothing an operator acts on; its warnings and handler errors remain.
_LOG.setLevel(logging.WARNING)


def kafka_broker(settings: Settings, role: str) -> KafkaBroker:
    """Return an unstarted FastStream broker for ``settings`` (consumers only)."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers or "localhost:9092",
        security=_security(settings),
        client_id=client_id(role),
        consumer_only=True,
        # FastStream reports handler errors through this logger, which goes through
        # broker.logs like every other line; its per-record lines are DEBUG only.
        logger=_LOG,
        log_level=logging.DEBUG,
        graceful_timeout=8.0,
    )


async def raw(msg: KafkaMessage) -> None:
    """Decode nothing: handlers read the raw records (FastStream would parse every JSON value)."""
    return None


def records(msg: KafkaMessage) -> list[Any]:
    """Return the raw records of a batch message (aiokafka ``ConsumerRecord`` s with a value).

    Handlers read ``value`` (no decoding by FastStream), ``headers`` (the trace
    context) and ``partition``.
    """
    raw = msg.raw_message
    found = raw if isinstance(raw, tuple) else (raw,)
    return [r for r in found if r.value is not None]


def client_id(role: str) -> str:
    """Return this process's Kafka client id: role, host (the pod's name) and pid.

    Kafka prefixes each group member id with it, so a group's members, in
    Kafka's tools or in DescribeGroups, name the process that holds the
    partitions (which pod took a failed one's lanes).
    """
    return f"carebroker-{role}-{socket.gethostname()}-{os.getpid()}"


def partition_list(partitions: Iterable[int]) -> str:
    """Return partitions as the logs show them: ``0,2,4,6`` (ids, sorted)."""
    return ",".join(str(p) for p in sorted(partitions))


def group_id(settings: Settings, group: str) -> str:
    """Return the consumer group id for ``group`` in this deployment (prefix included)."""
    return topics.group_id(settings.kafka_topic_prefix, group)


def _security(settings: Settings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if not protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=context) if context else None
    username = settings.kafka_sasl_username or ""
    password = (
        settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    )
    mechanism = {
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }.get(settings.kafka_sasl_mechanism or "PLAIN", SASLPlaintext)
    return mechanism(username, password, ssl_context=context, use_ssl=context is not None)


def subscribe(
    broker: KafkaBroker,
    settings: Settings,
    topic: Topic,
    group: str,
    handler: Callable[[KafkaMessage], Awaitable[None]],
    **options: Any,
) -> None:
    """Add a batch subscriber reading raw records, with carebroker's group settings.

    ``options`` are FastStream/aiokafka subscriber options (ack policy, offsets,
    rebalance listener, batch size).
    """
    # FastStream's batch subscriber waits batch_timeout_ms for records and, when
    # none came, sleeps as long again: with its default (200 ms) an idle hop
    # added up to 400 ms to a message's way. Records present are returned at
    # once whatever the value.
    options.setdefault("batch_timeout_ms", BATCH_WAIT_MS)
    options.setdefault("fetch_max_wait_ms", settings.kafka_fetch_max_wait_ms)
    broker.subscriber(
        topic.full_name(settings.kafka_topic_prefix),
        group_id=group_id(settings, group),
        batch=True,
        decoder=raw,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
        heartbeat_interval_ms=1_000,
        title=group,
        description=topic.description,
        **options,
    )(handler)
