"""The HL7 v2 ingress pipeline: the bytes of one frame in, stored messages and the answer out.

For each message: decode by MSH-18 (or the partner's ``inbound_charset``),
read the header with the lazy ER7 reader, check MSH-9/10/11/12, identify the
sender from MSH-4 (and MSH-3 when the partner lists ``applications``; with
mutual TLS the client certificate must name the same partner), build the
envelope routing reads, and store it through the group commit. The ACK is
built before the commit (it is stored with the message, so a resend gets it
back) but *sent* only after the commit (design invariant 1).

Every refused input (malformed, undecodable, unknown or spoofed sender,
unsupported version, oversize, incomplete, a batch whose counts do not add
up) is kept with its reason through ``MessageStore.reject`` and answered
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

from adapters.hl7v2 import batch, charset
from adapters.hl7v2.ack import (
    TABLE_0155,
    AckError,
    Header,
    Outcome,
    build_ack,
    build_batch_ack,
    build_file_ack,
    code_for,
    is_due,
    version_of,
)
from adapters.hl7v2.commit import GroupCommit
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from adapters.hl7v2.framing import Frame
from adapters.hl7v2.mllp import Peer
from adapters.hl7v2.validate import check_strict
from broker.envelope import Channel
from broker.errors import MessageError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from broker.store.messages import Accepted, AcceptResult, MessageStore, Rejected
from routing.directory import Directory, Partner

log = logging.getLogger(__name__)

PROCESSING_IDS = frozenset({"P", "T", "D"})  # table 0103
STORE_DOWN = AckError(207, "message store unavailable: resend later")
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
    accepted: Accepted | None = None
    rejected: Rejected | None = None
    text: str | None = None  # kept for strict validation only
    strict: bool = False

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
    ) -> None:
        self.store = store
        self.pseudonymizer = pseudonymizer
        self.channel: Channel = channel
        self.actor = actor
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
        """Store one frame's content and return the answer to send (None: no answer due)."""
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
                return await self._handle_batch(frame.data, peer)
            item = self._prepare(frame.data, peer)
            await self._commit([item])
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
        message_id, received_at = new_id_at()
        header = Header.read(data[:_HEADER_PEEK].decode("latin-1"))
        sender = self._partner_of_bytes(data)
        answer = self._ack(header, outcome, message_id, received_at, [error], "latin-1")
        rejected = Rejected(
            message_id=message_id,
            received_at=received_at,
            channel=self.channel,
            format="hl7v2",
            payload=data,
            reason=f"{kind}: {error.text}",
            answer=answer,
            sender=sender.id if sender else None,
            control_id=header.control_id[:64],
            detail=self._detail(kind, error, peer, size),
            actor=self.actor,
            size=size,
        )
        item = _Item(header, "latin-1", answer, rejected=rejected)
        await self._commit([item])
        return item.answer

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
        message_id, received_at = new_id_at()
        known = self._partner_of_bytes(data) if self._has_overrides else None
        try:
            text, codec = charset.decode(data, known.inbound_charset if known else None)
        except MessageError as exc:
            header = Header.read(data[:_HEADER_PEEK].decode("latin-1"))
            return self._refused(
                data, header, "latin-1", message_id, received_at, peer, batch_id,
                AckError.of(exc), "error", "undecodable",
            )  # fmt: skip
        text = text.removeprefix("\ufeff")
        try:
            message = Message(text)
        except MessageError as exc:
            location = "MSH-1" if exc.location in (None, "MSH") else exc.location
            return self._refused(
                data, Header.read(text), codec, message_id, received_at, peer, batch_id,
                AckError(exc.code, str(exc), location), "error", "malformed",
            )  # fmt: skip
        header = Header.of(message.msh)
        problem = _check_header(message, header)
        if problem is not None:
            outcome, error, kind = problem
            return self._refused(
                data, header, codec, message_id, received_at, peer, batch_id, error, outcome, kind,
                message=message,
            )  # fmt: skip
        partner, refusal = self._identify(message, peer)
        if refusal is not None or partner is None:
            error, kind, claimed = refusal or (AckError(207, "no partner"), "unknown_sender", None)
            return self._refused(
                data, header, codec, message_id, received_at, peer, batch_id, error, "reject",
                kind, message=message, sender=claimed,
            )  # fmt: skip
        envelope = build_envelope(
            message,
            payload=data,
            codec=codec,
            sender=partner.id,
            channel=self.channel,
            message_id=message_id,
            received_at=received_at,
            pseudonymizer=self.pseudonymizer,
            batch_id=batch_id,
        )
        answer = self._ack(header, "accept", message_id, received_at, (), codec)
        return _Item(
            header,
            codec,
            answer,
            accepted=Accepted(envelope, answer, self.actor),
            text=text if partner.strict else None,
            strict=partner.strict,
        )

    def _identify(
        self, message: Message, peer: Peer
    ) -> tuple[Partner | None, tuple[AckError, str, str | None] | None]:
        """Return the sending partner, or why the sender is refused (and whom it claimed)."""
        partner = self.directory.by_facility(message.sending_facility)
        if peer.certificate_cn is not None:
            owner = self.directory.by_certificate(peer.certificate_cn)
            if owner is None:
                return None, (
                    AckError(103, "client certificate names no partner", "MSH-4"),
                    "unknown_certificate",
                    partner.id if partner else None,
                )
            if partner is None or partner.id != owner.id:
                # Sent over partner A's certificate, claiming to be someone else.
                return None, (
                    AckError(
                        103, f"MSH-4 does not name {owner.id}, the certificate's partner", "MSH-4"
                    ),
                    "spoofed_sender",
                    owner.id,
                )
        if partner is None:
            return None, (
                AckError(103, "MSH-4 sending facility is not a known partner", "MSH-4"),
                "unknown_sender",
                None,
            )
        if partner.applications:
            wanted = {a.casefold() for a in partner.applications}
            if message.sending_application.casefold() not in wanted:
                return None, (
                    AckError(103, f"MSH-3 is not an application of {partner.id}", "MSH-3"),
                    "unknown_application",
                    partner.id,
                )
        return partner, None

    def _refused(
        self,
        data: bytes,
        header: Header,
        codec: str,
        message_id: uuid.UUID,
        received_at: datetime,
        peer: Peer,
        batch_id: str | None,
        error: AckError,
        outcome: Outcome,
        kind: str,
        *,
        message: Message | None = None,
        sender: str | None = None,
    ) -> _Item:
        if sender is None:
            known = (
                self.directory.by_facility(message.sending_facility)
                if message is not None
                else self._partner_of_bytes(data)
            )
            sender = known.id if known else None
        answer = (
            b"" if kind == "acknowledgement"
            else self._ack(header, outcome, message_id, received_at, [error], codec)
        )  # fmt: skip
        rejected = Rejected(
            message_id=message_id,
            received_at=received_at,
            channel=self.channel,
            format="hl7v2",
            payload=data,
            reason=f"{kind}: {error.text}",
            answer=answer or None,
            sender=sender,
            sending_application=message.sending_application if message else "",
            sending_facility=message.sending_facility if message else "",
            control_id=message.control_id if message else "",
            message_type=message.message_type if message else "",
            version=message.version if message else "",
            batch_id=batch_id,
            detail=self._detail(kind, error, peer),
            actor=self.actor,
        )
        return _Item(header, codec, answer, rejected=rejected)

    def _ack(
        self,
        header: Header,
        outcome: Outcome,
        message_id: uuid.UUID,
        at: datetime,
        errors: tuple[AckError, ...] | list[AckError],
        codec: str,
    ) -> bytes:
        text = build_ack(
            header,
            code_for(header, outcome),
            control_id=_ack_control_id(message_id),
            now=at,
            errors=errors,
        )
        return text.encode(codec, errors="replace")

    @staticmethod
    def _detail(
        kind: str, error: AckError, peer: Peer, size: int | None = None
    ) -> dict[str, object]:
        detail: dict[str, object] = {
            "kind": kind,
            "code": error.code,
            "location": error.location,
            "peer": peer.address,
        }
        if peer.certificate_cn is not None:
            detail["certificate_cn"] = peer.certificate_cn
        if size is not None:
            detail["size"] = size
        return detail

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

    async def _handle_batch(self, data: bytes, peer: Peer) -> bytes | None:
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
        if parsed.header is None:
            text = "".join(answers)
        else:
            text = build_file_ack(
                answers,
                file=Header.read(parsed.header.decode(codec, "replace")),
                control_id=_ack_control_id(frame_id),
                now=received_at,
            )
        return text.encode(codec, errors="replace")

    # --- storing ---------------------------------------------------------------------

    async def _commit(self, items: list[_Item]) -> None:
        """Validate strict partners' messages, then store everything; fix answers on failure."""
        for item in items:
            if item.strict and item.text is not None and item.accepted is not None:
                error = await asyncio.to_thread(check_strict, item.text)
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
        """Turn an item that failed strict validation into a refusal (AE)."""
        assert item.accepted is not None
        envelope = item.accepted.envelope
        item.answer = self._ack(
            item.header, "error", envelope.message_id, envelope.received_at, [error], item.codec
        )
        item.rejected = Rejected(
            message_id=envelope.message_id,
            received_at=envelope.received_at,
            channel=self.channel,
            format="hl7v2",
            payload=envelope.payload,
            reason=f"invalid: {error.text}",
            answer=item.answer,
            sender=envelope.sender,
            sending_application=envelope.sending_application,
            sending_facility=envelope.sending_facility,
            control_id=envelope.control_id,
            message_type=envelope.message_type,
            version=envelope.version,
            batch_id=envelope.batch_id,
            detail={"kind": "invalid", "code": error.code, "location": error.location},
            actor=self.actor,
        )
        item.accepted = None

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
        message_id, at = new_id_at()
        item.answer = self._ack(item.header, "reject", message_id, at, [STORE_DOWN], item.codec)

    async def _store_rejected(self, items: list[Rejected]) -> list[None]:
        await self.store.reject(items)
        return [None] * len(items)


