"""Build HL7 v2 acknowledgements: ACK/NAK per HL7 v2.5.1 §2.9 (original and enhanced mode).

Who gets what (domain-requirements §1.2-1.3):

- Original mode (MSH-15 and MSH-16 both empty): one ACK with MSA-1 ``AA``
  (accepted), ``AE`` (the message must be corrected before it is sent again) or
  ``AR`` (unsupported type, version or processing id, or trouble on
  carebroker's side: resend the unchanged message later).
- Enhanced mode (MSH-15 or MSH-16 valued): this module builds the *commit*
  ACK, ``CA``/``CE``/``CR``, sent only when MSH-15 (table 0155) asks for it:
  ``AL`` always, ``NE`` never, ``ER`` on error only, ``SU`` on success only.
  An empty MSH-15 beside a valued MSH-16 is read as ``AL``: a sender that
  waits for an answer gets one. The application ACK follows routing.

The ACK's MSH swaps MSH-3/4 with MSH-5/6, says ``ACK^<trigger>^ACK`` in MSH-9
(``ACK^<trigger>`` before v2.3.1, which had no structure component), carries
its own new MSH-10, copies MSH-11, MSH-12 and MSH-18, and leaves MSH-15/16
empty: acknowledgements are never acknowledged. MSA-2 is the message's MSH-10.
Copied fields are copied as written, in the message's own delimiters, so an
ACK reads back exactly what the sender sent.

Errors: v2.5 and later get ``ERR||<ERR-2 location>|<ERR-3 code^text^HL70357>|
<ERR-4 severity>||||<ERR-8 text>``; older versions the ERR-1 form
``ERR|<segment^sequence^field^code&text&HL70357>`` plus the text in MSA-3.
Texts name segments, fields and ids only, never values (design invariant 6).

:func:`read_answer` reads an acknowledgement back (a partner's ACK to a
delivery): MSA-1, MSA-2 and the ERR codes and locations in either form,
never the partners' texts (ERR-8 and MSA-3 may quote the message).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from adapters.hl7v2.er7 import (
    DEFAULT_ENCODING,
    Encoding,
    Message,
    Segment,
    encode_message,
    escape,
    escape_controls,
    split_segments,
)
from broker.errors import MessageError

Outcome = Literal["accept", "error", "reject"]
"""What happened to a message: stored, must be corrected (AE/CE), refused (AR/CR)."""

CODES: Final = {
    ("original", "accept"): "AA",
    ("original", "error"): "AE",
    ("original", "reject"): "AR",
    ("enhanced", "accept"): "CA",
    ("enhanced", "error"): "CE",
    ("enhanced", "reject"): "CR",
}
POSITIVE: Final = frozenset({"AA", "CA"})
TABLE_0155: Final = frozenset({"AL", "NE", "ER", "SU"})  # accept/application ack conditions

# HL7 table 0357 texts (message error condition codes).
TABLE_0357: Final = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    198: "Non-conformant cardinality",
    199: "Other HL7 error",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}
_LOCATION = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\((?P<occ>\d+)\))?(?:-(?P<field>\d+)"
    r"(?:\[(?P<rep>\d+)\])?(?:\.(?P<comp>\d+))?(?:\.(?P<sub>\d+))?)?$"
)
_HEADERS: Final = ("MSH", "BHS", "FHS")
Severity = Literal["E", "W", "I", "F"]
_SEVERITIES: Final[dict[str, Severity]] = {"E": "E", "W": "W", "I": "I", "F": "F"}  # table 0516


@dataclass(frozen=True, slots=True)
class AckError:
    """One error an ACK reports: table 0357 code, location, severity (table 0516), text.

    ``location`` is written as carebroker writes field paths (``"MSH-9"``,
    ``"PID-3[2].4"``, ``"OBR"``); ``text`` names ids, never values.
    """

    code: int
    text: str
    location: str | None = None
    severity: Severity = "E"

    @classmethod
    def of(cls, exc: MessageError) -> AckError:
        """Return the ACK error for a MessageError (its code, location and text)."""
        return cls(exc.code, str(exc), exc.location)


@dataclass(frozen=True, slots=True)
class Header:
    """What an ACK copies from the incoming header (MSH, or BHS/FHS of a batch).

    Values are raw: written in ``enc``'s delimiters, escapes unresolved, so
    they are copied into the ACK exactly as sent.
    """

    enc: Encoding = DEFAULT_ENCODING
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""
    charset: str = ""

    @property
    def mode(self) -> Literal["original", "enhanced"]:
        """Return the acknowledgement mode: enhanced when MSH-15 or MSH-16 is valued."""
        return "enhanced" if self.accept_ack_type or self.application_ack_type else "original"

    @classmethod
    def of(cls, segment: Segment) -> Header:
        """Return the header fields of a parsed MSH (or BHS/FHS) segment."""
        enc = segment.enc
        clean = escape_controls(segment.raw, enc) is segment.raw  # the usual case: one scan

        def field(number: int) -> str:
            value = segment.field(number)
            return value if clean else escape_controls(value, enc)

        addresses = (enc, field(3), field(4), field(5), field(6))
        if segment.name != "MSH":
            # BHS/FHS-3..6 are MSH-3..6; their control id is field 11.
            return cls(*addresses, control_id=field(11))
        return cls(
            *addresses,
            trigger=_component(field(9), enc, 2),
            control_id=field(10),
            processing_id=field(11),
            version=field(12),
            # Blank is empty: senders pad with spaces.
            accept_ack_type=_component(field(15), enc, 1).strip(),
            application_ack_type=_component(field(16), enc, 1).strip(),
            charset=field(18),
        )

    @classmethod
    def read(cls, text: str) -> Header:
        """Read what can be read of a header that may be malformed; never raise.

        A message carebroker refuses still deserves an ACK that names it
        (MSA-2 = its MSH-10). When its delimiters are unusable, its fields are
        split on the field separator alone and copied escaped in the standard
        delimiters.
        """
        head = text[:65536].removeprefix("\ufeff").removeprefix("\xef\xbb\xbf")
        segments = split_segments(head)
        first = segments[0] if segments else ""
        if first[:3] not in _HEADERS or len(first) < 4:
            return cls()
        try:
            enc = Encoding.from_header(first)
        except MessageError:
            separator = first[3]
            parts = [first[:3], separator, *first[4:].split(separator)]
            values = [escape(p, DEFAULT_ENCODING) for p in parts]
            values += [""] * (19 - len(values))
            control = values[11] if first[:3] != "MSH" else values[10]
            return cls(
                DEFAULT_ENCODING,
                sending_application=values[3],
                sending_facility=values[4],
                receiving_application=values[5],
                receiving_facility=values[6],
                control_id=control,
                processing_id=values[11] if first[:3] == "MSH" else "",
                version=values[12] if first[:3] == "MSH" else "",
            )
        return cls.of(Segment(first, enc))


@dataclass(frozen=True, slots=True)
class Answer:
    """An acknowledgement read back: MSA-1, MSA-2 (the MSH-10 it answers) and its errors.

    ``errors`` carry table 0357 codes, locations and severities only; their
    ``text`` is empty (a partner's ERR-8 may quote the message).
    """

    code: str
    control_id: str
    errors: tuple[AckError, ...] = ()

    def describe(self) -> str:
        """Return the ERR codes and locations (``ERR 101 at PID-5``), or ``no ERR segment``."""
        parts = [
            f"ERR {e.code or '?'}" + (f" at {e.location}" if e.location else "")
            for e in self.errors
        ]
        return "; ".join(parts) or "no ERR segment"


def read_answer(message: Message) -> Answer:
    """Read MSA and ERR of an acknowledgement; raise MessageError when it has no MSA.

    ERR is read in its v2.5 form (ERR-2 location, ERR-3 code, ERR-4 severity)
    and in its v2.3.1 form (ERR-1: segment^sequence^field^code&text).
    """
    msa = message.segment("MSA")
    if msa is None:
        raise MessageError("the answer has no MSA segment", location="MSA")
    errors = []
    for err in message.all("ERR"):
        code, location = err.get(3, comp=1), _erl_location(err, 2, 1)
        severity = _SEVERITIES.get(err.get(4).upper(), "E")
        if not code and err.field(1):  # HL7 v2.3.1 ERR-1 (ELD)
            code, location = err.get(1, comp=4, sub=1), _erl_location(err, 1, 1)
        if code or location:
            errors.append(
                AckError(
                    int(code) if code.isdigit() else 0,
                    "",
                    location or None,
                    severity,
                )
            )
    return Answer(msa.get(1).upper(), msa.get(2), tuple(errors))


def _erl_location(err: Segment, field: int, rep: int) -> str:
    """Return an ERL (segment^sequence^field^...) as carebroker writes paths: ``PID-5``."""
    segment = err.get(field, rep, 1)
    number = err.get(field, rep, 3)
    if not segment:
        return ""
    return f"{segment}-{number}" if number.isdigit() else segment


def version_of(raw: str, enc: Encoding = DEFAULT_ENCODING) -> tuple[int, ...] | None:
    """Return MSH-12.1 as numbers (``"2.5.1"`` -> ``(2, 5, 1)``), or None when unreadable."""
    value = _component(raw, enc, 1).strip()
    if not re.fullmatch(r"\d+(\.\d+)*", value):
        return None
    return tuple(int(p) for p in value.split("."))


def code_for(header: Header, outcome: Outcome) -> str:
    """Return MSA-1 for an outcome in the message's acknowledgement mode."""
    return CODES[(header.mode, outcome)]


def is_due(header: Header, code: str) -> bool:
    """Tell whether an ACK with MSA-1 ``code`` is to be sent at all (MSH-15, table 0155)."""
    if header.mode == "original":
        return True
    wanted = header.accept_ack_type.upper()
    if wanted not in TABLE_0155:
        wanted = "AL"  # empty beside a valued MSH-16, or not a table 0155 value: answer
    positive = code in POSITIVE
    return wanted == "AL" or (wanted == "SU" and positive) or (wanted == "ER" and not positive)


def build_ack(
    header: Header,
    code: str,
    *,
    control_id: str,
    now: datetime,
    errors: Sequence[AckError] = (),
) -> str:
    """Return the ACK text (segments ending with CR) for a message with ``header``.

    ``control_id`` is the ACK's own MSH-10. The text is in the message's own
    delimiters; encode it with the message's character set.
    """
    enc = header.enc
    version = version_of(header.version, enc)
    structured = version is None or version >= (2, 3, 1)
    modern = version is None or version >= (2, 5)
    msh9 = enc.component.join(
        ["ACK", header.trigger, "ACK"] if structured else ["ACK", header.trigger]
    )
    msh = _join(
        enc,
        [
            "MSH" + enc.field + enc.msh2,
            header.receiving_application,
            header.receiving_facility,
            header.sending_application,
            header.sending_facility,
            escape(_timestamp(now), enc),  # "+0000": "+" may be a delimiter
            "",
            msh9,
            escape(control_id, enc),
            header.processing_id,
            header.version,
            "",
            "",
            "",
            "",
            "",
            header.charset,
        ],
    )
    text_note = "; ".join(e.text for e in errors)
    msa_fields = ["MSA", code, header.control_id]
    if errors and not modern:
        msa_fields.append(escape(text_note[:80], enc))
    segments = [msh, _join(enc, msa_fields)]
    if errors:
        if modern:
            segments += [_err_v25(e, enc) for e in errors]
        else:
            segments.append(_err_v231(errors, enc))
    return encode_message(segments)


def build_batch_ack(acks: Sequence[str], *, batch: Header, control_id: str, now: datetime) -> str:
    """Return an ACK batch (HL7 v2.5.1 §2.10.3): ``BHS {ACK} BTS``.

    ``batch`` is the incoming BHS (or, for MSH-concatenated input, the first
    message's MSH without its control id): BHS-12 refers to the sender's batch
    control id (BHS-11). A batch without ACKs says that every message was
    accepted and none asked for an answer.
    """
    enc = batch.enc
    return (
        encode_message([_batch_header("BHS", batch, enc, control_id, now)])
        + "".join(acks)
        + encode_message([f"BTS{enc.field}{len(acks)}"])
    )


def build_file_ack(batches: Sequence[str], *, file: Header, control_id: str, now: datetime) -> str:
    """Return an ACK file: ``FHS {ACK batch} FTS``, FHS-12 referring to the sender's FHS-11."""
    enc = file.enc
    return (
        encode_message([_batch_header("FHS", file, enc, control_id, now)])
        + "".join(batches)
        + encode_message([f"FTS{enc.field}{len(batches)}"])
    )


def _batch_header(name: str, of: Header, enc: Encoding, control_id: str, now: datetime) -> str:
    return _join(
        enc,
        [
            name + enc.field + enc.msh2,
            of.receiving_application,
            of.receiving_facility,
            of.sending_application,
            of.sending_facility,
            escape(_timestamp(now), enc),
            "",
            "",
            "",
            escape(control_id, enc),
            of.control_id,
        ],
    )


def _err_v25(error: AckError, enc: Encoding) -> str:
    code = enc.component.join(
        [str(error.code), escape(TABLE_0357.get(error.code, "Error"), enc), "HL70357"]
    )
    return _join(
        enc,
        [
            "ERR",
            "",
            _location(error.location, enc),
            code,
            error.severity,
            "",
            "",
            "",
            escape(error.text, enc),
        ],
    )


def _err_v231(errors: Sequence[AckError], enc: Encoding) -> str:
    repetitions = []
    for error in errors:
        where = _location_parts(error.location)[:3]
        where += [""] * (3 - len(where))
        what = enc.subcomponent.join(
            [str(error.code), escape(TABLE_0357.get(error.code, "Error"), enc), "HL70357"]
        )
        repetitions.append(enc.component.join([*where, what]))
    return _join(enc, ["ERR", enc.repetition.join(repetitions)])


def _location_parts(location: str | None) -> list[str]:
    """Return ERL components: segment^sequence^field^repetition^component^subcomponent."""
    match = _LOCATION.match(location or "")
    if match is None:
        return []
    parts = [match["seg"], match["occ"] or "1"]
    if match["field"]:
        parts.append(match["field"])
        if match["rep"] or match["comp"]:
            parts.append(match["rep"] or "1")
        if match["comp"]:
            parts.append(match["comp"])
            if match["sub"]:
                parts.append(match["sub"])
    return parts


def _location(location: str | None, enc: Encoding) -> str:
    return enc.component.join(_location_parts(location))


def _component(raw: str, enc: Encoding, n: int) -> str:
    parts = raw.split(enc.repetition, 1)[0].split(enc.component)
    return parts[n - 1] if len(parts) >= n else ""


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S%z")


def _join(enc: Encoding, fields: list[str]) -> str:
    while fields and fields[-1] == "":
        fields.pop()
    return enc.field.join(fields)
