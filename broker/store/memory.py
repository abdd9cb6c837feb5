"""The routing and delivery store in memory: the same interface as PostgreSQL's, for unit tests.

:class:`MemoryStore` implements ``broker.store.work.RoutingStore`` on Python
dicts with the semantics the PostgreSQL statements have (``broker.store.routing``):
a message is claimed only while ``accepted``; one delivery per (message,
recipient, kind); a lane's head is its oldest pending delivery in acceptance
order, skipped (never overtaken) while its backoff runs; an outcome is
written only to a delivery still pending; ``FOR UPDATE`` locks are implied,
since units of work run one at a time. A unit of work that raises leaves the
state as it was (rows are immutable and replaced, so a snapshot of the tables
is a rollback).

Time is the ``clock`` given (UTC), so a test decides when a backoff has passed.
What it does not have: the console's queries, partitions, retention, the
relay. Tests read the tables directly (``messages``, ``deliveries``,
``outbox``, ``events``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from broker.envelope import Envelope
from broker.events import AuditEvent
from broker.store.outbox import OutboxRow
from broker.store.work import (
    Changed,
    Claim,
    FinalDelivery,
    Flagged,
    Head,
    LaneHead,
    MailboxAck,
    MailboxEntry,
    MailboxItem,
    NewDelivery,
    OutcomeUpdate,
    OwedAck,
    Replayable,
    ReplaySelection,
    Reset,
)


@dataclass(frozen=True)
class StoredMessage:
    """A row of ``messages`` (with its payload in the envelope)."""

    id: uuid.UUID
    received_at: datetime
    sender: str
    status: str
    envelope: Envelope
    reason: str | None = None

    @property
    def patient_digests(self) -> list[str]:
        """Return the message's patient digests (HMACs only)."""
        return [k.digest for k in self.envelope.patient_keys]


@dataclass(frozen=True)
class StoredDelivery:
    """A row of ``deliveries``."""

    row: NewDelivery
    created_at: datetime
    next_attempt_at: datetime
    status: str
    attempts: int = 0
    last_error: str | None = None
    response: bytes | None = field(default=None, repr=False)
    ack_code: str | None = None
    delivered_at: datetime | None = None
    posted_at: datetime | None = None
    fetched_at: datetime | None = None
    flagged_at: datetime | None = None
    replayed_at: datetime | None = None
    replays: int = 0
    discarded_at: datetime | None = None
    payload: bytes | None = field(default=None, repr=False)
    content_type: str = ""
    control_id: str = ""
    flags: tuple[str, ...] = ()

    @property
    def id(self) -> uuid.UUID:
        """Return the delivery id."""
        return self.row.id

    @property
    def order(self) -> tuple[datetime, uuid.UUID]:
        """Return the acceptance order of its message (``message_received_at, message_id``)."""
        return (self.row.message_received_at, self.row.message_id)


@dataclass(frozen=True)
class StoredAck:
    """A row of ``app_acks``."""

    owed: OwedAck
    status: str = "waiting"
    code: str | None = None
    reason: str | None = None


@dataclass
class Tables:
    """Everything the memory store holds; a shallow copy is a snapshot (rows are immutable)."""

    messages: dict[uuid.UUID, StoredMessage] = field(default_factory=dict)
    deliveries: dict[uuid.UUID, StoredDelivery] = field(default_factory=dict)
    acks: dict[uuid.UUID, StoredAck] = field(default_factory=dict)
    oppositions: set[str] = field(default_factory=set)
    pauses: set[str] = field(default_factory=set)
    outbox: list[OutboxRow] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)

    def copy(self) -> Tables:
        """Return a snapshot."""
        return Tables(
            dict(self.messages),
            dict(self.deliveries),
            dict(self.acks),
            set(self.oppositions),
            set(self.pauses),
            list(self.outbox),
            list(self.events),
        )


