"""``GET /metrics``: what operators watch, in the Prometheus text format, on every process.

Every figure is read from the shared state at scrape time, so any instance
answers for the whole deployment and no role has to count anything itself:

- counts per partner and message type come from ``audit_counters``, which the
  audit writer maintains in the transaction that chains the events (each
  received / rejected / duplicate / routed / delivered / failed ... event is
  counted exactly once);
- queue depth, oldest pending age and dead letters per recipient come from
  ``deliveries``; the delivery latency histogram from ``delivery_latency``;
- the outbox and audit backlogs from ``outbox`` and ``audit_pending``;
- consumer lag per role from Kafka (committed offsets of the role's consumer
  group against the end offsets of its topic), cached for a few seconds;
- alerts firing from ``alerts`` (``broker.alerts``).

A few figures only the process that sees them can count (an MLLP listener's
refused connections) are ``prometheus_client`` metrics in
:data:`PROCESS_REGISTRY`, rendered after the shared ones: they describe this
instance, as every instance is scraped.

Labels are partner ids, message types and codes, passed through
``broker.redact.label``: never patient data (design invariant 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from broker import redact, topics
from broker.errors import StoreRefusedError, StoreUnavailableError
from broker.kafka import client_options
from broker.ops_access import OPERATIONS_RESPONSES, require_operations_access
from broker.redact import label
from broker.settings import Settings
from broker.store.audit import LATENCY_BUCKETS
from broker.store.metrics import MetricsStore

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# What this process counts itself (listeners' refusals): see the module docstring.
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
# Counted audit events shown as their own metric (the rest: carebroker_audit_events_total).
_MESSAGE_METRICS = {
    "received": ("carebroker_messages_received", "Messages accepted, per sender and type."),
    "rejected": ("carebroker_messages_rejected", "Messages refused (AE/AR), per sender and type."),
    "delivered": (
        "carebroker_messages_delivered",
        "Deliveries acknowledged by the recipient, per recipient and type.",
    ),
    "failed": ("carebroker_messages_failed", "Delivery attempts that failed, per recipient/type."),
    "duplicate": ("carebroker_duplicates", "Resends answered with the original ACK, per sender."),
}
# Consumer group and topic per role whose lag is shown (broker.topics.Groups).
LAGGED_ROLES = {
    "router": (topics.Groups.ROUTER, topics.ACCEPTED),
    "delivery": (topics.Groups.DELIVERY, topics.DELIVERIES),
    "feed": (topics.Groups.FEED, topics.ACCEPTED),
}


@dataclass
class Snapshot:
    """Everything one scrape shows, read before rendering (rendering does no I/O)."""

    counters: list[tuple[str, str, str, int]] = field(default_factory=list)
    latency: list[tuple[str, int, int, float]] = field(default_factory=list)
    deliveries: list[tuple[str, str, int, float | None]] = field(default_factory=list)
    outbox: tuple[int, float | None] = (0, None)
    audit_pending: int = 0
    alerts: list[tuple[str, str]] = field(default_factory=list)
    lag: dict[str, dict[int, int]] | None = None
    store_up: bool = True


async def snapshot(store: MetricsStore, lag: LagProbe | None = None) -> Snapshot:
    """Read the figures from PostgreSQL (and Kafka lag); a store outage yields ``store_up=0``."""
    shot = Snapshot()
    try:
        figures = await store.read()
    except (StoreUnavailableError, StoreRefusedError):
        shot.store_up = False
    else:
        now = figures.now
        shot.counters = figures.counters
        shot.latency = figures.latency
        shot.deliveries = [(r, s, n, _age(now, oldest)) for r, s, n, oldest in figures.deliveries]
        shot.outbox = (figures.outbox[0], _age(now, figures.outbox[1]))
        shot.audit_pending = figures.audit_pending
        shot.alerts = figures.alerts
    if lag is not None:
        shot.lag = await lag.read()
    return shot


def _age(now: datetime, oldest: datetime | None) -> float | None:
    return max(0.0, (now - oldest).total_seconds()) if oldest else None


class _Rendered(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def render(shot: Snapshot) -> bytes:
    """Return the Prometheus text exposition of a snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Rendered(list(_families(shot))))
    return generate_latest(registry)


