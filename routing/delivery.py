"""The delivery role: attempt pending deliveries lane by lane, record every outcome.

Ownership. Each delivery row has a lane and the partition of
``care.deliveries.requested.v1`` that lane hashes to (``routing/router.py``).
A delivery instance owns the lanes of the partitions Kafka assigns it
(consumer group ``delivery.dispatch``); the rebalance listener tells it which.
Kafka records are only wake-ups: the work list is the ``deliveries`` table,
so nothing is lost when a (local) Kafka forgets its records or an instance
is killed — the next owner finds the same pending rows.

Order (design invariant 4). Within a lane only the head — the oldest pending
delivery by message acceptance order (``message_received_at, message_id``)
— may be attempted, and only when its backoff has passed. A lane stays "in
flight" from the moment its head is handed to a transport until the outcome
is committed, so its next delivery is never attempted before the previous
one's outcome is durable. A failing delivery holds its own lane only; other
patients and other recipients flow on. A dead-lettered delivery (``failed``
or ``dead``) leaves its lane: the lane moves on, and the dead letter waits
for ``carebroker replay``.

Throughput. The PostgreSQL work is batched across lanes: one query reads
the heads of the lanes something happened to (named by a wake-up record,
released by an outcome, or due after a backoff), one index probe each, and
every ``SCAN_S`` one exhaustive query reads every lane's head, so nothing a
wake-up missed is stranded; outcomes are written by one writer, many per
transaction, with their audit events. Sends run concurrently per endpoint
(``connections`` for MLLP, ``concurrency`` for FHIR).

Exactly once at the edge (design invariant 3). An outcome is committed after
the partner answered; if carebroker dies in between, the delivery is sent
again with the same bytes (same MSH-10 / Bundle.identifier), which a partner
recognises as a resend (domain-requirements §1.4, §1.8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from opentelemetry.trace import StatusCode

from broker import kafka, telemetry, topics
from broker.directory import Directory, MailboxEndpoint, Partner, RetryPolicy
from broker.errors import KafkaUnavailableError, StoreUnavailableError
from broker.events import AuditEvent
from broker.store import events
from broker.store.db import UNAVAILABLE, transaction
from routing import app_ack
from routing.retry import CircuitBreaker, backoff, is_exhausted
from routing.subscriber import (
    REVOKE_WAIT_S,
    KafkaMessage,
    kafka_broker,
    partition_list,
    records,
    subscribe,
)
from routing.transports import Outcome, Outgoing, Transport, transport_for

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

ACTOR = "delivery"
MAX_IN_FLIGHT = 2000
FETCH_MAX = 500
WRITE_MAX = 1000
IDLE_POLL_S = 1.0
PACE_S = 0.005
SCAN_S = 2.0  # how often every lane's head is looked for, whatever the wake-ups said
SCAN_MAX = 20000  # lane heads one exhaustive pass reads
SWEEP_S = 30.0
_STORE_DOWN: tuple[type[BaseException], ...] = (*UNAVAILABLE, StoreUnavailableError)


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


@dataclass
class _Result:
    head: Head
    outcome: Outcome | None  # None: not attempted (circuit opened meanwhile)


class _Endpoint:
    """One partner endpoint: its transport, its queue, its workers, its circuit breaker.

    ``may_send`` is asked again when a worker takes a head off the queue: a head
    queued before its partition was revoked (or the process began to stop) is
    handed back unsent, since another instance may own its lane by now.
    """

    def __init__(
        self,
        partner: Partner,
        results: asyncio.Queue[_Result],
        may_send: Callable[[Head], bool],
    ) -> None:
        self.partner = partner
        self.may_send = may_send
        self.transport: Transport = transport_for(partner)
        self.protocol = partner.endpoint.type if partner.endpoint else "none"
        policy = partner.endpoint.retry if partner.endpoint else RetryPolicy()
        self.breaker = CircuitBreaker(policy.circuit_failures, policy.circuit_open_s)
        self.queue: asyncio.Queue[Head | None] = asyncio.Queue()
        self.results = results
        self.workers = [
            asyncio.create_task(self._work(), name=f"deliver-{partner.id}-{i}")
            for i in range(self.transport.concurrency)
        ]

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            head = await self.queue.get()
            if head is None:
                return
            if self.breaker.state == "open" or not self.may_send(head):
                await self.results.put(_Result(head, None))
                continue
            item = Outgoing(
                head.id,
                head.message_id,
                head.control_id,
                head.recipient,
                head.content_type,
                head.payload,
                expect_answer=head.kind != app_ack.KIND,
            )
            with telemetry.deliver_span(
                head.recipient, self.protocol, head.trace, _span_attributes(head)
            ) as span:
                try:
                    outcome = await self.transport.send(item)
                except Exception:  # a transport bug must not kill the worker
                    # Transports turn partner failures into outcomes; anything raised
                    # here is carebroker's own fault: retry, and say so in the logs.
                    log.exception("delivery: transport failed", extra={"partner": self.partner.id})
                    outcome = Outcome("retry", "internal-error", "carebroker transport error")
                span.set_attribute("carebroker.outcome", outcome.status)
                span.set_attribute("carebroker.ack_code", outcome.ack_code)
                if outcome.status in ("retry", "failed"):
                    span.set_status(StatusCode.ERROR, outcome.ack_code)
            if outcome.endpoint_answered:
                self.breaker.succeeded()
            elif self.breaker.failed(loop.time()):
                log.warning(
                    "delivery: circuit opened",
                    extra={"partner": self.partner.id, "for_s": self.breaker.open_for_s},
                )
            await self.results.put(_Result(head, outcome))

    async def retire(self) -> None:
        """Finish what is queued, then stop the workers and close the transport."""
        for _ in self.workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*self.workers, return_exceptions=True)
        await self.transport.close()


class Dispatcher:
    """Find ready lane heads in PostgreSQL, hand them to transports, write the outcomes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: Callable[[], Directory],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        acks: app_ack.Lanes | None = None,
    ) -> None:
        self.pool = pool
        self.directory = directory
        self.now = now
        self.acks = acks  # where application ACKs owed to senders are queued
        self.owned: set[int] = set()
        self.in_flight: dict[str, Head] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.results: asyncio.Queue[_Result] = asyncio.Queue()
        self.delivered = 0
        # Lanes to look at on the next pass (an insertion-ordered set): named by
        # wake-up records, released by the writer, or whose waiting head is due.
        self._candidates: dict[tuple[int, str], None] = {}
        self._waiting: dict[tuple[int, str], float] = {}  # lane -> loop time its head is due
        self._scan_at = 0.0  # loop time of the next exhaustive pass
        self._open_circuits: list[str] = []
        self._wake = asyncio.Event()
        self._lane_released = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # --- ownership (rebalance listener) ---------------------------------------------

    def assign(self, partitions: Iterable[int]) -> None:
        """Take the lanes of these partitions (and look at all of them)."""
        self.owned |= set(partitions)
        self.wake(None)

    async def revoke(self, partitions: Iterable[int], timeout: float = REVOKE_WAIT_S) -> None:
        """Stop taking these partitions' lanes; return once their attempts are recorded.

        Only the sends already under way are waited for (at most ``connections``
        per endpoint): heads still queued behind them are handed back unsent
        (``may_send``). Waiting for a whole queue would hold the group's
        rebalance (every member waits for this) for as long as a slow partner
        takes to answer all of them, and past ``timeout`` the next owner would
        send lanes this instance was still sending. A send under way lasts at
        most its endpoint's answer timeout (30 s by default), within ``timeout``.
        """
        gone = set(partitions)
        self.owned -= gone
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while any(h.partition in gone for h in self.in_flight.values()):
                    self._lane_released.clear()
                    await self._lane_released.wait()

    def wake(self, lanes: Iterable[tuple[int, str]] | None = None) -> None:
        """Look at these (partition, lane) pairs now; with None, at every lane owned."""
        if lanes is None:
            self._scan_at = 0.0
        else:
            self._candidates.update(dict.fromkeys(lanes))
        self._wake.set()

    def may_send(self, head: Head) -> bool:
        """Tell whether a queued head may still be sent: its lane is still ours."""
        return not self._stopping and head.partition in self.owned

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatch, write and sweep loops."""
        self._tasks = [
            asyncio.create_task(self._dispatch_loop(), name="delivery-dispatch"),
            asyncio.create_task(self._write_loop(), name="delivery-write"),
            asyncio.create_task(self._sweep_loop(), name="delivery-sweep"),
        ]

    async def stop(self, timeout: float = 6.0) -> None:
        """Stop dispatching; record what is in flight (bounded); close the transports."""
        self._stopping = True
        self.wake(())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.in_flight:
                    self._lane_released.clear()
                    await self._lane_released.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        endpoints, self.endpoints = list(self.endpoints.values()), {}
        for endpoint in endpoints:
            for worker in endpoint.workers:
                worker.cancel()
            await endpoint.transport.close()

    async def _dispatch_loop(self) -> None:
        backoff_s = 0.2
        while not self._stopping:
            self._wake.clear()
            try:
                dispatched = await self.dispatch_once()
                backoff_s = 0.2
            except _STORE_DOWN:
                log.warning("delivery: message store unavailable, retrying")
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            if not (dispatched and len(self.in_flight) < MAX_IN_FLIGHT):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_for()):
                        await self._wake.wait()
            # Let lane releases and new work gather: one query for many lanes
            # costs the store far less than one per released lane.
            await asyncio.sleep(PACE_S)

    def _idle_for(self) -> float:
        """Seconds until something is due without a wake-up: a waiting head, the next scan."""
        if not self.owned or len(self.in_flight) >= MAX_IN_FLIGHT:
            return IDLE_POLL_S  # nothing to look at, or no room: a release wakes the loop
        loop_now = asyncio.get_running_loop().time()
        due = min([self._scan_at, *self._waiting.values()])
        return min(IDLE_POLL_S, max(0.0, due - loop_now))

    async def dispatch_once(self) -> int:
        """Find ready heads of owned lanes and queue them on their endpoints; return how many.

        Most passes look only at the lanes something happened to (``wake``):
        one index probe per lane, however long the backlog. Every ``SCAN_S``
        seconds, after an assignment, or when a circuit closes, one exhaustive
        pass looks at every lane: the safety net for anything no wake-up named
        (a record Kafka lost, an operator's resume or replay, a waiting head
        another instance left).
        """
        room = min(FETCH_MAX, MAX_IN_FLIGHT - len(self.in_flight))
        if not self.owned or room <= 0:
            return 0
        directory = self.directory()
        loop_now = asyncio.get_running_loop().time()
        closed_circuit = [
            pid for pid, ep in self.endpoints.items() if not ep.breaker.would_allow(loop_now)
        ]
        if set(self._open_circuits) - set(closed_circuit):
            self._scan_at = 0.0  # a circuit closed: its lanes were left alone until now
        self._open_circuits = closed_circuit
        async with self.pool.acquire() as conn:
            if loop_now >= self._scan_at:
                self._scan_at = loop_now + SCAN_S
                self._candidates.clear()
                self._waiting.clear()
                found = await scan_heads(
                    conn, sorted(self.owned), list(self.in_flight), closed_circuit
                )
            else:
                for key, at in list(self._waiting.items()):
                    if at <= loop_now:
                        del self._waiting[key]
                        self._candidates[key] = None
                probe = [
                    key
                    for key in self._candidates
                    if key[0] in self.owned and key[1] not in self.in_flight
                ]
                self._candidates.clear()
                found = await probe_heads(conn, probe, closed_circuit) if probe else []
            chosen: list[uuid.UUID] = []
            for lane in found:
                key = (lane.partition, lane.lane)
                if lane.partition not in self.owned or lane.lane in self.in_flight:
                    continue
                if lane.wait_s > 0:
                    self._waiting[key] = loop_now + lane.wait_s
                elif len(chosen) < room:
                    chosen.append(lane.id)
                else:
                    self._candidates[key] = None  # no room this pass: the next one
            heads = await load_heads(conn, chosen)
        count = 0
        for head in heads:
            if head.partition not in self.owned or head.lane in self.in_flight:
                continue
            endpoint = await self._endpoint(directory, head.recipient)
            if endpoint is None:
                self.in_flight[head.lane] = head
                await self.results.put(
                    _Result(
                        head,
                        Outcome(
                            "retry",
                            "no-endpoint",
                            "partner not in the directory or without an endpoint",
                        ),
                    )
                )
                continue
            if not endpoint.breaker.allows(loop_now):
                continue
            self.in_flight[head.lane] = head
            endpoint.queue.put_nowait(head)
            count += 1
        return count

    async def _endpoint(self, directory: Directory, recipient: str) -> _Endpoint | None:
        partner = directory.partner(recipient)
        current = self.endpoints.get(recipient)
        if partner is None or partner.endpoint is None:
            return None
        if current is not None and current.partner == partner:
            return current
        if current is not None:
            # The directory changed this partner: finish with the old settings, then swap.
            retired = self.endpoints.pop(recipient)
            self._tasks.append(asyncio.create_task(retired.retire()))
        fresh = _Endpoint(partner, self.results, self.may_send)
        self.endpoints[recipient] = fresh
        return fresh

    async def _write_loop(self) -> None:
        while True:
            batch = [await self.results.get()]
            # Outcomes arrive one by one from many connections: gather a few
            # milliseconds' worth so one commit records many of them.
            await asyncio.sleep(PACE_S)
            while len(batch) < WRITE_MAX and not self.results.empty():
                batch.append(self.results.get_nowait())
            delay = 0.2
            while True:
                try:
                    await self.record(batch)
                    break
                except _STORE_DOWN:
                    # Outcomes are kept and their lanes stay in flight until written.
                    log.warning("delivery: cannot record outcomes, retrying")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except asyncpg.PostgresError:
                    await self._record_one_by_one(batch)
                    break
            for result in batch:
                self.in_flight.pop(result.head.lane, None)
            self._lane_released.set()
            # Each released lane's next delivery (or its head again, if it waits).
            self.wake((r.head.partition, r.head.lane) for r in batch)

    async def _record_one_by_one(self, batch: list[_Result]) -> None:
        """Record outcomes singly after PostgreSQL refused a batch; release what still fails.

        A delivery whose outcome cannot be written stays pending and is attempted
        again (the partner recognises the resend): never a lane stuck for good.
        """
        log.error("delivery: outcome batch refused by the store, recording one by one")
        for result in batch:
            try:
                await self.record([result])
            except (*_STORE_DOWN, asyncpg.PostgresError):
                log.exception(
                    "delivery: outcome not recorded, will retry the delivery",
                    extra={"delivery_id": str(result.head.id)},
                )

    async def record(self, batch: list[_Result]) -> None:
        """Write a batch of outcomes and their audit events in one transaction."""
        directory = self.directory()
        now = self.now()
        updates: list[tuple[Any, ...]] = []
        audit: list[AuditEvent] = []
        for result in batch:
            if result.outcome is None:
                continue
            partner = directory.partner(result.head.recipient)
            policy = (
                partner.endpoint.retry
                if partner is not None and partner.endpoint
                else RetryPolicy()
            )
            update, produced = _decide(result.head, result.outcome, policy, now)
            updates.append(update)
            audit.extend(produced)
        if not updates:
            return
        async with transaction(self.pool) as conn:
            changed = await conn.fetch(
                "UPDATE deliveries d SET status = t.status, attempts = d.attempts + 1,"
                " next_attempt_at = COALESCE(t.next_at, d.next_attempt_at),"
                " last_error = t.error, response = COALESCE(t.response, d.response),"
                " ack_code = t.ack_code, delivered_at = t.delivered_at,"
                " posted_at = COALESCE(t.posted_at, d.posted_at), updated_at = now()"
                " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[],"
                " $6::text[], $7::timestamptz[], $8::timestamptz[])"
                " AS t(id, status, next_at, error, response, ack_code, delivered_at, posted_at)"
                " WHERE d.id = t.id AND (d.status = 'pending'"
                " OR (d.status = 'blocked' AND t.status = 'delivered'))"
                " RETURNING d.id, d.message_id, d.kind, d.status",
                *[list(column) for column in zip(*updates, strict=True)],
            )
            written = {r["id"] for r in changed}
            recorded = [e for e in audit if _delivery_id(e) in written]
            if self.acks is not None:
                # A sender in enhanced mode (MSH-16 AL/ER/SU) is owed an application
                # ACK once every delivery of its message is final: decided here, in
                # the transaction that made the last one final.
                finished = [
                    r["message_id"]
                    for r in changed
                    if r["kind"] == "message" and r["status"] in app_ack.FINAL
                ]
                recorded += await app_ack.settle(conn, finished, directory, self.acks, actor=ACTOR)
            await events.record(conn, recorded)
        self.delivered += sum(1 for u in updates if u[1] == "delivered" and u[0] in written)

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(*_STORE_DOWN):
                await self.flag_unacknowledged()
                await self.settle_stale_app_acks()
            await asyncio.sleep(SWEEP_S)

    async def settle_stale_app_acks(self) -> int:
        """Decide application ACKs still waiting though their deliveries all ended; count them.

        A safety net: ACKs are decided in the transaction that ends a message's
        last delivery; one whose deliveries ended otherwise (an operator's
        consent change blocking pending ones) is found here.
        """
        if self.acks is None:
            return 0
        async with transaction(self.pool) as conn:
            # Only those with deliveries, none pending: a delivery retrying for days
            # must not keep newer ones out of the 500.
            waiting = await conn.fetch(
                "SELECT a.message_id FROM app_acks a WHERE a.status = 'waiting'"
                " AND a.message_received_at < now() - make_interval(secs => $1)"
                " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = a.message_id"
                "  AND d.kind = 'message')"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = a.message_id"
                "  AND d.kind = 'message' AND d.status = 'pending')"
                " ORDER BY a.message_received_at LIMIT 500",
                SWEEP_S,
            )
            produced = await app_ack.settle(
                conn, [r["message_id"] for r in waiting], self.directory(), self.acks, actor=ACTOR
            )
            await events.record(conn, produced)
            settled: int = await conn.fetchval(
                "SELECT count(*) FROM app_acks WHERE message_id = ANY($1::uuid[])"
                " AND status <> 'waiting'",
                [r["message_id"] for r in waiting],
            )
        return settled

    async def flag_unacknowledged(self) -> int:
        """Flag mailbox messages the partner has not acknowledged in time; return how many."""
        if not self.owned:
            return 0
        mailboxes = [
            (p.id, p.endpoint.unacked_alert_after_s)
            for p in self.directory().partners.values()
            if isinstance(p.endpoint, MailboxEndpoint)
        ]
        if not mailboxes:
            return 0
        async with transaction(self.pool) as conn:
            rows = await conn.fetch(
                "UPDATE deliveries d SET flagged_at = now(), updated_at = now(),"
                " last_error = 'not acknowledged by the partner within '"
                " || t.after_s::bigint || ' s'"
                " FROM unnest($1::text[], $2::float8[]) AS t(recipient, after_s)"
                " WHERE d.recipient = t.recipient AND d.status = 'pending'"
                " AND d.posted_at IS NOT NULL AND d.flagged_at IS NULL"
                " AND d.posted_at < now() - make_interval(secs => t.after_s)"
                " AND d.partition = ANY($3::int[])"
                " RETURNING d.id, d.message_id, d.recipient, d.control_id",
                [m[0] for m in mailboxes],
                [m[1] for m in mailboxes],
                sorted(self.owned),
            )
            await events.record(
                conn,
                [
                    AuditEvent(
                        kind="alert_changed",
                        actor=ACTOR,
                        outcome="minor_failure",
                        message_id=r["message_id"],
                        control_id=r["control_id"] or None,
                        recipient=r["recipient"],
                        detail={"alert": "mailbox_unacknowledged", "delivery_id": str(r["id"])},
                    )
                    for r in rows
                ],
            )
        if rows:
            log.warning("delivery: mailbox messages unacknowledged", extra={"count": len(rows)})
        return len(rows)


def _delivery_id(event: AuditEvent) -> uuid.UUID | None:
    value = event.detail.get("delivery_id")
    return uuid.UUID(value) if value else None


def _msa1(head: Head) -> str:
    """Return MSA-1 of an application ACK carebroker sends (for its audit event)."""
    at = head.payload.find(b"\rMSA")
    return head.payload[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else ""


def _span_attributes(head: Head) -> dict[str, Any]:
    """Return the ids of one delivery attempt for its span (never content)."""
    return {
        "messaging.message.id": str(head.message_id),
        "messaging.message.body.size": len(head.payload),
        "carebroker.delivery_id": str(head.id),
        "carebroker.control_id": head.control_id,
        "carebroker.delivery_kind": head.kind,
        "carebroker.attempt": head.attempts + 1,
    }


def _decide(
    head: Head, outcome: Outcome, policy: RetryPolicy, now: datetime
) -> tuple[tuple[Any, ...], list[AuditEvent]]:
    """Return the row update and audit events for one outcome (the delivery state machine)."""
    attempts = head.attempts + 1
    base = {
        "delivery_id": str(head.id),
        "attempt": attempts,
        "ack_code": outcome.ack_code,
    }

    def event(kind: Any, outcome_level: Any = "success", **extra: Any) -> AuditEvent:
        return AuditEvent(
            kind=kind,
            actor=ACTOR,
            outcome=outcome_level,
            message_id=head.message_id,
            control_id=head.control_id or None,
            recipient=head.recipient,
            detail={**base, **extra},
        )

    if head.kind == app_ack.KIND:
        base["app_ack"] = True
    if outcome.status == "delivered":
        written = (head.id, "delivered", None, None, outcome.response, outcome.ack_code, now, None)
        if head.kind == app_ack.KIND:
            return written, [event("app_ack_sent", sent=True, acknowledgement=_msa1(head))]
        return written, [event("delivered")]
    if outcome.status == "posted":
        return (
            (head.id, "pending", None, None, None, outcome.ack_code, None, now),
            [event("delivery_attempted", via="mailbox")],
        )
    if outcome.status == "failed":
        return (
            (
                head.id,
                "failed",
                None,
                outcome.error,
                outcome.response,
                outcome.ack_code,
                None,
                None,
            ),
            [
                event("failed", "serious_failure", reason=outcome.error),
                event("dead_lettered", "serious_failure", reason=outcome.error),
            ],
        )
    exhausted = is_exhausted(policy, attempts, head.since, now)
    if exhausted is not None:
        reason = f"{outcome.error}; {exhausted}"
        return (
            (head.id, "dead", None, reason, outcome.response, outcome.ack_code, None, None),
            [event("dead_lettered", "serious_failure", reason=reason)],
        )
    retry_at = now + timedelta(seconds=backoff(policy, attempts))
    return (
        (
            head.id,
            "pending",
            retry_at,
            outcome.error,
            outcome.response,
            outcome.ack_code,
            None,
            None,
        ),
        [event("retried", "minor_failure", reason=outcome.error, retry_at=retry_at.isoformat())],
    )


@dataclass(frozen=True)
class LaneHead:
    """Where a lane stands: its head's id, and how long that head still waits (0: ready)."""

    id: uuid.UUID
    partition: int
    lane: str
    wait_s: float


