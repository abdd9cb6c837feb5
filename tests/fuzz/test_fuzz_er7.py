"""Fuzz the ER7 reader as ingress uses it: any frame gets a well-formed answer, never a crash.

The target is the real ingress pipeline (:class:`adapters.hl7v2.ingress.Ingress`:
charset, the lazy ER7 reader, header checks, the sender check, the envelope,
batches, the ACK writer) over a store that keeps what it is given in memory,
so thousands of inputs run per minute. Properties, for any bytes:

- nothing reaches ingress's last-resort handler (``internal_error``: a bug);
- every answer is an HL7 v2 acknowledgement that python-hl7 and carebroker's
  own reader both read, with MSA-1 one of AA/AE/AR/CA/CE/CR;
- whatever is refused is kept (one record per message, with its reason);
- the reader's own accessors never raise anything but MessageError.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import hl7
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.hl7v2 import batch
from adapters.hl7v2.ack import Header
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.framing import Frame
from adapters.hl7v2.ingress import Ingress
from adapters.hl7v2.mllp import Peer
from broker.directory import parse_directory
from broker.errors import MessageError
from broker.pseudonym import Pseudonymizer
from broker.store.messages import Accepted, AcceptResult, Rejected
from tests.fuzz.conftest import corpus, public_seeds


def _partner(partner_id: str, facility: str, **more: object) -> dict[str, object]:
    return {"id": partner_id, "name": partner_id, "kind": "lab", "facilities": [facility], **more}


DIRECTORY = parse_directory(  # a sender of each kind the checks tell apart
    {
        "partners": [
            _partner("labo-sud", "LABO-SUD"),
            _partner("ghh", "GHH LAB"),
            _partner("net", "A", networks=["10.0.0.0/8"]),
            _partner("old", "X", inbound_charset="cp1252"),
            _partner("picky", "P", applications=["LIS"]),
        ]
    }
)
ANSWER_CODES = {"AA", "AE", "AR", "CA", "CE", "CR"}
SEEDS = [p.read_bytes() for p in corpus("er7")] + public_seeds()


class KeptInMemory:
    """The two calls ingress makes on the message store, kept in lists."""

    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.rejected: list[Rejected] = []

    async def accept(self, items: list[Accepted]) -> list[AcceptResult]:
        self.accepted += items
        return [AcceptResult(i.envelope.message_id, False, i.answer) for i in items]

    async def reject(self, items: list[Rejected]) -> None:
        self.rejected += items


def through_ingress(data: bytes) -> tuple[bytes | None, KeptInMemory]:
    """Hand one frame's bytes to a fresh ingress; return its answer and what it kept."""
    kept = KeptInMemory()

    async def run() -> bytes | None:
        ingress = Ingress(kept, DIRECTORY, Pseudonymizer(b"z" * 32), senders="declared")  # type: ignore[arg-type]
        ingress.start()
        try:
            return await ingress.handle(Frame(data, len(data)), Peer("127.0.0.1", 40000))
        finally:
            await ingress.stop()

    return asyncio.run(run()), kept


def check(data: bytes) -> None:
    answer, kept = through_ingress(data)
    reasons = [r.reason for r in kept.rejected]
    assert not any(r.startswith("internal_error") for r in reasons), "ingress crashed on a frame"
    empty_batch = batch.is_batch(data) and not _messages_in(data)  # "nothing to send"
    assert kept.accepted or kept.rejected or empty_batch, "a frame left no trace"
    if answer:
        try:  # in the message's own character set: UTF-8 unless it said otherwise
            text = answer.decode("utf-8")
        except UnicodeDecodeError:
            text = answer.decode("latin-1")
        hl7.parse_hl7(text)  # a message, a batch or a file
        acks = [s for s in text.replace("\n", "\r").split("\r") if s.startswith("MSA")]
        # A batch whose messages asked for no ACK (MSH-15 NE) is answered by an empty one.
        assert acks or text.startswith(("BHS", "FHS")), "an answer without MSA"
        for segment in acks:
            assert segment[4:].split(segment[3])[0] in ANSWER_CODES  # MSA-1
        if text.startswith("MSH"):
            assert Message(text).control_id  # carebroker reads its own answer
    read_every_field(data.decode("latin-1"))


def _messages_in(data: bytes) -> list[bytes]:
    try:
        return batch.split(data).messages
    except MessageError:
        return [data]  # refused whole: kept as one


def read_every_field(text: str) -> None:
    """Touch what the lazy reader offers; only MessageError may come out."""
    Header.read(text)  # never raises, by contract
    try:
        message = Message(text)
    except MessageError:
        return
    for segment in message.segments[:20]:
        for n in range(1, min(len(segment.fields), 30) + 1):
            segment.get(n, 1, 1, 1)
            segment.repetitions(n)
            segment.components(n)
            segment.is_null(n)
    for name in ("message_type", "control_id", "version", "charset", "structure"):
        getattr(message, name)
    Header.of(message.msh)


@pytest.mark.parametrize("path", corpus("er7"), ids=lambda p: p.name)
def test_every_corpus_input_is_answered(path: Path) -> None:
    check(path.read_bytes())


edits = st.lists(
    st.tuples(
        st.integers(0, 5_000),
        st.integers(0, 8),
        st.binary(max_size=6)
        | st.sampled_from(
            [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"MSH|", b"BHS|", b"BTS|", b"FHS|",
             b"FTS|", b'""', b"\\X", b"\\E\\", b"\xc3", b"\xff", b"\x00", b"UNICODE UTF-8",
             b"8859/1", b"2.3", b"2.5.1", b"ACK", b"AL", b"NE"]
        ),
    ),
    min_size=1,
    max_size=10,
)  # fmt: skip


def mutate(seed: bytes, changes: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for position, delete, insert in changes:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    return bytes(data)


@given(seed=st.sampled_from(SEEDS), changes=edits)
@example(seed=b"MSH|^~\\&|A|LABO-SUD", changes=[(0, 0, b"")])
def test_mutated_messages_are_answered(seed: bytes, changes: list[tuple[int, int, bytes]]) -> None:
    check(mutate(seed, changes))


@given(data=st.binary(max_size=600).map(lambda b: b"MSH" + b))
def test_any_bytes_after_msh_are_answered(data: bytes) -> None:
    check(data)


@given(
    fields=st.lists(st.text(max_size=12), min_size=1, max_size=25),
    delimiters=st.permutations("|^~\\&#"),
)
def test_any_text_under_any_delimiters_is_answered(
    fields: list[str], delimiters: list[str]
) -> None:
    field, component, repetition, escape, sub, _ = delimiters
    header = f"MSH{field}{component}{repetition}{escape}{sub}"
    check((header + field + field.join(fields)).encode("utf-8"))


def test_the_harness_sees_a_crash() -> None:
    """Guard the guard: a reader that raises is reported, not hidden by the last resort."""
    original = Message.__init__

    def broken(self: Message, text: str) -> None:
        raise RuntimeError("bug")

    Message.__init__ = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(AssertionError, match="ingress crashed"):
            check(SEEDS[0])
    finally:
        Message.__init__ = original  # type: ignore[method-assign]