def _families(shot: Snapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("carebroker_store_up", "1 when PostgreSQL answered this scrape.")
    up.add_metric([], 1 if shot.store_up else 0)
    yield up
    families = {
        kind: CounterMetricFamily(name, text, labels=["partner", "message_type"])
        for kind, (name, text) in _MESSAGE_METRICS.items()
    }
    events = CounterMetricFamily(
        "carebroker_audit_events",
        "Audited events per kind, partner and message type.",
        labels=["kind", "partner", "message_type"],
    )
    for kind, partner, message_type, n in shot.counters:
        labels = [label(partner), redact.message_type(message_type)]
        if kind in families:
            families[kind].add_metric(labels, n)
        events.add_metric([label(kind), *labels], n)
    yield from families.values()
    yield events

    depth = GaugeMetricFamily(
        "carebroker_delivery_queue_depth", "Pending deliveries per recipient.", labels=["recipient"]
    )
    oldest = GaugeMetricFamily(
        "carebroker_delivery_queue_oldest_age_seconds",
        "Age of the oldest pending delivery per recipient.",
        labels=["recipient"],
    )
    states = GaugeMetricFamily(
        "carebroker_deliveries",
        "Deliveries not yet delivered, per recipient and status (dead = dead letters).",
        labels=["recipient", "status"],
    )
    for recipient, status, n, age in shot.deliveries:
        states.add_metric([label(recipient), label(status)], n)
        if status == "pending":
            depth.add_metric([label(recipient)], n)
            oldest.add_metric([label(recipient)], age or 0.0)
    yield from (depth, oldest, states)
    yield _latency(shot.latency)

    backlog = GaugeMetricFamily("carebroker_outbox_backlog", "Outbox rows not yet on Kafka.")
    backlog.add_metric([], shot.outbox[0])
    yield backlog
    outbox_age = GaugeMetricFamily(
        "carebroker_outbox_oldest_age_seconds", "Age of the oldest outbox row (0 when empty)."
    )
    outbox_age.add_metric([], shot.outbox[1] or 0.0)
    yield outbox_age
    pending = GaugeMetricFamily(
        "carebroker_audit_pending", "Audit events waiting for the audit writer."
    )
    pending.add_metric([], shot.audit_pending)
    yield pending
    alerts = GaugeMetricFamily(
        "carebroker_alerts_firing", "Alerts firing now (1 each).", labels=["alert", "subject"]
    )
    for name, subject in shot.alerts:
        alerts.add_metric([label(name), label(subject)], 1)
    yield alerts
    if shot.lag is not None:
        lag = GaugeMetricFamily(
            "carebroker_consumer_lag",
            "Records not yet consumed by a role's consumer group, per partition.",
            labels=["role", "partition"],
        )
        for role, partitions in shot.lag.items():
            for partition, n in sorted(partitions.items()):
                lag.add_metric([role, str(partition)], n)
        yield lag


def _latency(rows: list[tuple[str, int, int, float]]) -> HistogramMetricFamily:
    histogram = HistogramMetricFamily(
        "carebroker_delivery_latency_seconds",
        "Time from acceptance to the recipient's acknowledgement, per recipient.",
        labels=["recipient"],
    )
    per_recipient: dict[str, tuple[list[int], float]] = {}
    for recipient, bucket, n, sum_s in rows:
        counts, total = per_recipient.setdefault(
            label(recipient), ([0] * (len(LATENCY_BUCKETS) + 1), 0.0)
        )
        counts[min(bucket, len(LATENCY_BUCKETS))] += n
        per_recipient[label(recipient)] = (counts, total + sum_s)
    for recipient, (counts, total) in sorted(per_recipient.items()):
        cumulative, buckets = 0, []
        for le, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts, strict=True):
            cumulative += n
            buckets.append((le, cumulative))
        histogram.add_metric([recipient], buckets, total)
    return histogram


class LagProbe:
    """Read consumer lag per role from Kafka, at most once per ``ttl`` seconds."""

    def __init__(self, settings: Settings, ttl: float = 10.0, timeout: float = 5.0) -> None:
        self.settings = settings
        self.ttl = ttl
        self.timeout = timeout
        self._at = -ttl
        self._value: dict[str, dict[int, int]] | None = None
        self._lock = asyncio.Lock()

    async def read(self) -> dict[str, dict[int, int]] | None:
        """Return {role: {partition: lag}}, or None when Kafka cannot be asked now."""
        async with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                self._value = await self._measure()
                self._at = time.monotonic()
            return self._value

    async def _measure(self) -> dict[str, dict[int, int]] | None:
        # Committed offsets are read the way a group member reads its own
        # (OffsetFetch through a consumer that never joins the group): the
        # admin client's newer request versions are not spoken by every
        # Kafka-compatible broker (tansu drops the connection).
        options = client_options(self.settings)
        try:
            async with asyncio.timeout(self.timeout):
                return {
                    role: await _lag(
                        options, topics.group_id(self.prefix, group), topic.full_name(self.prefix)
                    )
                    for role, (group, topic) in LAGGED_ROLES.items()
                }
        except (KafkaError, OSError, TimeoutError):
            log.warning("consumer lag not measured: Kafka unavailable")
            return None

    @property
    def prefix(self) -> str:
        """Return the deployment's topic prefix."""
        return self.settings.kafka_topic_prefix


async def _lag(options: dict[str, Any], group: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**options, group_id=group, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()  # refresh metadata
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return {}
        ends: dict[Any, int] = await consumer.end_offsets(tps)
        result = {}
        for tp in tps:
            done = await consumer.committed(tp)
            result[tp.partition] = max(0, ends.get(tp, 0) - (done or 0))
        return result
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()


ROUTER = APIRouter(
    tags=["operations"],
    dependencies=[Depends(require_operations_access)],
    responses=OPERATIONS_RESPONSES,
)


@ROUTER.get(
    "/metrics",
    summary="Prometheus metrics for the whole deployment",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
async def prometheus(request: Request) -> Response:
    """Read the figures now and render them (``app.state``: ``context``, ``lag_probe``)."""
    state = request.app.state
    lag: LagProbe | None = getattr(state, "lag_probe", None)
    shared = render(await snapshot(state.context.stores.metrics, lag))
    return Response(shared + generate_latest(PROCESS_REGISTRY), media_type=CONTENT_TYPE)


# What a process serves from this module (broker.app mounts them on every process).
ROUTERS = [ROUTER]
