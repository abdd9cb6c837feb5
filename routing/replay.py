"""Re-deliver from the store: dead letters after a fix, a partner after an outage, one message.

``carebroker replay`` selects deliveries by message id, recipient partner
and/or time range (message acceptance time) and puts them back to
``pending`` with a fresh attempt budget; the owning delivery instance is woken
through the outbox. By default only dead letters (``failed``, ``dead``) are
replayed: what a partner already acknowledged is not sent again, so a replay
never duplicates on the partner side. ``include_delivered`` re-sends those
too (the partner recognises the same MSH-10 / Bundle.identifier as a resend).

- The stored bytes are sent again, unchanged; a delivery that has none
  (blocked, or refused by the render) is rendered afresh with the current
  directory.
- A ``blocked`` delivery is replayed only when asked for by status and only
  if the patient no longer has an opposition on file.
- A message that was ``unroutable`` (say, before its recipient was added to
  the directory) is routed again when selected by id or with ``unroutable``.
- A dead letter an operator discarded (``discarded_at``, from the console)
  is left alone by a replay by partner or time range; selecting it by its
  message or delivery id replays it, and it is no longer discarded.

Each replayed delivery or message gets a ``replayed`` audit event naming the
operator (and the reason, when given).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from broker import topics
from broker.directory import Directory
from broker.envelope import DeliveryRequest
from broker.events import AuditEvent
from broker.store.outbox import OutboxRow
from broker.store.work import Replayable, ReplaySelection, Reset, RoutingStore, Work
from routing.render import RenderError, render_for

DEAD_LETTERS = ("failed", "dead")


@dataclass(frozen=True)
class Selection:
    """Which deliveries (and unroutable messages) to replay."""

    message_id: uuid.UUID | None = None
    delivery_ids: Sequence[uuid.UUID] = ()
    partner: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    statuses: Sequence[str] = DEAD_LETTERS
    include_delivered: bool = False
    unroutable: bool = False
    reason: str | None = None

    def is_empty(self) -> bool:
        """Tell whether nothing narrows the selection (refused: too broad by accident)."""
        return (
            self.message_id is None
            and not self.delivery_ids
            and self.partner is None
            and self.since is None
        )

    def names_deliveries(self) -> bool:
        """Tell whether the selection names messages or deliveries, not a range."""
        return self.message_id is not None or bool(self.delivery_ids)


@dataclass
class ReplayResult:
    """What a replay did."""

    deliveries: int = 0
    rerouted: int = 0
    skipped: list[str] = field(default_factory=list)


async def replay(
    store: RoutingStore,
    directory: Directory,
    selection: Selection,
    *,
    actor: str,
    topic_prefix: str,
) -> ReplayResult:
    """Put the selected deliveries back to pending, re-route selected unroutable messages."""
    statuses = set(selection.statuses) | ({"delivered"} if selection.include_delivered else set())
    result = ReplayResult()
    deliveries_topic = topics.DELIVERIES.full_name(topic_prefix)
    async with store.transaction() as work:
        rows = await work.deliveries.replayable(
            ReplaySelection(
                statuses=sorted(statuses),
                message_id=selection.message_id,
                recipient=selection.partner,
                since=selection.since,
                until=selection.until,
                delivery_ids=list(selection.delivery_ids),
            )
        )
        opposed = await work.consent.opposed(d for r in rows for d in r.patient_digests)
        replayed: list[Replayable] = []
        resets: list[Reset] = []
        for row in rows:
            if row.discarded and not selection.names_deliveries():
                result.skipped.append(f"{row.id}: discarded by an operator")
                continue
            if row.status == "blocked" and opposed & set(row.patient_digests):
                result.skipped.append(f"{row.id}: patient opposition still on file")
                continue
            reset = Reset(row.id)
            if row.needs_render:
                rendered = await _render_again(work, directory, row)
                if isinstance(rendered, str):
                    result.skipped.append(f"{row.id}: {rendered}")
                    continue
                reset = rendered
            replayed.append(row)
            resets.append(reset)
        if replayed:
            await work.deliveries.reset(resets)
            await work.outbox.publish(
                [
                    OutboxRow(
                        deliveries_topic,
                        DeliveryRequest(
                            delivery_id=r.id,
                            message_id=r.message_id,
                            recipient=r.recipient,
                            lane=r.lane,
                        )
                        .model_dump_json()
                        .encode(),
                        r.lane.encode(),
                        r.partition,
                    )
                    for r in replayed
                ]
            )
            await work.audit.record(
                [
                    AuditEvent(
                        kind="replayed",
                        actor=actor,
                        message_id=r.message_id,
                        control_id=r.control_id or None,
                        recipient=r.recipient,
                        detail={
                            "delivery_id": str(r.id),
                            "previous_status": r.status,
                            **({"reason": selection.reason} if selection.reason else {}),
                        },
                    )
                    for r in replayed
                ]
            )
        result.deliveries = len(replayed)
        if selection.unroutable or selection.message_id is not None:
            result.rerouted = await _reroute(work, selection, actor, topic_prefix)
    return result


async def _render_again(work: Work, directory: Directory, row: Replayable) -> Reset | str:
    partner = directory.partner(row.recipient)
    if partner is None or partner.endpoint is None:
        return f"partner {row.recipient} is not in the directory or has no endpoint"
    found = await work.messages.envelopes([(row.message_id, row.message_received_at)])
    envelope = found.get(row.message_id)
    if envelope is None:
        return "the original message is no longer in the store (retention)"
    identity = envelope.identity
    try:
        rendered = render_for(
            envelope,
            partner,
            strip_ins=identity.ins_present and not identity.ins_qualified,
            sender=directory.partner(envelope.sender),
            validation_sample=directory.translation.validate_sample,
        )
    except RenderError as exc:
        return str(exc)
    return Reset(
        row.id,
        rendered.payload,
        rendered.content_type,
        list(rendered.flags),
        rendered.control_id,
    )


async def _reroute(work: Work, selection: Selection, actor: str, topic_prefix: str) -> int:
    keys = await work.messages.reroute(
        message_id=selection.message_id,
        sender=selection.partner if selection.message_id is None else None,
        since=selection.since,
        until=selection.until,
    )
    envelopes = await work.messages.envelopes(keys)
    found = [envelopes[k[0]] for k in keys if k[0] in envelopes]
    accepted_topic = topics.ACCEPTED.full_name(topic_prefix)
    await work.outbox.publish(
        [
            OutboxRow(accepted_topic, e.model_dump_json().encode(), e.ordering_key.encode())
            for e in found
        ]
    )
    await work.audit.record(
        [
            AuditEvent(
                kind="replayed",
                actor=actor,
                message_id=e.message_id,
                control_id=e.control_id,
                partner=e.sender,
                detail={
                    "previous_status": "unroutable",
                    "action": "route_again",
                    **({"reason": selection.reason} if selection.reason else {}),
                },
            )
            for e in found
        ]
    )
    return len(found)
