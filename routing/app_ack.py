"""Enhanced-mode application ACKs: tell a sender what became of its message, once it is known.

HL7 v2.5.1 §2.9.3 (domain-requirements §1.2): in enhanced mode the sender
gets a commit ACK (CA/CE/CR) from the MLLP ingress as soon as the message is
stored, then an *application* ACK (AA/AE/AR) when the receiving application
has processed it. For carebroker, "processed" means routed and delivered. The
application ACK is owed only when the sender asked for one: MSH-16 ``AL``
(always), ``ER`` (only AE/AR) or ``SU`` (only AA). ``NE``, an empty MSH-16
(original mode, or enhanced with commit ACKs only) and FHIR input get none.

When, and which code (MSA-1), with an ERR per problem:

============================================  ====  ==========================================
outcome                                       MSA   ERR
============================================  ====  ==========================================
unroutable: no recipient resolved             AE    204 at the first field that named nobody
                                                    (OBR-16 ...), else 200 at MSH-9
refused: INS not valid and qualified and     AE    per INS rule (adapters/hl7v2/ins.py):
  the sender's policy is ``refuse``                 101/102/103 at PID-3 or PID-32
every delivery final, all delivered (or       AA
  blocked by a patient's opposition: nothing
  for the sender to correct)
a recipient refused it (AE/CE, HTTP 4xx) or   AE    the recipient's ERR codes and locations,
  it could not be rendered for one                  else 207, naming the recipient
a delivery dead-lettered after its retry      AR    207 naming the recipient and the limit
  limits (recipient unreachable), none
  refused
============================================  ====  ==========================================

"Final" is delivered, failed, dead or blocked: the ACK waits while any
delivery is pending (retrying, or in a mailbox not yet acknowledged). Later
events do not change it: a dead letter replayed by an operator after the ACK
is not acknowledged again. An AR means "not delivered, not because of the
content"; carebroker keeps the message and ``carebroker replay`` re-delivers
it, while a resend of the same MSH-10 gets the original commit ACK back.

The ACK is built by ``adapters/hl7v2/ack.py`` from the message's MSH (kept in
``app_acks.header``): MSH-3/4 and MSH-5/6 swapped, MSA-2 = the message's
MSH-10, its own MSH-10, MSH-15/16 empty. It travels as a delivery of kind
``app_ack`` to the sender's own endpoint (MLLP, or its mailbox), in the
sender's lane for that patient: retried, ordered and audited like any
delivery, ``app_ack_sent`` once written. Acknowledgements are never
acknowledged: the MLLP transport writes it and expects no answer, and no ACK
is owed for an ACK. A sender without such an endpoint gets none, and the
trail says so (``app_ack_sent`` with ``sent: false`` and the reason).

Deciding is serialised per message by locking its ``app_acks`` row, so two
delivery instances finishing a message's last two deliveries at once cannot
both miss (or both send) its ACK. The delivery role's sweep decides any ACK
still waiting after its deliveries all ended some other way (an operator's
consent change blocks pending deliveries without deciding).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from adapters.hl7v2.ack import AckError, Header, build_ack, read_answer
from adapters.hl7v2.er7 import Message, split_segments
from broker.directory import Directory, MailboxEndpoint, MllpEndpoint
from broker.envelope import DeliveryRequest, Envelope
from broker.errors import MessageError
from broker.events import AuditEvent
from broker.ids import new_id
from broker.store.outbox import OutboxRow
from broker.store.work import FinalDelivery, NewDelivery, OwedAck, Work
from routing.lanes import lane_of, partition_of
from routing.render import V2_CONTENT_TYPE
from routing.rules import Decision

CONDITIONS: Final = frozenset({"AL", "ER", "SU"})  # HL7 table 0155, as MSH-16
FINAL: Final = frozenset({"delivered", "failed", "dead", "blocked"})
KIND: Final = "app_ack"
_FIELD = re.compile(r"^[A-Z][A-Z0-9]{2}-\d+")
_TEXT_MAX = 200


@dataclass(frozen=True)
class Lanes:
    """Where ACK deliveries are announced: the deliveries topic and its partitions."""

    topic: str
    partitions: int


@dataclass(frozen=True)
class Verdict:
    """The application ACK a message deserves: MSA-1 and the errors it reports."""

    code: str
    errors: tuple[AckError, ...] = ()

    @property
    def reason(self) -> str:
        """Return the errors as operators read them (codes, locations, partner ids)."""
        return "; ".join(
            f"{e.code}" + (f" at {e.location}" if e.location else "") + f": {e.text}"
            for e in self.errors
        )


def condition_of(envelope: Envelope) -> str | None:
    """Return MSH-16 when the sender asked for application ACKs (AL, ER, SU), else None."""
    if envelope.format != "hl7v2":
        return None
    condition = envelope.application_ack_type.strip().upper()
    return condition if condition in CONDITIONS else None


def is_due(condition: str, code: str) -> bool:
    """Tell whether MSH-16 asks for an application ACK with MSA-1 ``code`` (table 0155)."""
    return condition == "AL" or (condition == "SU") == (code == "AA")


def for_undelivered(decision: Decision) -> Verdict:
    """Return the ACK of a message nobody receives: refused by identity policy, or unroutable."""
    if decision.refused:
        text = _short(decision.refused)
        located = decision.refused_errors or ((103, "PID-32"),)
        return Verdict("AE", tuple(AckError(code, text, field) for code, field in located))
    skipped = decision.skipped[0] if decision.skipped else None
    if skipped is None:
        return Verdict("AE", (AckError(200, _short(decision.reason()), "MSH-9"),))
    location = _FIELD.match(skipped.field)
    return Verdict(
        "AE",
        (
            AckError(
                204,
                _short(decision.reason()),
                location.group(0) if location else skipped.field.split("(")[0],
            ),
        ),
    )


def for_deliveries(rows: Iterable[FinalDelivery]) -> Verdict:
    """Return the ACK of a message from its final deliveries (recipient, status, error, ACK)."""
    refused: list[AckError] = []
    unreachable: list[AckError] = []
    for row in rows:
        recipient, status = row.recipient, row.status
        why = _short(f"not delivered to {recipient}: {row.last_error or status}")
        if status == "failed":
            # The recipient's own ERR codes and locations say what to correct.
            codes = _partner_errors(row.response, row.ack_code)
            refused += [
                AckError(e.code or 207, f"not accepted by {recipient}", e.location) for e in codes
            ] or [AckError(207, why)]
        elif status == "dead":
            unreachable.append(AckError(207, why))
    if refused:
        return Verdict("AE", tuple(refused + unreachable))
    if unreachable:
        return Verdict("AR", tuple(unreachable))
    return Verdict("AA")


def _partner_errors(response: bytes | None, ack_code: str | None) -> list[AckError]:
    """Return the ERR codes and locations of a recipient's AE/CE (none for HTTP answers)."""
    if not response or ack_code not in ("AE", "CE"):
        return []
    try:
        return list(read_answer(Message(response.decode("utf-8", "replace"))).errors)
    except MessageError:
        return []


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_MAX else text[: _TEXT_MAX - 3] + "..."


