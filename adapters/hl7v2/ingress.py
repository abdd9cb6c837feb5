"""The HL7 v2 ingress pipeline: the bytes of one frame in, stored messages and the answer out.

For each message: decode by MSH-18 (or the partner's ``inbound_charset``),
read the header with the lazy ER7 reader, check MSH-9/10/11/12, identify the
sender from MSH-4 (and MSH-3 when the partner lists ``applications``; with
mutual TLS the client certificate must name the same partner; without it, a
partner that declares ``networks`` must send from one of them), build the
envelope routing reads, and store it through the group commit. The peer's
address (and certificate subject) is kept with every message, accepted or
refused, and in its ``received`` / ``rejected`` audit event. The ACK is
built before the commit (it is stored with the message, so a resend gets it
back) but *sent* only after the commit (design invariant 1).

Every refused input (malformed, undecodable, unknown or spoofed sender,
unsupported version, oversize, incomplete, a batch whose counts do not add
up, an INS breaking the rules of a sender whose identity policy is
``refuse``) is kept with its reason through ``MessageStore.reject`` and answered
AE/AR with an ERR naming segment and field (design invariant 2). When the
store cannot keep it, the answer is AR ("resend later") instead: nothing is
answered as handled that was not kept.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from opentelemetry.trace import Span

from adapters.hl7v2 import batch, charset
from adapters.hl7v2.ack import (
    AckError,
    Header,
    Outcome,
    build_ack,
    build_batch_ack,
    build_file_ack,
    code_for,
    is_due,
)
from adapters.hl7v2.checks import (
    Refusal,
    SenderCheck,
    check_header,
    check_identity,
    check_profile,
    identify,
)
from adapters.hl7v2.commit import GroupCommit
from adapters.hl7v2.er7 import Message, escape_controls
from adapters.hl7v2.extract import build_envelope
from adapters.hl7v2.framing import Frame
from adapters.hl7v2.mllp import Peer
from adapters.hl7v2.validate import check_strict
from broker import redact, telemetry
from broker.directory import Directory, Partner
from broker.envelope import Channel
from broker.errors import MessageError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from broker.store.messages import Accepted, AcceptResult, MessageStore, Rejected

log = logging.getLogger(__name__)

STORE_DOWN = AckError(207, "message store unavailable: resend later")
OVERLOADED = AckError(207, "too many large frames in progress at once: resend later")
# Refusals whose sender is not known, whatever MSH-4 claims: kept without one.
_UNKNOWN_SENDER = frozenset({"unknown_sender", "spoofed_sender", "unverified_sender"})
_HEADER_PEEK = 4096
# Under load, wait this long before a group commit so that the connections just
# answered can join it: fewer, larger commits (about 15% less CPU per message in
# `carebroker bench ingress`); never applied to a lone message, so it adds no
# latency when traffic is light.
COMMIT_LINGER_S = 0.001


@dataclass
class IngressStats:
    """Counters per partner id (``""`` for an unknown sender); ids only."""

    accepted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    store_unavailable: int = 0


@dataclass
class _Item:
    """One message on its way: what to store, and the answer to give once stored."""

    header: Header
    codec: str
    answer: bytes
    peer: Peer
    accepted: Accepted | None = None
    rejected: Rejected | None = None
    message: Message | None = None  # kept for a strict partner's validation only

    @property
    def partner(self) -> str:
        if self.accepted is not None:
            return self.accepted.envelope.sender
        return (self.rejected.sender if self.rejected else None) or ""


class Ingress:
    """Turn MLLP frames into stored messages and ACKs; never raise on input."""

    def __init__(
        self,
        store: MessageStore,
        directory: Directory,
        pseudonymizer: Pseudonymizer,
        *,
        batch_max: int = 500,
        commit_concurrency: int = 1,
        commit_linger_s: float = COMMIT_LINGER_S,
        channel: Channel = "mllp",
        actor: str = "mllp",
        senders: SenderCheck = "off",
        ins_production: bool = False,
    ) -> None:
        self.store = store
        self.ins_production = ins_production  # CAREBROKER_INS__PRODUCTION
        self.pseudonymizer = pseudonymizer
        self.channel: Channel = channel
        self.actor = actor
        self.senders: SenderCheck = senders
        self.stats = IngressStats()
        self._accepts: GroupCommit[Accepted, AcceptResult] = GroupCommit(
            store.accept,
            max_items=batch_max,
            concurrency=commit_concurrency,
            linger_s=commit_linger_s,
            name="accept",
        )
        self._rejects: GroupCommit[Rejected, None] = GroupCommit(
            self._store_rejected, max_items=batch_max, name="reject"
        )
        self.use_directory(directory)

    def use_directory(self, directory: Directory) -> None:
        """Swap in a reloaded partner directory (takes effect for the next message)."""
        self.directory = directory
        self._has_overrides = any(p.inbound_charset for p in directory.partners.values())

    def start(self) -> None:
        """Start the group commits."""
        self._accepts.start()
        self._rejects.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        await self._accepts.stop()
        await self._rejects.stop()

    async def handle(self, frame: Frame, peer: Peer) -> bytes | None:
        """Store one frame's content and return the answer to send (None: no answer due).

        Each frame is traced by an ``ingress mllp`` span, the root of the trace
        its messages follow through Kafka, the router and delivery: its context
        goes into each envelope (``Envelope.trace``).
        """
        with telemetry.ingress_span(self.channel) as span:
            return await self._handle(frame, peer, span)

    async def _handle(self, frame: Frame, peer: Peer, span: Span) -> bytes | None:
        try:
            if frame.oversize:
                return await self.refuse_frame(
                    frame.data,
                    peer,
                    AckError(207, f"frame of {frame.size} bytes exceeds the MLLP frame limit"),
                    outcome="reject",
                    kind="oversize",
                    size=frame.size,
                )
            if batch.is_batch(frame.data):
                return await self._handle_batch(frame.data, peer, span)
            item = self._prepare(frame.data, peer)
            await self._commit([item])
            if span.is_recording():
                span.set_attributes(_span_facts(item))
            return item.answer if is_due(item.header, _msa1(item)) and item.answer else None
        except Exception:  # a bug must cost one message an AR, never the listener
            log.exception("ingress failed on a frame", extra={"peer": peer.address})
            return await self.refuse_frame(
                frame.data,
                peer,
                AckError(207, "internal error: resend later"),
                outcome="reject",
                kind="internal_error",
            )

    async def refuse_frame(
        self,
        data: bytes,
        peer: Peer,
        error: AckError,
        *,
        outcome: Outcome,
        kind: str,
        size: int | None = None,
    ) -> bytes | None:
        """Keep a whole frame as refused and return its negative ACK (AR if it cannot be kept)."""
        header = Header.read(data[:_HEADER_PEEK].decode("latin-1"))
        refusal = Refusal(error, outcome, kind)
        item = self._refused(data, header, "latin-1", new_id_at(), peer, refusal, size=size)
        await self._commit([item])
        return item.answer

    async def overloaded(self, frame: Frame, peer: Peer) -> bytes | None:
        """Answer a frame the listener could not hold (frames in progress took the budget).

        AR, "resend later", as when the store is down: nothing is kept, so
        nothing is answered as handled; the listener counts it.
        """
        header = Header.read(frame.data[:_HEADER_PEEK].decode("latin-1"))
        return self._ack(header, "reject", new_id_at(), [OVERLOADED], "latin-1")

    async def incomplete(self, data: bytes, peer: Peer) -> None:
        """Keep the bytes of a frame the peer never finished (connection closed inside it)."""
        await self.refuse_frame(
            data,
            peer,
            AckError(100, "connection closed inside an MLLP frame"),
            outcome="error",
            kind="incomplete",
        )

    # --- one message ---------------------------------------------------------------

    def _prepare(self, data: bytes, peer: Peer, batch_id: str | None = None) -> _Item:
        """Read, check and identify one message; return what to store and answer (no I/O)."""
        ids = new_id_at()
        known = self._partner_of_bytes(data) if self._has_overrides else None
        try:
            text, codec = charset.decode(data, known.inbound_charset if known else None)
        except MessageError as exc:
            refusal = Refusal(AckError.of(exc), "error", "undecodable")
            header = Header.read(data[:_HEADER_PEEK].decode("latin-1"))
            return self._refused(data, header, "latin-1", ids, peer, refusal, batch_id=batch_id)
        text = text.removeprefix("\ufeff")
        try:
            message = Message(text)
        except MessageError as exc:
            location = "MSH-1" if exc.location in (None, "MSH") else exc.location
            refusal = Refusal(AckError(exc.code, str(exc), location), "error", "malformed")
            header = Header.read(text)
            return self._refused(data, header, codec, ids, peer, refusal, batch_id=batch_id)
        header = Header.of(message.msh)
        checked = check_header(message, header) or identify(
            self.directory, message, peer.certificate_cn, peer_host=peer.host, senders=self.senders
        )
        if isinstance(checked, Partner):
            checked = check_profile(message, checked)
        if isinstance(checked, Refusal):
            return self._refused(
                data, header, codec, ids, peer, checked, batch_id=batch_id, message=message
            )
        identity = check_identity(message, checked, production=self.ins_production)
        if isinstance(identity, Refusal):
            return self._refused(
                data, header, codec, ids, peer, identity, batch_id=batch_id, message=message
            )
        envelope = build_envelope(
            message,
            payload=data,
            codec=codec,
            sender=checked.id,
            channel=self.channel,
            message_id=ids[0],
            received_at=ids[1],
            pseudonymizer=self.pseudonymizer,
            batch_id=batch_id,
            ins_check=identity,
        )
        trace = telemetry.current_context() if telemetry.is_recording() else None
        if trace:  # the frame's span: the message's trace starts at its arrival
            envelope = envelope.model_copy(update={"trace": trace})
        answer = self._ack(header, "accept", ids, (), codec)
        return _Item(
            header,
            codec,
            answer,
            peer,
            accepted=Accepted(
                envelope,
                answer,
                self.actor,
                peer=peer.address if peer.host else None,
                peer_certificate=peer.certificate_subject,
            ),
            message=message if checked.strict else None,
        )

    def _refused(
        self,
        data: bytes,
        header: Header,
        codec: str,
        ids: tuple[uuid.UUID, datetime],
        peer: Peer,
        refusal: Refusal,
        *,
        batch_id: str | None = None,
        message: Message | None = None,
        size: int | None = None,
    ) -> _Item:
        """Return a refused item: its negative ACK, and the input to keep with the reason."""
        sender = refusal.sender
        if sender is None and refusal.kind not in _UNKNOWN_SENDER:
            known = (
                self.directory.by_facility(message.sending_facility)
                if message is not None
                else self._partner_of_bytes(data)
            )
            sender = known.id if known else None
        answer = (
            b"" if refusal.kind == "acknowledgement"  # never acknowledged
            else self._ack(header, refusal.outcome, ids, refusal.errors, codec)
        )  # fmt: skip
        detail: dict[str, object] = {
            "kind": refusal.kind,
            "code": refusal.error.code,
            "location": refusal.error.location,
            "peer": peer.address,
        }
        if peer.certificate_cn is not None:
            detail["certificate_cn"] = peer.certificate_cn
        if peer.certificate_subject is not None:
            detail["certificate_subject"] = peer.certificate_subject
        if size is not None:
            detail["size"] = size
        rejected = Rejected(
            message_id=ids[0],
            received_at=ids[1],
            channel=self.channel,
            format="hl7v2",
            payload=data,
            reason=f"{refusal.kind}: {refusal.error.text}",
            answer=answer or None,
            sender=sender,
            sending_application=message.sending_application if message else "",
            sending_facility=message.sending_facility if message else "",
            control_id=message.control_id if message else header.control_id[:64],
            message_type=message.message_type if message else "",
            version=message.version if message else "",
            batch_id=batch_id,
            detail=detail,
            actor=self.actor,
            size=size,
            peer=peer.address if peer.host else None,
            peer_certificate=peer.certificate_subject,
        )
        return _Item(header, codec, answer, peer, rejected=rejected)

    def _ack(
        self,
        header: Header,
        outcome: Outcome,
        ids: tuple[uuid.UUID, datetime],
        errors: tuple[AckError, ...] | list[AckError],
        codec: str,
    ) -> bytes:
        text = build_ack(
            header,
            code_for(header, outcome),
            control_id=_ack_control_id(ids[0]),
            now=ids[1],
            errors=errors,
        )
        return text.encode(codec, errors="replace")

    def _partner_of_bytes(self, data: bytes) -> Partner | None:
        """Return the partner MSH-4 names, read from raw bytes (before decoding)."""
        start = data.find(b"MSH", 0, 64)
        if start < 0 or len(data) < start + 4:
            return None
        separator = data[start + 3 : start + 4]
        line_end = len(data)
        for terminator in (b"\r", b"\n"):
            found = data.find(terminator, start, start + _HEADER_PEEK)
            if 0 <= found < line_end:
                line_end = found
        fields = data[start:line_end].split(separator, 4)
        if len(fields) < 4:
            return None
        component = fields[1][:1] or b"^"
        facility = fields[3].split(component, 1)[0]
        return self.directory.by_facility(facility.decode("utf-8", "replace"))

    # --- batches -------------------------------------------------------------------

    async def _handle_batch(self, data: bytes, peer: Peer, span: Span) -> bytes | None:
        try:
            parsed = batch.split(data)
        except MessageError as exc:
            return await self.refuse_frame(
                data, peer, AckError.of(exc), outcome="error", kind="malformed_batch"
            )
        frame_id, received_at = new_id_at()
        file_id = _text(batch.header_field(parsed.header, 11))
        groups: list[tuple[batch.Batch, list[_Item]]] = []
        for part in parsed.batches:
            batch_id = _text(batch.header_field(part.header, 11)) or file_id or str(frame_id)
            groups.append((part, [self._prepare(m, peer, batch_id) for m in part.messages]))
        await self._commit([item for _, items in groups for item in items])
        if span.is_recording():
            span.set_attribute("messaging.batch.message_count", sum(len(i) for _, i in groups))
        codec = next((i.codec for _, items in groups for i in items), "utf-8")
        answers = []
        for part, items in groups:
            acks = [
                i.answer.decode(i.codec, "replace")
                for i in items
                if i.answer and is_due(i.header, _msa1(i))
            ]
            if part.header is not None:
                header = Header.read(part.header.decode(codec, "replace"))
            elif items:
                # MSH-concatenated input: the first message stands for the batch.
                header = replace(items[0].header, control_id="")
            else:
                header = Header()
            answers.append(
                build_batch_ack(
                    acks, batch=header, control_id=_ack_control_id(frame_id), now=received_at
                )
            )
        if parsed.header is None and len(answers) == 1:
            text = answers[0]
        else:
            # Several batches answer as one file: batches side by side without
            # FHS/FTS around them are not a valid HL7 v2 batch file.
            text = build_file_ack(
                answers,
                file=Header.read(parsed.header.decode(codec, "replace"))
                if parsed.header is not None
                else Header(),
                control_id=_ack_control_id(frame_id),
                now=received_at,
            )
        return text.encode(codec, errors="replace")

    # --- storing ---------------------------------------------------------------------

    async def _commit(self, items: list[_Item]) -> None:
        """Validate strict partners' messages, then store everything; fix answers on failure."""
        for item in items:
            if item.message is not None and item.accepted is not None:  # a strict partner's
                text = "\r".join(segment.raw for segment in item.message.segments)
                error = await asyncio.to_thread(check_strict, text)
                if error is not None:
                    self._demote(item, error)
        accepted = [i for i in items if i.accepted is not None]
        rejected = [i for i in items if i.rejected is not None]
        if accepted and rejected:  # a batch with both: two group commits, side by side
            await asyncio.gather(self._store_accepted(accepted), self._store_refused(rejected))
        elif accepted:  # the hot path: no task to spawn
            await self._store_accepted(accepted)
        else:
            await self._store_refused(rejected)

    def _demote(self, item: _Item, error: AckError) -> None:
        """Turn an item that failed strict validation into a refusal (AE), kept as such."""
        assert item.accepted is not None
        envelope = item.accepted.envelope
        refused = self._refused(
            envelope.payload,
            item.header,
            item.codec,
            (envelope.message_id, envelope.received_at),
            item.peer,
            Refusal(error, "error", "invalid", envelope.sender),
            batch_id=envelope.batch_id,
            message=item.message,
        )
        item.answer, item.rejected, item.accepted = refused.answer, refused.rejected, None

    async def _store_accepted(self, items: list[_Item]) -> None:
        if not items:
            return
        try:
            results = await self._accepts.submit(
                [i.accepted for i in items if i.accepted is not None],
                sum(len(i.accepted.envelope.payload) for i in items if i.accepted is not None),
            )
        except Exception:  # whatever failed, nothing was stored: say "resend later"
            log.warning("message store unavailable: answering AR", exc_info=True)
            self.stats.store_unavailable += len(items)
            for item in items:
                self._store_down(item)
            return
        for item, result in zip(items, results, strict=True):
            partner = item.partner
            if result.duplicate:
                # A resend: the answer the first copy got, not a second message.
                item.answer = result.answer
                self.stats.duplicates[partner] += 1
                log.info(
                    "duplicate answered with the stored ACK",
                    extra={"message_id": str(result.message_id), "partner": partner},
                )
            else:
                self.stats.accepted[partner] += 1

    async def _store_refused(self, items: list[_Item]) -> None:
        if not items:
            return
        try:
            await self._rejects.submit(
                [i.rejected for i in items if i.rejected is not None],
                sum(min(len(i.rejected.payload), 1 << 20) for i in items if i.rejected),
            )
        except Exception:  # not kept, so not answered as handled
            log.warning("message store unavailable: refused input not kept", exc_info=True)
            self.stats.store_unavailable += len(items)
            for item in items:
                self._store_down(item)
            return
        for item in items:
            assert item.rejected is not None
            self.stats.rejected[item.partner] += 1
            log.info(
                "message refused",
                extra={
                    "message_id": str(item.rejected.message_id),
                    "partner": item.partner or "-",
                    "reason": item.rejected.detail.get("kind"),
                },
            )

    def _store_down(self, item: _Item) -> None:
        item.answer = self._ack(item.header, "reject", new_id_at(), [STORE_DOWN], item.codec)

    async def _store_rejected(self, items: list[Rejected]) -> list[None]:
        await self.store.reject(items)
        return [None] * len(items)


def _span_facts(item: _Item) -> dict[str, str | int]:
    """Return what the ingress span says about one message: ids, codes, outcome."""
    if item.accepted is not None:
        facts: dict[str, str | int] = dict(redact.span_attributes(item.accepted.envelope))
        facts["carebroker.outcome"] = "accepted"
        return facts
    rejected = item.rejected
    assert rejected is not None
    return {
        "messaging.message.id": str(rejected.message_id),
        "carebroker.sender": redact.label(rejected.sender),
        "carebroker.outcome": "rejected",
        "carebroker.reason": redact.label(rejected.detail.get("kind")),
    }


def _msa1(item: _Item) -> str:
    """Return the MSA-1 an item's answer carries (for the MSH-15 filter)."""
    answer = item.answer
    at = answer.find(b"\rMSA" + answer[3:4])
    return answer[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else "CR"


def _ack_control_id(message_id: uuid.UUID) -> str:
    """Return an ACK's own MSH-10: 20 characters (the v2.5 length) of a time-ordered id."""
    return message_id.hex[:20].upper()


def _text(raw: bytes) -> str:
    # An id kept in the store: control characters (NUL above all) written as \Xhh\.
    return escape_controls(raw.decode("utf-8", "replace").strip())[:64]
