"""Delivery scheduling: attempt pending deliveries lane by lane, record every outcome.

The :class:`Dispatcher` is the delivery role's logic; its Kafka subscriber
and rebalance listener are in ``routing/roles.py``, its state in the routing
store (``broker.store.work.RoutingStore``: PostgreSQL, or memory in unit tests).

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
from datetime import UTC, datetime

import orjson

from broker.directory import Directory, MailboxEndpoint, Partner, RetryPolicy
from broker.errors import StoreRefusedError, StoreUnavailableError
from broker.events import AuditEvent
from broker.store.work import Head, LaneHead, OutcomeUpdate, RoutingStore
from routing import app_ack
from routing.endpoints import Endpoint, Result
from routing.outcomes import ACTOR, decide, delivery_id
from routing.subscriber import REVOKE_WAIT_S
from routing.transports import Outcome, Transport, transport_for

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 2000
FETCH_MAX = 500
WRITE_MAX = 1000
IDLE_POLL_S = 1.0
PACE_S = 0.005
SCAN_S = 2.0  # how often every lane's head is looked for, whatever the wake-ups said
SCAN_MAX = 20000  # lane heads one exhaustive pass reads
SWEEP_S = 30.0
STALE_ACKS_MAX = 500


class Dispatcher:
    """Find ready lane heads in PostgreSQL, hand them to transports, write the outcomes."""

    def __init__(
        self,
        store: RoutingStore,
        directory: Callable[[], Directory],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        acks: app_ack.Lanes | None = None,
        transports: Callable[[Partner], Transport] = transport_for,
    ) -> None:
        self.store = store
        self.transports = transports  # a transport per partner endpoint (tests: a fake)
        self.directory = directory
        self.now = now
        self.acks = acks  # where application ACKs owed to senders are queued
        self.owned: set[int] = set()
        self.in_flight: dict[str, Head] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.results: asyncio.Queue[Result] = asyncio.Queue()
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
            except StoreUnavailableError:
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
        async with self.store.connection() as work:
            if loop_now >= self._scan_at:
                self._scan_at = loop_now + SCAN_S
                self._candidates.clear()
                self._waiting.clear()
                found = await work.deliveries.scan_heads(
                    sorted(self.owned), list(self.in_flight), closed_circuit, SCAN_MAX
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
                found = await work.deliveries.probe_heads(probe, closed_circuit) if probe else []
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
            heads = await work.deliveries.load_heads(chosen)
        count = 0
        for head in heads:
            if head.partition not in self.owned or head.lane in self.in_flight:
                continue
            endpoint = await self._endpoint(directory, head.recipient)
            if endpoint is None:
                self.in_flight[head.lane] = head
                await self.results.put(
                    Result(
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

    async def _endpoint(self, directory: Directory, recipient: str) -> Endpoint | None:
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
        fresh = Endpoint(partner, self.results, self.may_send, self.transports(partner))
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
                except StoreUnavailableError:
                    # Outcomes are kept and their lanes stay in flight until written.
                    log.warning("delivery: cannot record outcomes, retrying")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except StoreRefusedError:
                    await self._record_one_by_one(batch)
                    break
            for result in batch:
                self.in_flight.pop(result.head.lane, None)
            self._lane_released.set()
            # Each released lane's next delivery (or its head again, if it waits).
            self.wake((r.head.partition, r.head.lane) for r in batch)

    async def _record_one_by_one(self, batch: list[Result]) -> None:
        """Record outcomes singly after PostgreSQL refused a batch; release what still fails.

        A delivery whose outcome cannot be written stays pending and is attempted
        again (the partner recognises the resend): never a lane stuck for good.
        """
        log.error("delivery: outcome batch refused by the store, recording one by one")
        for result in batch:
            try:
                await self.record([result])
            except (StoreUnavailableError, StoreRefusedError):
                log.exception(
                    "delivery: outcome not recorded, will retry the delivery",
                    extra={"delivery_id": str(result.head.id)},
                )

    async def record(self, batch: list[Result]) -> None:
        """Write a batch of outcomes and their audit events in one unit of work."""
        directory = self.directory()
        now = self.now()
        updates: list[OutcomeUpdate] = []
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
            update, produced = decide(result.head, result.outcome, policy, now)
            updates.append(update)
            audit.extend(produced)
        if not updates:
            return
        async with self.store.transaction() as work:
            changed = await work.deliveries.record_outcomes(updates)
            written = {c.id for c in changed}
            recorded = [e for e in audit if delivery_id(e) in written]
            if self.acks is not None:
                # A sender in enhanced mode (MSH-16 AL/ER/SU) is owed an application
                # ACK once every delivery of its message is final: decided here, in
                # the transaction that made the last one final.
                finished = [
                    c.message_id
                    for c in changed
                    if c.kind == "message" and c.status in app_ack.FINAL
                ]
                recorded += await app_ack.settle(work, finished, directory, self.acks, actor=ACTOR)
            await work.audit.record(recorded)
        self.delivered += sum(1 for u in updates if u.status == "delivered" and u.id in written)

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(StoreUnavailableError):
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
        async with self.store.transaction() as work:
            waiting = await work.acks.stale(SWEEP_S, STALE_ACKS_MAX)
            produced = await app_ack.settle(work, waiting, self.directory(), self.acks, actor=ACTOR)
            await work.audit.record(produced)
            return await work.acks.count_decided(waiting)

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
        async with self.store.transaction() as work:
            rows = await work.deliveries.flag_unacknowledged(mailboxes, sorted(self.owned))
            await work.audit.record(
                [
                    AuditEvent(
                        kind="alert_changed",
                        actor=ACTOR,
                        outcome="minor_failure",
                        message_id=r.message_id,
                        control_id=r.control_id or None,
                        recipient=r.recipient,
                        detail={"alert": "mailbox_unacknowledged", "delivery_id": str(r.id)},
                    )
                    for r in rows
                ]
            )
        if rows:
            log.warning("delivery: mailbox messages unacknowledged", extra={"count": len(rows)})
        return len(rows)


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


__all__ = ["Dispatcher", "Head", "LaneHead", "lanes_named"]
