"""The routing and delivery store's interface: a unit of work and its parts, by concern.

The router, the dispatcher, the mailbox API, application ACKs and replay do
their PostgreSQL work through this interface only. A :class:`RoutingStore`
hands out a :class:`Work` (one transaction, or one connection for reads),
whose parts each speak for one table family and share its transaction::

    async with store.transaction() as work:
        opposed = await work.consent.opposed(digests)
        claimed = await work.messages.claim(claims)
        inserted = await work.deliveries.add(rows)
        await work.audit.record(events)
        await work.outbox.publish(wake_ups)

Every method takes and returns lists, so a caller writes a batch in one
statement per table. Two implementations: ``broker.store.routing`` on
PostgreSQL, and ``broker.store.memory`` in memory, so the routing and delivery
logic is unit-tested without PostgreSQL or Kafka
(``tests/unit/test_routing_memory.py``), while the integration suite runs the
same logic on the real services.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from broker.envelope import Envelope
from broker.events import AuditEvent
from broker.store.outbox import OutboxRow

# --- rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A routing status for a message still ``accepted`` (routed, unroutable, blocked)."""

    message_id: uuid.UUID
    received_at: datetime
    status: str
    reason: str | None = None


@dataclass
class NewDelivery:
    """One delivery row to insert: a message for a recipient, in its lane."""

    id: uuid.UUID
    message_id: uuid.UUID
    message_received_at: datetime
    recipient: str
    lane: str
    partition: int
    status: str = "pending"  # or blocked, failed (refused by the render)
    payload: bytes | None = field(default=None, repr=False)
    content_type: str = ""
    control_id: str = ""
    rules: list[str] = field(default_factory=list)
    reasons: list[dict[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    last_error: str | None = None
    trace: dict[str, str] | None = None
    kind: str = "message"  # or "app_ack": the application ACK owed to the sender


@dataclass(frozen=True)
class LaneHead:
    """Where a lane stands: its head's id, and how long that head still waits (0: ready)."""

    id: uuid.UUID
    partition: int
    lane: str
    wait_s: float


@dataclass(frozen=True)
class Head:
    """The head of one lane, ready to attempt."""

    id: uuid.UUID
    message_id: uuid.UUID
    control_id: str
    recipient: str
    lane: str
    partition: int
    attempts: int
    since: datetime
    content_type: str
    payload: bytes = field(repr=False)
    kind: str = "message"  # or "app_ack": the application ACK owed to the sender
    trace: dict[str, str] | None = None  # the routing span's context


@dataclass(frozen=True)
class OutcomeUpdate:
    """What one attempt changes in its delivery row (``None``: keep the stored value)."""

    id: uuid.UUID
    status: str
    next_attempt_at: datetime | None = None
    error: str | None = None
    response: bytes | None = None
    ack_code: str | None = None
    delivered_at: datetime | None = None
    posted_at: datetime | None = None


@dataclass(frozen=True)
class Changed:
    """A delivery an outcome was written to, as it is now."""

    id: uuid.UUID
    message_id: uuid.UUID
    kind: str
    status: str


@dataclass(frozen=True)
class FinalDelivery:
    """How a message's delivery to one recipient ended (what its application ACK reports)."""

    message_id: uuid.UUID
    recipient: str
    status: str
    last_error: str | None = None
    response: bytes | None = None
    ack_code: str | None = None


@dataclass(frozen=True)
class OwedAck:
    """An application ACK owed to an enhanced-mode sender (``app_acks``)."""

    message_id: uuid.UUID
    message_received_at: datetime
    sender: str
    condition: str  # MSH-16: AL, ER or SU
    header: str  # the message's MSH, which the ACK copies
    codec: str
    ordering_key: str
    trace: dict[str, str] | None = None


@dataclass(frozen=True)
class Flagged:
    """A mailbox delivery flagged as unacknowledged for too long."""

    id: uuid.UUID
    message_id: uuid.UUID
    recipient: str
    control_id: str


@dataclass(frozen=True)
class ReplaySelection:
    """Which deliveries a replay looks at (any field None: not narrowed by it)."""

    statuses: Sequence[str]
    message_id: uuid.UUID | None = None
    recipient: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    delivery_ids: Sequence[uuid.UUID] = ()


@dataclass(frozen=True)
class Replayable:
    """A delivery a replay may put back to pending (locked until the transaction ends)."""

    id: uuid.UUID
    message_id: uuid.UUID
    message_received_at: datetime
    recipient: str
    lane: str
    partition: int
    status: str
    needs_render: bool
    control_id: str
    patient_digests: list[str]
    discarded: bool


@dataclass(frozen=True)
class Reset:
    """A delivery put back to pending; a payload given replaces the stored one (re-rendered)."""

    id: uuid.UUID
    payload: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    flags: list[str] | None = None
    control_id: str | None = None


@dataclass(frozen=True)
class MailboxEntry:
    """One message waiting in a partner's mailbox (metadata only)."""

    id: uuid.UUID
    message_id: uuid.UUID
    control_id: str
    message_type: str
    received_at: datetime
    posted_at: datetime
    content_type: str
    size: int
    fetched: bool


@dataclass(frozen=True)
class MailboxItem:
    """One mailbox message with its bytes; ``first_fetch`` when this read is the first."""

    id: uuid.UUID
    message_id: uuid.UUID
    control_id: str
    payload: bytes | None = field(repr=False)
    content_type: str
    first_fetch: bool


@dataclass(frozen=True)
class MailboxAck:
    """The outcome of a partner's acknowledgement: ``acknowledged`` now, or the status as it was."""

    status: str | None  # None: no such message in this mailbox
    acknowledged: bool = False
    message_id: uuid.UUID | None = None
    control_id: str = ""
    kind: str = "message"


# --- the parts of a unit of work ----------------------------------------------------------


class Messages(Protocol):
    """Messages as routing sees them: their routing status and their stored envelope."""

    async def claim(self, claims: Sequence[Claim]) -> set[uuid.UUID]:
        """Give messages still ``accepted`` their routing status; return which took it.

        A message already routed (Kafka gave it again, or another router has it)
        is skipped: the router is idempotent (design invariant 3).
        """

    async def envelopes(
        self, keys: Sequence[tuple[uuid.UUID, datetime]]
    ) -> dict[uuid.UUID, Envelope]:
        """Return the stored envelopes (with payload) of these (id, received_at), if kept."""

    async def reroute(
        self,
        *,
        message_id: uuid.UUID | None,
        sender: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Put ``unroutable`` messages so selected back to ``accepted``; return them."""


class Deliveries(Protocol):
    """Delivery rows: lanes and their heads, outcomes, the mailbox, replay."""

    async def add(self, rows: Sequence[NewDelivery]) -> set[uuid.UUID]:
        """Insert deliveries, one per (message, recipient, kind); return the ids inserted."""

    async def scan_heads(
        self,
        partitions: Sequence[int],
        busy_lanes: Sequence[str],
        open_circuits: Sequence[str],
        limit: int,
    ) -> list[LaneHead]:
        """Return the head of every lane of ``partitions`` but ``busy_lanes``, oldest first.

        A head is the oldest pending delivery of its lane (acceptance order),
        whether or not its backoff has passed: a lane whose head waits is
        skipped, never overtaken. Recipients with an open circuit or paused by
        an operator are left out. Exhaustive: the dispatcher runs it now and then.
        """

    async def probe_heads(
        self, lanes: Sequence[tuple[int, str]], open_circuits: Sequence[str]
    ) -> list[LaneHead]:
        """Return the heads of these (partition, lane) pairs, oldest first (one probe each)."""

    async def load_heads(self, ids: Sequence[uuid.UUID]) -> list[Head]:
        """Return these deliveries if still pending, in acceptance order, ready to send."""

    async def record_outcomes(self, updates: Sequence[OutcomeUpdate]) -> list[Changed]:
        """Write attempts' outcomes to deliveries still pending (a blocked one may be delivered).

        Counts the attempt. Returns the rows written; one no longer pending
        (an operator blocked or replayed it meanwhile) is left as it is.
        """

    async def final_states(self, message_ids: Sequence[uuid.UUID]) -> list[FinalDelivery]:
        """Return the ``message`` deliveries of these messages (not the application ACKs)."""

    async def flag_unacknowledged(
        self, mailboxes: Sequence[tuple[str, float]], partitions: Sequence[int]
    ) -> list[Flagged]:
        """Flag posted mailbox deliveries unacknowledged past each (recipient, seconds) limit."""

    async def replayable(self, selection: ReplaySelection) -> list[Replayable]:
        """Return and lock the deliveries a replay selects, in acceptance order."""

    async def reset(self, resets: Sequence[Reset]) -> None:
        """Put deliveries back to pending with a fresh attempt budget (a replay)."""

    async def mailbox(self, recipient: str, limit: int) -> list[MailboxEntry]:
        """Return the messages waiting in ``recipient``'s mailbox, oldest first."""

    async def mailbox_fetch(self, delivery_id: uuid.UUID, recipient: str) -> MailboxItem | None:
        """Return one mailbox message and note its first fetch; None when not there."""

    async def mailbox_ack(self, delivery_id: uuid.UUID, recipient: str) -> MailboxAck:
        """Mark a mailbox message delivered (idempotent: a second ack changes nothing)."""


class AppAcks(Protocol):
    """Application ACKs owed to enhanced-mode senders (``routing/app_ack.py``)."""

    async def expect(self, owed: Sequence[OwedAck]) -> None:
        """Note ACKs owed (``waiting``); one already noted stays as it is."""

    async def lock_waiting(self, message_ids: Sequence[uuid.UUID]) -> list[OwedAck]:
        """Return and lock the ACKs of these messages still ``waiting``, by message id.

        The lock serialises two instances finishing a message's last deliveries
        at once: the second sees the first's decision.
        """

    async def decide(
        self, message_id: uuid.UUID, status: str, code: str, reason: str | None
    ) -> None:
        """Record what became of an owed ACK: ``queued``, ``not_due`` or ``unsendable``."""

    async def stale(self, older_than_s: float, limit: int) -> list[uuid.UUID]:
        """Return messages whose ACK still waits though none of their deliveries is pending."""

    async def count_decided(self, message_ids: Sequence[uuid.UUID]) -> int:
        """Return how many of these messages' ACKs are no longer ``waiting``."""


class ConsentView(Protocol):
    """Patient oppositions, as routing and replay check them."""

    async def opposed(self, digests: Iterable[str]) -> set[str]:
        """Return which of these patient digests have an opposition on file."""


class OutboxWriter(Protocol):
    """Records for Kafka, written with the state they announce (``broker/store/outbox.py``)."""

    async def publish(self, rows: Sequence[OutboxRow]) -> None:
        """Queue these records for the relay, in this transaction."""


class AuditRecorder(Protocol):
    """Audit events, recorded with the change they describe (design invariant 5)."""

    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Record these events in this transaction."""


class Work(Protocol):
    """One unit of work: a transaction (or a connection for reads) and its parts."""

    @property
    def messages(self) -> Messages:
        """Messages as routing sees them."""

    @property
    def deliveries(self) -> Deliveries:
        """Delivery rows."""

    @property
    def acks(self) -> AppAcks:
        """Application ACKs owed."""

    @property
    def consent(self) -> ConsentView:
        """Patient oppositions."""

    @property
    def outbox(self) -> OutboxWriter:
        """Records for Kafka."""

    @property
    def audit(self) -> AuditRecorder:
        """Audit events."""


class RoutingStore(Protocol):
    """Where routing and delivery keep their state: hands out units of work."""

    def transaction(self) -> AbstractAsyncContextManager[Work]:
        """Return a unit of work that commits on exit (rolls back on an exception)."""

    def connection(self) -> AbstractAsyncContextManager[Work]:
        """Return a unit of work for reads, without a transaction."""


__all__ = [
    "AppAcks",
    "AuditRecorder",
    "Changed",
    "Claim",
    "ConsentView",
    "Deliveries",
    "FinalDelivery",
    "Flagged",
    "Head",
    "LaneHead",
    "MailboxAck",
    "MailboxEntry",
    "MailboxItem",
    "Messages",
    "NewDelivery",
    "OutboxRow",
    "OutboxWriter",
    "OutcomeUpdate",
    "OwedAck",
    "ReplaySelection",
    "Replayable",
    "Reset",
    "RoutingStore",
    "Work",
]