def header_of(envelope: Envelope) -> str:
    """Return the message's MSH segment (what the ACK copies), decoded."""
    head = envelope.payload[:65536].decode(envelope.charset, "replace")
    segments = split_segments(head)
    return segments[0] if segments else ""


# --- deciding, in the caller's unit of work ----------------------------------------------


async def expect(
    work: Work,
    envelopes: Sequence[Envelope],
    traces: Mapping[uuid.UUID, Mapping[str, str] | None],
) -> list[uuid.UUID]:
    """Note the application ACKs owed for routed messages; return their message ids."""
    owed = [
        OwedAck(
            message_id=e.message_id,
            message_received_at=e.received_at,
            sender=e.sender,
            condition=c,
            header=header_of(e),
            codec=e.charset,
            ordering_key=e.ordering_key,
            trace=dict(trace) if (trace := traces.get(e.message_id)) is not None else None,
        )
        for e in envelopes
        if (c := condition_of(e)) is not None
    ]
    await work.acks.expect(owed)
    return [o.message_id for o in owed]


async def settle(
    work: Work,
    message_ids: Iterable[uuid.UUID],
    directory: Directory,
    lanes: Lanes,
    *,
    actor: str,
) -> list[AuditEvent]:
    """Decide the ACKs of these messages whose deliveries are all final; queue or record them.

    Call it in the unit of work that made a delivery final. Returns the audit
    events to record with it (an ACK that could not be sent).
    """
    ids = sorted(set(message_ids))
    if not ids:
        return []
    waiting = await work.acks.lock_waiting(ids)
    if not waiting:
        return []
    by_message: dict[uuid.UUID, list[FinalDelivery]] = {}
    for row in await work.deliveries.final_states([w.message_id for w in waiting]):
        by_message.setdefault(row.message_id, []).append(row)
    produced: list[AuditEvent] = []
    for owed in waiting:
        deliveries = by_message.get(owed.message_id, [])
        if not deliveries or any(d.status not in FINAL for d in deliveries):
            continue
        produced += await _send(work, owed, for_deliveries(deliveries), directory, lanes, actor)
    return produced