class MemoryMessages:
    """Messages as routing sees them, in memory."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def claim(self, claims: Sequence[Claim]) -> set[uuid.UUID]:
        """Give messages still ``accepted`` their status."""
        taken = set()
        for c in claims:
            found = self.tables.messages.get(c.message_id)
            if found is None or found.received_at != c.received_at or found.status != "accepted":
                continue
            self.tables.messages[c.message_id] = replace(found, status=c.status, reason=c.reason)
            taken.add(c.message_id)
        return taken

    async def envelopes(
        self, keys: Sequence[tuple[uuid.UUID, datetime]]
    ) -> dict[uuid.UUID, Envelope]:
        """Return the stored envelopes."""
        found = {}
        for message_id, at in keys:
            message = self.tables.messages.get(message_id)
            if message is not None and message.received_at == at:
                found[message_id] = message.envelope
        return found

    async def reroute(
        self,
        *,
        message_id: uuid.UUID | None,
        sender: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Put selected ``unroutable`` messages back to ``accepted``."""
        chosen = [
            m
            for m in self.tables.messages.values()
            if m.status == "unroutable"
            and (message_id is None or m.id == message_id)
            and (sender is None or m.sender == sender)
            and (since is None or m.received_at >= since)
            and (until is None or m.received_at < until)
        ]
        for m in chosen:
            self.tables.messages[m.id] = replace(m, status="accepted", reason=None)
        return [(m.id, m.received_at) for m in chosen]


