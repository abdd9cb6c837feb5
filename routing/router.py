"""Routing a batch: accepted messages in, delivery rows (and their Kafka hand-off) out.

The router role's subscriber (``routing/roles.py``, consumer group
``router.route``) hands :meth:`Router.route` batches of
``care.messages.accepted.v1``; for each message the pure rules
(``routing/rules.py``) decide the recipients and the render
(``routing/render.py``) what each receives: the message in the
format, version and charset it reads, translated between HL7 v2 and FHIR
when the formats differ. Then ONE unit of work of the routing store
(``broker.store.work.RoutingStore``: PostgreSQL in production, memory in
unit tests):

- locks the messages still ``accepted`` (a message already routed — Kafka
  redelivered it, or another router instance took it — is skipped: the
  router is idempotent, design invariant 3);
- inserts ``deliveries`` rows (``ON CONFLICT (message_id, recipient, kind)
  DO NOTHING``) with their lane, partition and trace context;
- sets ``messages.status`` to ``routed``, ``unroutable`` (with the reason) or
  ``blocked`` (patient opposition);
- records the audit events (``routed`` per recipient with its rule,
  ``translated`` with what a translation produced and could not map,
  ``unroutable``, ``blocked``);
- inserts the outbox rows for ``care.deliveries.requested.v1``, one per
  partition the batch's deliveries fall in (one per delivery when tracing),
  so the delivery instance owning each lane wakes up;
- notes the application ACK an enhanced-mode sender asked for
  (``routing/app_ack.py``), and queues it at once when the outcome is already
  known (unroutable, refused, nothing left to deliver).

Each message is traced by a ``process care.messages.accepted.v1`` span, a
child of the relay's ``send`` span found in the Kafka record headers (else of
the ingress, from the envelope); its deliveries carry that span's context in
``deliveries.trace`` and the outbox headers, so the delivery attempt and the
next Kafka hop join the same trace.

Only after the commit are the Kafka offsets committed; a crash in between
makes Kafka redeliver, and the lock-and-skip above makes that harmless.

Lanes (design invariant 4, ``routing/lanes.py``): a delivery's lane is
(recipient, patient ordering key), or the recipient alone for a partner with
``ordering: strict``; its partition is a stable hash of the lane.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import StatusCode

from broker import redact, telemetry, topics
from broker.directory import Directory, Partner
from broker.envelope import DeliveryRequest, Envelope
from broker.errors import PermanentError
from broker.events import AuditEvent
from broker.ids import new_id
from broker.store.outbox import OutboxRow
from broker.store.work import Claim, NewDelivery, RoutingStore
from routing import app_ack, consent, rules
from routing.lanes import lane_of, partition_of
from routing.render import Rendered, RenderError, Translation, render_for

log = logging.getLogger(__name__)

ACTOR = "router"


def _wake_ups(rows: list[_Row]) -> list[tuple[_Row, list[str]]]:
    """Return the records that wake the delivery instances: one per partition, with its lanes.

    A record on ``care.deliveries.requested.v1`` only wakes the instance that
    owns its partition, which then looks at the heads of the lanes the record
    names (``DeliveryRequest.lanes``). One record per partition, naming every
    lane of the batch there, spares the outbox, the relay and Kafka two
    records in three. With tracing on, each delivery keeps its own record, so
    that its trace shows the Kafka hop.
    """
    pending = [r for r in rows if r.status == "pending"]
    if telemetry.is_recording():
        return [(r, []) for r in pending]
    by_partition: dict[int, list[_Row]] = {}
    for row in pending:
        by_partition.setdefault(row.partition, []).append(row)
    return [(rows[0], list(dict.fromkeys(r.lane for r in rows))) for rows in by_partition.values()]


def render_copy(
    envelope: Envelope, partner: Partner, decision: rules.Decision, directory: Directory
) -> Rendered:
    """Render what the router stores for ``partner`` (``route explain`` shows the same).

    Raises RenderError when it cannot be made, ER7 the renderer cannot read
    included (named, never quoted).
    """
    try:
        return render_for(
            envelope,
            partner,
            strip_ins=decision.strip_ins,
            sender=directory.partner(envelope.sender),
        )
    except RenderError:
        raise
    except PermanentError as exc:
        raise RenderError(f"cannot be rendered: {exc}") from exc


@dataclass
class _Row:
    """One delivery row to insert."""

    delivery_id: uuid.UUID
    envelope: Envelope
    recipient: str
    rules: list[str]
    reasons: list[dict[str, str]]
    lane: str
    partition: int
    status: str
    payload: bytes | None = field(repr=False)
    content_type: str = ""
    flags: list[str] = field(default_factory=list)
    last_error: str | None = None
    translation: Translation | None = None
    control_id: str = ""  # what the recipient's ACK echoes (MSH-10 it receives)
    trace: dict[str, str] = field(default_factory=dict)  # the routing span's context

    def stored(self) -> NewDelivery:
        """Return the delivery row the store inserts."""
        return NewDelivery(
            id=self.delivery_id,
            message_id=self.envelope.message_id,
            message_received_at=self.envelope.received_at,
            recipient=self.recipient,
            lane=self.lane,
            partition=self.partition,
            status=self.status,
            payload=self.payload,
            content_type=self.content_type,
            control_id=self.control_id or self.envelope.control_id,
            rules=self.rules,
            reasons=self.reasons,
            flags=self.flags,
            last_error=self.last_error,
            trace=self.trace or None,
        )


@dataclass
class RouteStats:
    """What one batch did (for logs and tests)."""

    routed: int = 0
    unroutable: int = 0
    blocked: int = 0
    skipped: int = 0
    deliveries: int = 0


class Router:
    """Route batches of accepted messages (the logic under the subscriber)."""

    def __init__(
        self,
        store: RoutingStore,
        directory: Directory,
        *,
        topic_prefix: str,
        partitions: int,
        on_routed: Callable[[list[tuple[int, str]]], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        # Told the (partition, lane) of the deliveries of each committed batch: a
        # delivery role in the same process starts on them without waiting for
        # the Kafka record (which still goes, for instances elsewhere).
        self.on_routed = on_routed
        self.topic = topics.DELIVERIES.full_name(topic_prefix)
        self.accepted_topic = topics.ACCEPTED.full_name(topic_prefix)
        self.partitions = partitions
        self.lanes = app_ack.Lanes(self.topic, partitions)

    async def route(
        self,
        envelopes: Sequence[Envelope],
        carriers: Mapping[uuid.UUID, Mapping[str, str]] | None = None,
    ) -> RouteStats:
        """Route a batch in one unit of work; raise StoreUnavailableError to have it redelivered.

        ``carriers`` are the trace contexts of the Kafka records (by message id);
        each message gets a ``process`` span in its own trace, ended once the
        batch is committed, and its deliveries carry that span's context on.
        """
        unique = list({e.message_id: e for e in envelopes}.values())
        stats = RouteStats()
        if not unique:
            return stats
        carriers = carriers or {}
        if not telemetry.is_recording():
            # Nobody collects spans here: hand on the context that came in, untouched.
            traces = {e.message_id: dict(carriers.get(e.message_id) or e.trace) for e in unique}
            await self._route(unique, traces, {}, stats)
            return stats
        spans = {
            e.message_id: telemetry.start_process_span(
                self.accepted_topic,
                topics.Groups.ROUTER,
                carriers.get(e.message_id) or e.trace,
                attributes=redact.span_attributes(e),
            )
            for e in unique
        }
        outcomes: dict[uuid.UUID, tuple[str, int]] = {}
        try:
            traces = {message_id: telemetry.context_of(span) for message_id, span in spans.items()}
            await self._route(unique, traces, outcomes, stats)
        except BaseException as exc:
            for span in spans.values():
                span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            for message_id, span in spans.items():
                outcome, recipients = outcomes.get(message_id, ("skipped", 0))
                span.set_attribute("carebroker.outcome", outcome)
                span.set_attribute("carebroker.recipients", recipients)
                span.end()
        return stats

    async def _route(
        self,
        unique: list[Envelope],
        traces: Mapping[uuid.UUID, dict[str, str]],
        outcomes: dict[uuid.UUID, tuple[str, int]],
        stats: RouteStats,
    ) -> None:
        directory = self.directory
        fresh: list[_Row] = []
        async with self.store.transaction() as work:
            opposed = await work.consent.opposed(k.digest for e in unique for k in e.patient_keys)
            decisions = {e.message_id: rules.route(e, directory) for e in unique}
            statuses: list[tuple[Envelope, str, str | None]] = []
            for envelope in unique:
                decision = decisions[envelope.message_id]
                if not decision.is_routable:
                    statuses.append((envelope, "unroutable", decision.reason()))
                elif any(k.digest in opposed for k in envelope.patient_keys):
                    statuses.append((envelope, "blocked", consent.BLOCKED_REASON))
                else:
                    statuses.append((envelope, "routed", None))
            # Only messages still `accepted` take their status (and are routed): a
            # record Kafka delivers again finds its message routed and is skipped.
            pending = await work.messages.claim([_claim(*t) for t in statuses])
            stats.skipped = len(unique) - len(pending)
            statuses = [t for t in statuses if t[0].message_id in pending]
            rows: list[_Row] = []
            audit: list[AuditEvent] = []
            for envelope, status, reason in statuses:
                decision = decisions[envelope.message_id]
                trace = traces[envelope.message_id]
                if status == "unroutable":
                    audit.append(_event(envelope, "unroutable", reason=reason, kind=decision.kind))
                    # Enhanced mode: the sender asked to hear what became of it (AE).
                    audit += await app_ack.send_now(
                        work,
                        envelope,
                        app_ack.for_undelivered(decision),
                        directory,
                        self.lanes,
                        actor=ACTOR,
                        trace=trace,
                    )
                    outcomes[envelope.message_id] = ("unroutable", 0)
                    stats.unroutable += 1
                    continue
                is_blocked = status == "blocked"
                for recipient in decision.recipients:
                    row = self._row(envelope, recipient, directory, decision, is_blocked)
                    row.trace = trace
                    rows.append(row)
                if is_blocked:
                    stats.blocked += 1
                else:
                    stats.routed += 1
                outcomes[envelope.message_id] = (
                    "blocked" if is_blocked else "routed",
                    len(decision.recipients),
                )
            inserted = await work.deliveries.add([r.stored() for r in rows])
            fresh = [r for r in rows if r.delivery_id in inserted]
            for r in fresh:
                audit.extend(_row_events(r))
            # Application ACKs owed: noted now, sent once every delivery is final (which
            # may be already: all blocked, or none could be rendered).
            routed = [e for e, status, _ in statuses if status != "unroutable"]
            owed = await app_ack.expect(work, routed, traces)
            audit += await app_ack.settle(work, owed, directory, self.lanes, actor=ACTOR)
            await work.audit.record(audit)
            await work.outbox.publish(
                [
                    OutboxRow(
                        self.topic,
                        DeliveryRequest(
                            delivery_id=r.delivery_id,
                            message_id=r.envelope.message_id,
                            recipient=r.recipient,
                            lane=r.lane,
                            trace=r.trace,
                            lanes=lanes,
                        )
                        .model_dump_json()
                        .encode(),
                        r.lane.encode(),
                        r.partition,
                        headers=r.trace or None,
                    )
                    for r, lanes in _wake_ups(fresh)
                ]
            )
            stats.deliveries = len(fresh)
        if self.on_routed is not None and fresh:
            self.on_routed([(r.partition, r.lane) for r in fresh if r.status == "pending"])

    async def route_one_by_one(self, envelopes: Sequence[Envelope]) -> RouteStats:
        """Route each message alone; one the store refuses is marked unroutable with why."""
        total = RouteStats()
        for envelope in envelopes:
            try:
                stats = await self.route([envelope])
            except PermanentError as exc:  # StoreRefusedError among them
                reason = f"routing failed ({type(exc).__name__}); replay after a fix"
                async with self.store.transaction() as work:
                    if await work.messages.claim([_claim(envelope, "unroutable", reason)]):
                        await work.audit.record([_event(envelope, "unroutable", reason=reason)])
                total.unroutable += 1
                continue
            for name in ("routed", "unroutable", "blocked", "skipped", "deliveries"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total

    def _row(
        self,
        envelope: Envelope,
        recipient: rules.Recipient,
        directory: Directory,
        decision: rules.Decision,
        is_blocked: bool,
    ) -> _Row:
        partner = directory.partner(recipient.partner)
        assert partner is not None  # rules chose it from this directory
        lane = lane_of(partner, envelope.ordering_key)
        row = _Row(
            delivery_id=new_id(),
            envelope=envelope,
            recipient=partner.id,
            rules=recipient.rules,
            reasons=[
                {"rule": r.rule, "field": r.field, "value": r.value} for r in recipient.reasons
            ],
            lane=lane,
            partition=partition_of(lane, self.partitions),
            status="pending",
            payload=None,
        )
        if is_blocked:
            # Never rendered, never stored: nothing about this patient leaves carebroker.
            row.status, row.last_error = "blocked", consent.BLOCKED_REASON
            return row
        try:
            rendered = render_copy(envelope, partner, decision, directory)
        except RenderError as exc:
            row.status, row.last_error = "failed", str(exc)
            return row
        row.payload, row.content_type = rendered.payload, rendered.content_type
        row.control_id = rendered.control_id or envelope.control_id
        row.flags = list(rendered.flags)
        row.translation = rendered.translation
        return row


def _claim(envelope: Envelope, status: str, reason: str | None) -> Claim:
    return Claim(envelope.message_id, envelope.received_at, status, reason)


def _event(envelope: Envelope, event_kind: Any, **detail: Any) -> AuditEvent:
    return AuditEvent(
        kind=event_kind,
        actor=ACTOR,
        outcome="minor_failure" if event_kind in ("unroutable", "blocked") else "success",
        message_id=envelope.message_id,
        control_id=envelope.control_id,
        partner=envelope.sender,
        detail={"message_type": envelope.message_type, **detail},
    )


def _row_events(row: _Row) -> list[AuditEvent]:
    """Return the events of one new delivery: routed (or blocked/failed), then translated."""
    detail: dict[str, Any] = {
        "message_type": row.envelope.message_type,
        "delivery_id": str(row.delivery_id),
        "rules": row.rules,
        "fields": [f"{r['field']}={r['value']}" for r in row.reasons],
    }
    if row.flags:
        detail["flags"] = row.flags
    kind = {"pending": "routed", "blocked": "blocked", "failed": "failed"}[row.status]
    if row.last_error:
        detail["reason"] = row.last_error
    produced = [
        AuditEvent(
            kind=kind,
            actor=ACTOR,
            outcome="success" if kind == "routed" else "minor_failure",
            message_id=row.envelope.message_id,
            control_id=row.envelope.control_id,
            partner=row.envelope.sender,
            recipient=row.recipient,
            rule=",".join(row.rules),
            detail=detail,
        )
    ]
    if row.translation is not None:
        produced.append(
            AuditEvent(
                kind="translated",
                actor=ACTOR,
                # Unmapped parts are listed, not failures: the IG maps only part of v2.
                outcome="success",
                message_id=row.envelope.message_id,
                control_id=row.envelope.control_id,
                partner=row.envelope.sender,
                recipient=row.recipient,
                detail={"delivery_id": str(row.delivery_id), **row.translation.detail()},
            )
        )
    return produced


__all__ = ["RouteStats", "Router", "lane_of", "partition_of"]