async def scan_heads(
    conn: asyncpg.Connection,
    partitions: list[int],
    busy_lanes: list[str],
    open_circuits: list[str],
    limit: int = SCAN_MAX,
) -> list[LaneHead]:
    """Return the head of every lane of ``partitions`` but ``busy_lanes``, oldest first.

    A head is the oldest pending delivery of its lane, whether or not its
    backoff has passed: a lane whose head waits is skipped, never overtaken.
    Exhaustive: it reads every pending delivery of those partitions (index
    ``deliveries_pending``), so the dispatcher runs it only now and then.
    """
    rows = await conn.fetch(
        "SELECT h.id, h.partition, h.lane,"
        " GREATEST(0, extract(epoch FROM h.next_attempt_at - now()))::float8 AS wait_s"
        " FROM (SELECT DISTINCT ON (partition, lane) id, partition, lane,"
        "  recipient, next_attempt_at, message_received_at, message_id"
        "  FROM deliveries WHERE status = 'pending' AND posted_at IS NULL"
        "  AND partition = ANY($1::int[])"
        "  ORDER BY partition, lane, message_received_at, message_id) h"
        " WHERE h.lane NOT IN (SELECT unnest($2::text[]))"  # hashed: thousands in flight
        # A recipient whose circuit is open, or that an operator paused (from the
        # console), is left alone by every instance; so in probe_heads.
        " AND NOT (h.recipient = ANY($3::text[]))"
        " AND NOT EXISTS (SELECT 1 FROM delivery_pauses p WHERE p.recipient = h.recipient)"
        " ORDER BY h.message_received_at, h.message_id LIMIT $4",
        partitions,
        busy_lanes,
        open_circuits,
        limit,
    )
    return [LaneHead(*r) for r in rows]


