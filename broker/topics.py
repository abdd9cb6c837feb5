"""Every Kafka topic carebroker uses, with the model its records carry.

Names follow ``care.<domain>.<event>.v<N>``; consumer groups ``<role>.<purpose>``.
A prefix from settings (``kafka_topic_prefix``) lets tests and shared clusters
keep their topics apart.

Audit events do not travel on Kafka: they are written to ``audit_pending`` in
the same PostgreSQL transaction as the state they record (so none can be lost,
even when a local broker that keeps nothing restarts) and chained into the
audit trail by the audit writer (``broker/store/events.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from broker.envelope import DeliveryRequest, Envelope


@dataclass(frozen=True)
class Topic:
    """A topic name and the pydantic model of its record values."""

    name: str
    model: type[BaseModel]
    description: str
    compacted: bool = False

    def full_name(self, prefix: str = "") -> str:
        """Return the name with the deployment's prefix."""
        return f"{prefix}{self.name}"


ACCEPTED = Topic(
    "care.messages.accepted.v1",
    Envelope,
    "Messages committed to the store, keyed by patient ordering key (relay -> router).",
)
DELIVERIES = Topic(
    "care.deliveries.requested.v1",
    DeliveryRequest,
    "Deliveries decided by the router, keyed by lane (router -> delivery).",
)

ALL: tuple[Topic, ...] = (ACCEPTED, DELIVERIES)


class Groups:
    """Consumer group ids, ``<role>.<purpose>``."""

    ROUTER = "router.route"
    DELIVERY = "delivery.dispatch"


def group_id(prefix: str, group: str) -> str:
    """Return the consumer group id a role joins: ``group`` under the deployment's prefix.

    The prefix that separates deployments sharing a Kafka cluster names their
    groups too, so the roles and the lag probe must agree on it.
    """
    return f"{prefix}{group}"