async def send_now(
    work: Work,
    envelope: Envelope,
    verdict: Verdict,
    directory: Directory,
    lanes: Lanes,
    *,
    actor: str,
    trace: dict[str, str] | None = None,
) -> list[AuditEvent]:
    """Queue the ACK of a message decided at once (unroutable, refused), if MSH-16 asks."""
    if condition_of(envelope) is None:
        return []
    [message_id] = await expect(work, [envelope], {envelope.message_id: trace})
    owed = await work.acks.lock_waiting([message_id])
    if not owed:  # decided before (a redelivered record)
        return []
    return await _send(work, owed[0], verdict, directory, lanes, actor)


async def _send(
    work: Work,
    owed: OwedAck,
    verdict: Verdict,
    directory: Directory,
    lanes: Lanes,
    actor: str,
) -> list[AuditEvent]:
    """Queue the ACK as a delivery to the sender, or record why it is not sent."""
    message_id, sender = owed.message_id, owed.sender
    if not is_due(owed.condition, verdict.code):
        await work.acks.decide(message_id, "not_due", verdict.code, verdict.reason or None)
        return []
    partner = directory.partner(sender)
    endpoint = partner.endpoint if partner is not None else None
    if partner is None or not isinstance(endpoint, MllpEndpoint | MailboxEndpoint):
        why = (
            f"sender {sender} has no endpoint"
            if endpoint is None
            else f"sender {sender} has a {endpoint.type} endpoint, where no HL7 v2 ACK can go"
        )
        await work.acks.decide(message_id, "unsendable", verdict.code, why)
        return [_not_sent(owed, verdict, why, actor)]
    now = datetime.now(UTC)
    delivery_id = new_id()
    ack_control_id = delivery_id.hex[:20].upper()
    header = Header.read(owed.header)
    text = build_ack(
        header, verdict.code, control_id=ack_control_id, now=now, errors=verdict.errors
    )
    lane = lane_of(partner, owed.ordering_key)
    partition = partition_of(lane, lanes.partitions)
    inserted = await work.deliveries.add(
        [
            NewDelivery(
                id=delivery_id,
                message_id=message_id,
                message_received_at=owed.message_received_at,
                recipient=sender,
                lane=lane,
                partition=partition,
                payload=text.encode(owed.codec, errors="replace"),
                content_type=f"{V2_CONTENT_TYPE}; charset={owed.codec}",
                control_id=header.control_id,
                rules=["app-ack"],
                reasons=[{"rule": "app-ack", "field": "MSH-16", "value": owed.condition}],
                trace=owed.trace,
                kind=KIND,
            )
        ]
    )
    await work.acks.decide(message_id, "queued", verdict.code, verdict.reason or None)
    if not inserted:
        return []
    await work.outbox.publish(
        [
            OutboxRow(
                lanes.topic,
                DeliveryRequest(
                    delivery_id=delivery_id,
                    message_id=message_id,
                    recipient=sender,
                    lane=lane,
                    trace=owed.trace or {},
                )
                .model_dump_json()
                .encode(),
                lane.encode(),
                partition,
                headers=owed.trace,
            )
        ]
    )
    return []


def _not_sent(owed: OwedAck, verdict: Verdict, why: str, actor: str) -> AuditEvent:
    """Return the audit event of an application ACK owed but with nowhere to go."""
    return AuditEvent(
        kind="app_ack_sent",
        actor=actor,
        outcome="minor_failure",
        message_id=owed.message_id,
        control_id=Header.read(owed.header).control_id or None,
        partner=owed.sender,
        recipient=owed.sender,
        detail={"sent": False, "acknowledgement": verdict.code, "reason": why},
    )