class MemoryDeliveries:
    """Delivery rows in memory."""

    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.clock = clock

    def _pending_heads(self, partitions: set[int]) -> dict[tuple[int, str], StoredDelivery]:
        heads: dict[tuple[int, str], StoredDelivery] = {}
        for d in self.tables.deliveries.values():
            if (
                d.status != "pending"
                or d.posted_at is not None
                or d.row.partition not in partitions
            ):
                continue
            key = (d.row.partition, d.row.lane)
            if key not in heads or d.order < heads[key].order:
                heads[key] = d
        return heads

    def _lane_head(self, head: StoredDelivery) -> LaneHead:
        wait = (head.next_attempt_at - self.clock()).total_seconds()
        return LaneHead(head.id, head.row.partition, head.row.lane, max(0.0, wait))

    def _is_held(self, head: StoredDelivery, open_circuits: Sequence[str]) -> bool:
        recipient = head.row.recipient
        return recipient in open_circuits or recipient in self.tables.pauses

    async def add(self, rows: Sequence[NewDelivery]) -> set[uuid.UUID]:
        """Insert deliveries, one per (message, recipient, kind)."""
        taken = {
            (d.row.message_id, d.row.recipient, d.row.kind) for d in self.tables.deliveries.values()
        }
        inserted = set()
        now = self.clock()
        for row in rows:
            key = (row.message_id, row.recipient, row.kind)
            if key in taken:
                continue
            taken.add(key)
            self.tables.deliveries[row.id] = StoredDelivery(
                row=row,
                created_at=now,
                next_attempt_at=now,
                status=row.status,
                last_error=row.last_error,
                payload=row.payload,
                content_type=row.content_type,
                control_id=row.control_id,
                flags=tuple(row.flags),
            )
            inserted.add(row.id)
        return inserted

    async def scan_heads(
        self,
        partitions: Sequence[int],
        busy_lanes: Sequence[str],
        open_circuits: Sequence[str],
        limit: int,
    ) -> list[LaneHead]:
        """Return every lane's head but busy or held ones, oldest first."""
        busy = set(busy_lanes)
        heads = [
            h
            for h in self._pending_heads(set(partitions)).values()
            if h.row.lane not in busy and not self._is_held(h, open_circuits)
        ]
        return [self._lane_head(h) for h in sorted(heads, key=lambda h: h.order)[:limit]]

    async def probe_heads(
        self, lanes: Sequence[tuple[int, str]], open_circuits: Sequence[str]
    ) -> list[LaneHead]:
        """Return the heads of these lanes, oldest first."""
        heads = self._pending_heads({p for p, _ in lanes})
        found = [
            heads[key]
            for key in dict.fromkeys(lanes)
            if key in heads and not self._is_held(heads[key], open_circuits)
        ]
        return [self._lane_head(h) for h in sorted(found, key=lambda h: h.order)]

    async def load_heads(self, ids: Sequence[uuid.UUID]) -> list[Head]:
        """Return these deliveries if still pending, in acceptance order."""
        found = [
            d
            for i in dict.fromkeys(ids)
            if (d := self.tables.deliveries.get(i)) is not None and d.status == "pending"
        ]
        return [
            Head(
                id=d.id,
                message_id=d.row.message_id,
                control_id=d.control_id,
                recipient=d.row.recipient,
                lane=d.row.lane,
                partition=d.row.partition,
                attempts=d.attempts,
                since=d.replayed_at or d.created_at,
                content_type=d.content_type,
                payload=d.payload or b"",
                kind=d.row.kind,
                trace=d.row.trace,
            )
            for d in sorted(found, key=lambda d: d.order)
        ]

    async def record_outcomes(self, updates: Sequence[OutcomeUpdate]) -> list[Changed]:
        """Write outcomes to deliveries still pending (a blocked one may be delivered)."""
        changed = []
        for u in updates:
            d = self.tables.deliveries.get(u.id)
            if d is None or not (
                d.status == "pending" or (d.status == "blocked" and u.status == "delivered")
            ):
                continue
            d = replace(
                d,
                status=u.status,
                attempts=d.attempts + 1,
                next_attempt_at=u.next_attempt_at or d.next_attempt_at,
                last_error=u.error,
                response=u.response if u.response is not None else d.response,
                ack_code=u.ack_code,
                delivered_at=u.delivered_at,
                posted_at=u.posted_at or d.posted_at,
            )
            self.tables.deliveries[u.id] = d
            changed.append(Changed(d.id, d.row.message_id, d.row.kind, d.status))
        return changed

    async def final_states(self, message_ids: Sequence[uuid.UUID]) -> list[FinalDelivery]:
        """Return the ``message`` deliveries of these messages."""
        wanted = set(message_ids)
        return [
            FinalDelivery(
                d.row.message_id, d.row.recipient, d.status, d.last_error, d.response, d.ack_code
            )
            for d in self.tables.deliveries.values()
            if d.row.message_id in wanted and d.row.kind == "message"
        ]

    async def flag_unacknowledged(
        self, mailboxes: Sequence[tuple[str, float]], partitions: Sequence[int]
    ) -> list[Flagged]:
        """Flag posted mailbox deliveries unacknowledged past their limit."""
        limits = dict(mailboxes)
        now = self.clock()
        flagged = []
        for d in list(self.tables.deliveries.values()):
            after = limits.get(d.row.recipient)
            if (
                after is None
                or d.status != "pending"
                or d.posted_at is None
                or d.flagged_at is not None
                or d.row.partition not in partitions
                or d.posted_at >= now - timedelta(seconds=after)
            ):
                continue
            error = f"not acknowledged by the partner within {int(after)} s"
            self.tables.deliveries[d.id] = replace(d, flagged_at=now, last_error=error)
            flagged.append(Flagged(d.id, d.row.message_id, d.row.recipient, d.control_id))
        return flagged

    async def replayable(self, selection: ReplaySelection) -> list[Replayable]:
        """Return the deliveries a replay selects, in acceptance order."""
        chosen = []
        for d in self.tables.deliveries.values():
            message = self.tables.messages.get(d.row.message_id)
            if (
                message is None
                or d.status not in selection.statuses
                or (selection.message_id is not None and d.row.message_id != selection.message_id)
                or (selection.recipient is not None and d.row.recipient != selection.recipient)
                or (selection.since is not None and d.row.message_received_at < selection.since)
                or (selection.until is not None and d.row.message_received_at >= selection.until)
                or (selection.delivery_ids and d.id not in selection.delivery_ids)
            ):
                continue
            chosen.append((d, message))
        return [
            Replayable(
                id=d.id,
                message_id=d.row.message_id,
                message_received_at=d.row.message_received_at,
                recipient=d.row.recipient,
                lane=d.row.lane,
                partition=d.row.partition,
                status=d.status,
                needs_render=d.payload is None,
                control_id=d.control_id,
                patient_digests=m.patient_digests,
                discarded=d.discarded_at is not None,
            )
            for d, m in sorted(chosen, key=lambda pair: pair[0].order)
        ]

    async def reset(self, resets: Sequence[Reset]) -> None:
        """Put deliveries back to pending with a fresh attempt budget."""
        now = self.clock()
        for r in resets:
            d = self.tables.deliveries[r.id]
            self.tables.deliveries[r.id] = replace(
                d,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                replayed_at=now,
                replays=d.replays + 1,
                last_error=None,
                posted_at=None,
                fetched_at=None,
                flagged_at=None,
                delivered_at=None,
                discarded_at=None,
                payload=r.payload if r.payload is not None else d.payload,
                content_type=r.content_type if r.content_type is not None else d.content_type,
                flags=tuple(r.flags) if r.flags is not None else d.flags,
                control_id=r.control_id if r.control_id is not None else d.control_id,
            )

    async def mailbox(self, recipient: str, limit: int) -> list[MailboxEntry]:
        """Return the posted, unacknowledged messages of a mailbox, oldest first."""
        waiting = sorted(
            (
                d
                for d in self.tables.deliveries.values()
                if d.row.recipient == recipient and d.status == "pending" and d.posted_at
            ),
            key=lambda d: d.order,
        )
        return [
            MailboxEntry(
                id=d.id,
                message_id=d.row.message_id,
                control_id=d.control_id,
                message_type=self.tables.messages[d.row.message_id].envelope.message_type,
                received_at=d.row.message_received_at,
                posted_at=d.posted_at,
                content_type=d.content_type,
                size=len(d.payload or b""),
                fetched=d.fetched_at is not None,
            )
            for d in waiting[:limit]
            if d.posted_at is not None
        ]

    async def mailbox_fetch(self, delivery_id: uuid.UUID, recipient: str) -> MailboxItem | None:
        """Return one mailbox message; note the first fetch."""
        d = self.tables.deliveries.get(delivery_id)
        if (
            d is None
            or d.row.recipient != recipient
            or d.posted_at is None
            or d.status not in ("pending", "delivered")
        ):
            return None
        first = d.fetched_at is None
        if first:
            self.tables.deliveries[d.id] = replace(d, fetched_at=self.clock())
        return MailboxItem(d.id, d.row.message_id, d.control_id, d.payload, d.content_type, first)

    async def mailbox_ack(self, delivery_id: uuid.UUID, recipient: str) -> MailboxAck:
        """Mark a posted mailbox message delivered."""
        d = self.tables.deliveries.get(delivery_id)
        if d is None or d.row.recipient != recipient or d.posted_at is None:
            return MailboxAck(None)
        if d.status != "pending":
            return MailboxAck(d.status)
        self.tables.deliveries[d.id] = replace(
            d,
            status="delivered",
            delivered_at=self.clock(),
            ack_code="mailbox-ack",
            last_error=None,
        )
        return MailboxAck("delivered", True, d.row.message_id, d.control_id, d.row.kind)


