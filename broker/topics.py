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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.envelope import DeliveryRequest, Envelope


@dataclass(frozen=True)
class Topic:
    """A topic name and the pydantic model of its record values."""

    name: str
    model: type[BaseModel]
    description: str
    compacted: bool = False
    key: str = ""  # what the record key is (the AsyncAPI document says it)
    headers: tuple[tuple[str, str], ...] = ()  # record headers: (name, meaning)

    def full_name(self, prefix: str = "") -> str:
        """Return the name with the deployment's prefix."""
        return f"{prefix}{self.name}"


ACCEPTED = Topic(
    "care.messages.accepted.v1",
    Envelope,
    "Messages committed to the store, keyed by patient ordering key (relay -> router).",
    key="The patient's ordering key (HMAC of the primary patient identifier), else the message's.",
    headers=(("traceparent", "W3C trace context of the relay's send span (when tracing)."),),
)
DELIVERIES = Topic(
    "care.deliveries.requested.v1",
    DeliveryRequest,
    "Deliveries decided by the router, keyed by lane (router -> delivery).",
    key="The lane: recipient and patient ordering key.",
    headers=(("traceparent", "W3C trace context of the router's span (when tracing)."),),
)


class FhirMessage(BaseModel):
    """A FHIR R4 message Bundle (JSON): its MessageHeader first, then the resources.

    The value of a record on ``care.fhir.canonical.v1``: an accepted message
    as FHIR (HL7 v2 translated by the v2-to-FHIR implementation guide, FHIR
    as received, a resource wrapped in a message Bundle). Record headers:
    ``message-id`` (carebroker's id of the accepted message), ``message-type``
    (``ORU^R01``, the FHIR event code), ``sender`` (the partner id),
    ``content-type`` (``application/fhir+json``). The same message always
    gives the same ``Bundle.id``: a consumer drops a record it already has.
    """

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    id: str = Field(description="Stable per accepted message.")
    type: Literal["message"]
    timestamp: str | None = Field(default=None, description="When the message was sent.")
    identifier: dict[str, str] = Field(
        description="`urn:ietf:rfc:3986`, `urn:uuid:<message id>` (canonical stream only)."
    )
    entry: list[dict[str, Any]] = Field(
        description="`fullUrl` and `resource`: the MessageHeader, then Patient, Encounter, "
        "Observation ... as the v2-to-FHIR implementation guide maps them."
    )


class ResearchMessage(BaseModel):
    """A pseudonymised FHIR R4 message Bundle (value of ``care.fhir.research.v1``).

    Identifiers are keyed HMAC pseudonyms (system
    ``urn:carebroker:research:pseudonym``) under the research key; names,
    addresses (but a generalised postal code), telecoms, free text and
    documents are removed; dates are shifted per patient, birth dates cut to
    the year (or month). ``identifier`` is the patient's research pseudonym,
    also the record key. Record headers: ``message-type``, ``content-type``
    only. ``docs/data-protection.md`` says what remains.
    """

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    id: str = Field(description="Re-derived under the research key.")
    type: Literal["message"]
    meta: dict[str, Any] = Field(description="Tagged `urn:carebroker:research#pseudonymised`.")
    timestamp: str | None = Field(default=None, description="Shifted like the patient's dates.")
    identifier: dict[str, str] = Field(
        description="The patient's research pseudonym (`urn:carebroker:research:pseudonym`)."
    )
    entry: list[dict[str, Any]] = Field(description="The resources, pseudonymised.")


CANONICAL = Topic(
    "care.fhir.canonical.v1",
    FhirMessage,
    "Accepted messages as FHIR R4 message Bundles, for regional data platforms and shared"
    " records; keyed by the patient's pseudonymous ordering key, so one patient's messages"
    " are in order (feed -> any Kafka client). Per sender and message type (directory"
    " `feed.canonical`); opposed patients are never published.",
    key="The patient's ordering key (HMAC of the primary patient identifier under the"
    " routing key), else the message's: one patient's messages share a partition.",
    headers=(
        ("message-id", "carebroker's id of the accepted message (UUID)."),
        ("message-type", "ORU^R01, ADT^A01 ... or the FHIR event code."),
        ("sender", "The partner id of the sender."),
        ("content-type", "application/fhir+json"),
    ),
)
RESEARCH = Topic(
    "care.fhir.research.v1",
    ResearchMessage,
    "The same messages pseudonymised for research, keyed by the patient's research"
    " pseudonym (feed -> research platforms). Per sender and message type (directory"
    " `feed.research`); opposed patients are never published.",
    key="The patient's research pseudonym (HMAC under the research key), as in"
    " `Bundle.identifier`.",
    headers=(
        ("message-type", "ORU^R01, ADT^A01 ... or the FHIR event code."),
        ("content-type", "application/fhir+json"),
    ),
)

ALL: tuple[Topic, ...] = (ACCEPTED, DELIVERIES, CANONICAL, RESEARCH)


class Groups:
    """Consumer group ids, ``<role>.<purpose>``."""

    ROUTER = "router.route"
    DELIVERY = "delivery.dispatch"
    FEED = "feed.publish"


def group_id(prefix: str, group: str) -> str:
    """Return the consumer group id a role joins: ``group`` under the deployment's prefix.

    The prefix that separates deployments sharing a Kafka cluster names their
    groups too, so the roles and the lag probe must agree on it.
    """
    return f"{prefix}{group}"