async def probe_heads(
    conn: asyncpg.Connection, lanes: list[tuple[int, str]], open_circuits: list[str]
) -> list[LaneHead]:
    """Return the heads of these (partition, lane) pairs, oldest first: one index probe each."""
    rows = await conn.fetch(
        "SELECT h.id, h.partition, h.lane,"
        " GREATEST(0, extract(epoch FROM h.next_attempt_at - now()))::float8 AS wait_s"
        " FROM unnest($1::int[], $2::text[]) AS c(partition, lane)"
        " CROSS JOIN LATERAL (SELECT id, partition, lane, recipient, next_attempt_at,"
        "  message_received_at, message_id FROM deliveries"
        "  WHERE partition = c.partition AND lane = c.lane"
        "  AND status = 'pending' AND posted_at IS NULL"
        "  ORDER BY message_received_at, message_id LIMIT 1) h"
        " WHERE NOT (h.recipient = ANY($3::text[]))"
        " AND NOT EXISTS (SELECT 1 FROM delivery_pauses p WHERE p.recipient = h.recipient)"
        " ORDER BY h.message_received_at, h.message_id",
        [lane[0] for lane in lanes],
        [lane[1] for lane in lanes],
        open_circuits,
    )
    return [LaneHead(*r) for r in rows]


async def load_heads(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[Head]:
    """Return the deliveries to attempt, still pending, in acceptance order."""
    if not ids:
        return []
    rows = await conn.fetch(
        "SELECT id, message_id, control_id, recipient, lane, partition, attempts,"
        " COALESCE(replayed_at, created_at) AS since, content_type, payload, kind, trace"
        " FROM deliveries WHERE id = ANY($1::uuid[]) AND status = 'pending'"
        " ORDER BY message_received_at, message_id",
        ids,
    )
    return [Head(**dict(r)) for r in rows]


def lanes_named(partition: int, value: bytes) -> list[tuple[int, str]] | None:
    """Return the (partition, lane) pairs a wake-up record names; None if it names none."""
    try:
        request = orjson.loads(value)
        lanes = request.get("lanes") or [request["lane"]]
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return None
    if not all(isinstance(lane, str) for lane in lanes):
        return None
    return [(partition, lane) for lane in lanes]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
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

    async def start(self, ctx: Context) -> None:
        """Join ``delivery.dispatch``, start the workers, serve the mailbox API."""
        from routing.mailbox import mailbox_router

        topic = topics.DELIVERIES.full_name(ctx.settings.kafka_topic_prefix)
        acks = app_ack.Lanes(
            topic,
            await kafka.partitions_of(ctx.settings, topics.DELIVERIES),
            ctx.settings.outbox_shards,
        )
        dispatcher = Dispatcher(ctx.pool, lambda: ctx.directory, acks=acks)
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
            listener=_Listener(dispatcher),
        )
        self._broker = broker
        try:
            await broker.start()
        except (OSError, TimeoutError) as exc:
            await dispatcher.stop()
            raise KafkaUnavailableError(f"delivery cannot subscribe: {type(exc).__name__}") from exc
        ctx.routers.append(mailbox_router(ctx, acks))

    async def stop(self) -> None:
        """Leave the group (which waits for in-flight attempts), then stop the workers."""
        if self._broker is not None:
            await self._broker.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()

    def endpoints(self) -> list[str]:
        """Return the mailbox API line for the start-up banner."""
        return ["mailbox: /mailbox/{partner}/messages (partner bearer token)"]
