"""Split HL7 v2 batches and files into messages (HL7 v2.5.1 §2.10.3).

The structure is ``[FHS] { [BHS] { MSH ... } [BTS] } [FTS]``. Many senders
skip the envelope and simply concatenate messages (one MSH after another);
both are accepted (domain-requirements §1.5).

Splitting works on the original bytes, at segment boundaries: every
delimiter and segment name is ASCII in each character set HL7 v2 allows, so
each message keeps exactly the bytes it was sent with (and is stored so).

What is checked, because a mismatch means something was lost on the way:
BTS-1 (messages in the batch) and FTS-1 (batches in the file) when given;
FHS with FTS, BHS with BTS; no segment outside a message. A batch without
BHS but closed by BTS is accepted (python-hl7 accepts it too): the BTS count
is still checked. Zero messages is a valid batch ("nothing to send").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from broker.errors import MessageError

_SEGMENT: Final = re.compile(rb"[^\r\n]+")
_BOM: Final = b"\xef\xbb\xbf"
_STRUCTURE: Final = frozenset({b"FHS", b"BHS", b"BTS", b"FTS", b"MSH"})


@dataclass
class Batch:
    """One BHS..BTS group (``header`` None for messages outside an explicit BHS)."""

    header: bytes | None = None
    messages: list[bytes] = field(default_factory=list)
    trailer: bytes | None = None


@dataclass
class File:
    """A whole frame's batches, with the FHS/FTS when there are any."""

    header: bytes | None = None
    batches: list[Batch] = field(default_factory=list)
    trailer: bytes | None = None

    @property
    def messages(self) -> list[bytes]:
        """Return every message, in order."""
        return [m for b in self.batches for m in b.messages]


def is_batch(data: bytes) -> bool:
    """Tell whether a frame holds a batch: FHS/BHS first, or more than one MSH."""
    head = data[:16].removeprefix(_BOM).lstrip(b"\r\n\t ")
    if head[:3] in (b"FHS", b"BHS"):
        return True
    starts = data.count(b"\rMSH") + data.count(b"\nMSH")
    return starts + (head[:3] == b"MSH") > 1


def split(data: bytes) -> File:
    """Split a batch or file into messages; raise MessageError naming what is wrong."""
    out = File()
    batch: Batch | None = None  # the open batch
    message_start: int | None = None
    closed = False  # FTS seen

    def end_message(at: int) -> None:
        nonlocal message_start
        if message_start is not None:
            assert batch is not None
            batch.messages.append(data[message_start:at])
            message_start = None

    for match in _SEGMENT.finditer(data, len(_BOM) if data.startswith(_BOM) else 0):
        segment = match.group()
        name = segment[:3]
        if not segment.strip():
            continue
        if closed:
            raise MessageError("segment after FTS ends the file", location="FTS-1", code=100)
        if name not in _STRUCTURE:
            if message_start is None:
                raise MessageError(
                    f"{_name(name)} segment outside a message (MSH expected)",
                    location="MSH-1",
                    code=100,
                )
            continue
        end_message(match.start())
        if name == b"FHS":
            if out.header is not None or out.batches or batch is not None:
                raise MessageError("FHS is not the first segment", location="FHS-1", code=100)
            out.header = segment
        elif name == b"BHS":
            if batch is not None and batch.header is not None:
                raise MessageError(
                    "BHS inside an open batch (BTS missing)", location="BHS-1", code=100
                )
            if batch is not None:  # messages before this BHS form a batch of their own
                out.batches.append(batch)
            batch = Batch(header=segment)
        elif name == b"MSH":
            if batch is None:
                batch = Batch()
            message_start = match.start()
        elif name == b"BTS":
            if batch is None:
                batch = Batch()
            batch.trailer = segment
            _check_count(segment, len(batch.messages), "BTS-1", "messages")
            out.batches.append(batch)
            batch = None
        else:  # FTS
            if out.header is None:
                raise MessageError("FTS without FHS", location="FHS-1", code=100)
            if batch is not None:
                if batch.header is not None:
                    raise MessageError("BHS without BTS", location="BTS-1", code=100)
                out.batches.append(batch)
                batch = None
            out.trailer = segment
            _check_count(segment, len(out.batches), "FTS-1", "batches")
            closed = True
    end_message(len(data))
    if batch is not None:
        if batch.header is not None:
            raise MessageError("BHS without BTS", location="BTS-1", code=100)
        out.batches.append(batch)
    if out.header is not None and out.trailer is None:
        raise MessageError("FHS without FTS", location="FTS-1", code=100)
    return out


def header_field(segment: bytes | None, n: int) -> bytes:
    """Return field ``n`` of an FHS/BHS/BTS/FTS segment, raw (for ids and counts)."""
    if not segment or len(segment) < 4:
        return b""
    separator = segment[3:4]
    parts = segment.split(separator)
    if segment[:3] in (b"FHS", b"BHS"):
        parts = [parts[0], separator, *parts[1:]]  # field 1 is the separator itself
    return parts[n] if 0 < n < len(parts) else b""


def _check_count(segment: bytes, actual: int, where: str, what: str) -> None:
    raw = header_field(segment, 1).strip()
    if not raw:
        return
    if not raw.isdigit() or int(raw) != actual:
        raise MessageError(
            f"{where} announces {raw.decode('ascii', 'replace')[:12]} {what}, {actual} found",
            location=where,
            code=100,
        )


def _name(name: bytes) -> str:
    text = name.decode("ascii", "replace")
    return text if text.isalnum() else "unnamed"