class MemoryAppAcks:
    """Application ACKs owed, in memory."""

    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.clock = clock

    async def expect(self, owed: Sequence[OwedAck]) -> None:
        """Note ACKs owed; one already noted stays."""
        for o in owed:
            self.tables.acks.setdefault(o.message_id, StoredAck(o))

    async def lock_waiting(self, message_ids: Sequence[uuid.UUID]) -> list[OwedAck]:
        """Return the ACKs still waiting, by message id."""
        return [
            a.owed
            for i in sorted(set(message_ids))
            if (a := self.tables.acks.get(i)) is not None and a.status == "waiting"
        ]

    async def decide(
        self, message_id: uuid.UUID, status: str, code: str, reason: str | None
    ) -> None:
        """Record the decision about one owed ACK."""
        found = self.tables.acks[message_id]
        self.tables.acks[message_id] = replace(found, status=status, code=code, reason=reason)

    async def stale(self, older_than_s: float, limit: int) -> list[uuid.UUID]:
        """Return waiting ACKs whose message has deliveries, none pending."""
        cutoff = self.clock() - timedelta(seconds=older_than_s)
        found = []
        for a in sorted(self.tables.acks.values(), key=lambda a: a.owed.message_received_at):
            if a.status != "waiting" or a.owed.message_received_at >= cutoff:
                continue
            statuses = [
                d.status
                for d in self.tables.deliveries.values()
                if d.row.message_id == a.owed.message_id and d.row.kind == "message"
            ]
            if statuses and "pending" not in statuses:
                found.append(a.owed.message_id)
        return found[:limit]

    async def count_decided(self, message_ids: Sequence[uuid.UUID]) -> int:
        """Return how many of these messages' ACKs are decided."""
        return sum(
            1
            for i in set(message_ids)
            if (a := self.tables.acks.get(i)) is not None and a.status != "waiting"
        )