def _check_header(message: Message, header: Header) -> tuple[Outcome, AckError, str] | None:
    """Check MSH-9..12 (HL7 v2.5.1 §2.15.9); return the outcome, error and reason when wrong."""
    msh = message.msh
    if not msh.get(9, comp=1):
        return "error", AckError(101, "MSH-9 message type missing", "MSH-9"), "malformed"
    if msh.get(9, comp=1).upper() == "ACK":
        # Acknowledgements are never acknowledged, or two engines answer each other forever.
        return (
            "reject",
            AckError(200, "acknowledgement sent to ingress", "MSH-9"),
            "acknowledgement",
        )
    if not msh.get(9, comp=2):
        return "error", AckError(101, "MSH-9 trigger event missing", "MSH-9.2"), "malformed"
    for n, value in ((15, header.accept_ack_type), (16, header.application_ack_type)):
        if value and value.upper() not in TABLE_0155:
            return (
                "error",
                AckError(103, f"MSH-{n} not a table 0155 value", f"MSH-{n}"),
                "malformed",
            )
    if not message.control_id:
        return "error", AckError(101, "MSH-10 message control id missing", "MSH-10"), "malformed"
    processing = message.processing_id
    if not processing:
        return "error", AckError(101, "MSH-11 processing id missing", "MSH-11"), "malformed"
    if processing.upper() not in PROCESSING_IDS:
        return (
            "reject",
            AckError(202, "MSH-11 processing id not P, T or D", "MSH-11"),
            "unsupported",
        )
    if not message.version:
        return "error", AckError(101, "MSH-12 version id missing", "MSH-12"), "malformed"
    version = version_of(header.version, header.enc)
    if version is None or version[0] != 2:
        return "reject", AckError(203, "MSH-12 version not HL7 v2.x", "MSH-12"), "unsupported"
    return None


def _msa1(item: _Item) -> str:
    """Return the MSA-1 an item's answer carries (for the MSH-15 filter)."""
    answer = item.answer
    at = answer.find(b"\rMSA" + answer[3:4])
    return answer[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else "CR"


def _ack_control_id(message_id: uuid.UUID) -> str:
    """Return an ACK's own MSH-10: 20 characters (the v2.5 length) of a time-ordered id."""
    return message_id.hex[:20].upper()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()[:64]