class MemoryConsent:
    """Patient oppositions, in memory."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def opposed(self, digests: Iterable[str]) -> set[str]:
        """Return which of these digests have an opposition on file."""
        return set(digests) & self.tables.oppositions


class MemoryOutbox:
    """The outbox, in memory: records in the order written."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def publish(self, rows: Sequence[OutboxRow]) -> None:
        """Queue records."""
        self.tables.outbox.extend(rows)


class MemoryAudit:
    """Audit events, in memory, in the order recorded."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Record events."""
        self.tables.events.extend(events)


class MemoryWork:
    """One unit of work on the memory tables."""

    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self._messages = MemoryMessages(tables)
        self._deliveries = MemoryDeliveries(tables, clock)
        self._acks = MemoryAppAcks(tables, clock)
        self._consent = MemoryConsent(tables)
        self._outbox = MemoryOutbox(tables)
        self._audit = MemoryAudit(tables)

    @property
    def messages(self) -> MemoryMessages:
        """Messages as routing sees them."""
        return self._messages

    @property
    def deliveries(self) -> MemoryDeliveries:
        """Delivery rows."""
        return self._deliveries

    @property
    def acks(self) -> MemoryAppAcks:
        """Application ACKs owed."""
        return self._acks

    @property
    def consent(self) -> MemoryConsent:
        """Patient oppositions."""
        return self._consent

    @property
    def outbox(self) -> MemoryOutbox:
        """Records for Kafka."""
        return self._outbox

    @property
    def audit(self) -> MemoryAudit:
        """Audit events."""
        return self._audit


class MemoryStore:
    """The routing and delivery store in memory (``broker.store.work.RoutingStore``)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tables = Tables()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryWork]:
        """Yield a unit of work; an exception restores the tables as they were."""
        async with self._lock:
            before = self.tables.copy()
            try:
                yield MemoryWork(self.tables, self.clock)
            except BaseException:
                self._restore(before)
                raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MemoryWork]:
        """Yield a unit of work for reads."""
        async with self.transaction() as work:
            yield work

    def _restore(self, before: Tables) -> None:
        # In place: parts of units of work in progress elsewhere hold this object.
        self.tables.__dict__.update(before.__dict__)

    # --- what ingress and operators would have done (test set-up) --------------------

    def accept(self, *envelopes: Envelope) -> None:
        """Store messages as ingress does (status ``accepted``)."""
        for e in envelopes:
            self.tables.messages[e.message_id] = StoredMessage(
                e.message_id, e.received_at, e.sender, "accepted", e
            )

    def oppose(self, digest: str) -> None:
        """File a patient opposition (``carebroker consent add``)."""
        self.tables.oppositions.add(digest)

    def pause(self, recipient: str) -> None:
        """Pause delivery to a recipient (the console's pause)."""
        self.tables.pauses.add(recipient)

    def resume(self, recipient: str) -> None:
        """Resume delivery to a recipient."""
        self.tables.pauses.discard(recipient)


__all__ = ["MemoryStore", "StoredDelivery", "StoredMessage", "Tables"]
