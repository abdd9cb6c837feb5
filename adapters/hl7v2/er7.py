"""Read and write HL7 v2 ER7 ("pipe and hat") without building an object tree.

HL7 v2.5.1 ch. 2 §2.5-2.7 define the encoding: segments end with CR, fields
are separated by MSH-1, and MSH-2 gives the component, repetition, escape and
subcomponent characters (and, from v2.7, the truncation character). Nothing
here assumes ``|^~\\&``.

The reader is lazy: a :class:`Message` splits its text into segment strings,
and a segment splits into fields only when a field of it is read. The hot path
(ingress extraction) reads a dozen fields of a message and never pays for the
rest. Full structure knowledge (which segment belongs to which group) is
hl7apy's job, off the hot path.

Segment separators: CR per the standard. LF and CRLF are accepted as well,
because much real traffic (and most of ../shared/corpus) uses them and every
engine in the field accepts them; the original bytes are stored untouched, so
nothing is lost by normalising here. A raw LF inside a field value is not legal
ER7 (it must be escaped as ``\\X0A\\``), so the normalisation is unambiguous.

Values: ``get`` returns the *decoded* text (escape sequences resolved). An
empty field and the explicit null ``""`` both read as ``""``; use
:meth:`Message.is_null` to tell them apart.

Writing: :func:`encode_field` takes nested Python values: a ``str`` is one
value, a ``tuple`` is components (a nested ``tuple`` is subcomponents), a
``list`` is repetitions, ``None`` is empty and :data:`NULL` is ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from broker.errors import MessageError

NULL: Final = '""'
"""The explicit HL7 null (HL7 v2.5.1 §2.5.3): "delete this value" at the receiver."""

_HEADER_SEGMENTS: Final = frozenset({"MSH", "BHS", "FHS"})
_SEGMENT_NAME = re.compile(r"^[A-Z0-9]{3}")
# C0 control characters other than TAB, LF and CR (those two are escaped by name),
# and the other characters str.splitlines (and python-hl7) break lines on: NEL
# (U+0085, what byte 0x85 is in ISO-8859-1), LINE and PARAGRAPH SEPARATOR.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x85\u2028\u2029]")
_PATH = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\((?P<occ>\d+)\))?-(?P<field>\d+)"
    r"(?:\[(?P<rep>\d+)\])?(?:\.(?P<comp>\d+))?(?:\.(?P<sub>\d+))?$"
)


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message, from MSH-1 and MSH-2 (HL7 v2.5.1 §2.5.4)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str | None = None

    @property
    def msh2(self) -> str:
        """Return MSH-2 as written for this encoding."""
        return (
            self.component
            + self.repetition
            + self.escape
            + self.subcomponent
            + (self.truncation or "")
        )

    @classmethod
    def from_header(cls, segment: str) -> Encoding:
        """Read the delimiters of an MSH, BHS or FHS segment; refuse impossible ones."""
        if len(segment) < 8 or segment[:3] not in _HEADER_SEGMENTS:
            raise MessageError(
                f"{segment[:3] or 'segment'} too short for delimiters", location="MSH-2", code=100
            )
        field = segment[3]
        end = segment.find(field, 4)
        chars = segment[4:] if end < 0 else segment[4:end]
        if not 4 <= len(chars) <= 5:
            raise MessageError(
                f"{segment[:3]}-2 must hold 4 or 5 encoding characters",
                location=f"{segment[:3]}-2",
                code=102,
            )
        delimiters = field + chars
        # Lower-case letters are legal, if unwise (hl7apy's tests use "r" for
        # repetition). Duplicates, white space and control characters (NUL ...)
        # cannot be read unambiguously; digits and capital letters collide with
        # segment names, codes and timestamps, which an answer writes as they are
        # (found by tests/fuzz).
        if (
            len(set(delimiters)) != len(delimiters)
            or any(c.isspace() or c.isdigit() or "A" <= c <= "Z" for c in delimiters)
            or _CONTROL.search(delimiters)
        ):
            raise MessageError(
                f"{segment[:3]}-1/2 delimiters must be distinct, visible characters "
                "other than digits and capital letters",
                location=f"{segment[:3]}-2",
                code=102,
            )
        return cls(
            field, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else None
        )


DEFAULT_ENCODING: Final = Encoding()


def split_segments(text: str) -> list[str]:
    """Split ER7 text into segment strings, accepting CR, LF and CRLF; drop empty lines."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in text.split("\r") if s.strip()]


# --- escape sequences (HL7 v2.5.1 §2.7) -------------------------------------------


def unescape(value: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Resolve escape sequences in one primitive value.

    ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\`` give back the delimiters, ``\\Xhh..\\``
    the bytes it encodes (read as UTF-8, else ISO-8859-1), ``\\.br\\`` a line
    break. Highlighting (``\\H\\ \\N\\``) is dropped. Sequences carebroker does
    not interpret (``\\Cxxyy\\``, ``\\Zxx\\``, other formatting commands) are
    kept as written, so nothing is silently lost.
    """
    esc = enc.escape
    if esc not in value:
        return value
    out: list[str] = []
    pos = 0
    while True:
        start = value.find(esc, pos)
        if start < 0:
            out.append(value[pos:])
            break
        end = value.find(esc, start + 1)
        if end < 0:  # a lone escape character is kept literally
            out.append(value[pos:])
            break
        out.append(value[pos:start])
        out.append(_decode_sequence(value[start + 1 : end], enc, value[start : end + 1]))
        pos = end + 1
    return "".join(out)


def _decode_sequence(seq: str, enc: Encoding, raw: str) -> str:
    simple = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": enc.escape,
        "H": "",
        "N": "",
    }
    if seq in simple:
        return simple[seq]
    if seq == "P" and enc.truncation:
        return enc.truncation
    if seq == ".br":
        return "\n"
    if seq[:1] == "X" and len(seq) > 1 and len(seq) % 2 == 1:
        try:
            data = bytes.fromhex(seq[1:])
        except ValueError:
            return raw
        if 0 in data:  # no text store can hold NUL: kept as written
            return raw
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("iso-8859-1")
    return raw


def escape(value: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Escape one primitive value so it survives as a single ER7 value."""
    esc = enc.escape
    specials = {
        enc.field: "F",
        enc.component: "S",
        enc.subcomponent: "T",
        enc.repetition: "R",
        esc: "E",
        "\r": "X0D",
        "\n": "X0A",
    }
    if enc.truncation:
        specials[enc.truncation] = "P"
    if not any(c in value for c in specials) and not _CONTROL.search(value):
        return value
    return "".join(
        f"{esc}{specials[c]}{esc}"
        if c in specials
        else f"{esc}X{_hex(c)}{esc}"
        if _CONTROL.match(c)
        else c
        for c in value
    )


def escape_controls(raw: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Write the control characters of a raw ER7 value as ``\\Xhh\\`` (the rest untouched).

    A value copied from a message into an answer (MSH-10 into MSA-2) must not
    carry a control character raw: receivers split lines on some of them.
    """
    if not _CONTROL.search(raw):
        return raw
    return _CONTROL.sub(lambda m: f"{enc.escape}X{_hex(m[0])}{enc.escape}", raw)


def _hex(char: str) -> str:
    r"""Return a character's ``\Xhh..\`` digits: its UTF-8 bytes, as :func:`unescape` reads them."""
    return char.encode("utf-8").hex().upper()


# --- writing ---------------------------------------------------------------------

FieldValue: TypeAlias = "str | tuple[FieldValue, ...] | list[FieldValue] | None"


def encode_field(value: FieldValue, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Encode one field: ``list`` = repetitions, ``tuple`` = components, nested = subcomponents."""
    if isinstance(value, list):
        return enc.repetition.join(_encode_repetition(v, enc) for v in value)
    return _encode_repetition(value, enc)


def _encode_repetition(value: FieldValue, enc: Encoding) -> str:
    if isinstance(value, tuple):
        return enc.component.join(_encode_component(v, enc) for v in value)
    return _encode_component(value, enc)


def _encode_component(value: FieldValue, enc: Encoding) -> str:
    if isinstance(value, tuple):
        return enc.subcomponent.join(_encode_primitive(v, enc) for v in value)
    return _encode_primitive(value, enc)


def _encode_primitive(value: FieldValue, enc: Encoding) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("ER7 nests at most field > repetition > component > subcomponent")
    return NULL if value == NULL else escape(value, enc)


def encode_segment(
    name: str, fields: Sequence[FieldValue], enc: Encoding = DEFAULT_ENCODING
) -> str:
    """Encode a segment; for MSH/BHS/FHS, ``fields`` starts at field 3 (1-2 are delimiters)."""
    body = [encode_field(f, enc) for f in fields]
    while body and body[-1] == "":
        body.pop()
    if name in _HEADER_SEGMENTS:
        return (
            enc.field.join([name + enc.field + enc.msh2, *body])
            if body
            else (name + enc.field + enc.msh2)
        )
    return enc.field.join([name, *body])


def encode_message(segments: Sequence[str]) -> str:
    """Join segments with CR, the only separator the standard allows."""
    return "\r".join(segments) + "\r"


# --- reading ---------------------------------------------------------------------


class Segment:
    """One segment, split into fields on first access."""

    __slots__ = ("_fields", "enc", "name", "raw")

    def __init__(self, raw: str, enc: Encoding) -> None:
        self.raw = raw
        self.enc = enc
        self.name = raw[:3]
        self._fields: list[str] | None = None

    def __repr__(self) -> str:  # never the content: it may be patient data
        return f"<Segment {self.name}>"

    @property
    def fields(self) -> list[str]:
        """Return the raw fields; index n is field n (index 0 is the segment name)."""
        if self._fields is None:
            parts = self.raw.split(self.enc.field)
            if self.name in _HEADER_SEGMENTS:
                # MSH-1 is the field separator itself, so MSH-n sits at parts[n - 1].
                parts = [parts[0], self.enc.field, *parts[1:]]
            self._fields = parts
        return self._fields

    def field(self, n: int) -> str:
        """Return field ``n`` raw (escapes unresolved), or "" when absent."""
        fields = self.fields
        return fields[n] if 0 < n < len(fields) else ""

    def repetitions(self, n: int) -> list[str]:
        """Return the raw repetitions of field ``n`` (an empty field has none)."""
        raw = self.field(n)
        if not raw:
            return []
        if self.name in _HEADER_SEGMENTS and n <= 2:
            return [raw]
        return raw.split(self.enc.repetition)

    def get(self, n: int, rep: int = 1, comp: int | None = None, sub: int | None = None) -> str:
        """Return one decoded value: field ``n``, repetition ``rep``, component, subcomponent."""
        if self.name in _HEADER_SEGMENTS and n <= 2:
            return self.field(n)
        reps = self.repetitions(n)
        if not 0 < rep <= len(reps):
            return ""
        value = reps[rep - 1]
        if value == NULL:
            return ""
        if comp is not None:
            value = _nth(value, self.enc.component, comp)
            if sub is not None:
                value = _nth(value, self.enc.subcomponent, sub)
        elif sub is not None:
            value = _nth(value, self.enc.subcomponent, sub)
        # The explicit null reads as empty at every level, not only a whole field's.
        return "" if value == NULL else unescape(value, self.enc)

    def components(self, n: int, rep: int = 1) -> list[str]:
        """Return the decoded components of one repetition of field ``n``."""
        reps = self.repetitions(n)
        if not 0 < rep <= len(reps) or reps[rep - 1] == NULL:
            return []
        return [unescape(c, self.enc) for c in reps[rep - 1].split(self.enc.component)]

    def is_null(self, n: int, rep: int = 1) -> bool:
        """Tell whether field ``n`` (repetition ``rep``) holds the explicit null ``""``."""
        reps = self.repetitions(n)
        return 0 < rep <= len(reps) and reps[rep - 1] == NULL


def _nth(value: str, sep: str, n: int) -> str:
    if n < 1:
        return ""
    parts = value.split(sep, n)
    return parts[n - 1] if len(parts) >= n else ""


class Message:
    """A lazy view over one ER7 message (already decoded to text)."""

    __slots__ = ("enc", "segments")

    def __init__(self, text: str) -> None:
        raw_segments = split_segments(text)
        if not raw_segments or raw_segments[0][:3] != "MSH":
            raise MessageError(
                "message does not start with an MSH segment", location="MSH", code=100
            )
        self.enc = Encoding.from_header(raw_segments[0])
        for raw in raw_segments:
            if not _SEGMENT_NAME.match(raw):
                raise MessageError(
                    "segment name must be three upper-case letters or digits", code=100
                )
        if "\x00" in text:  # never valid in HL7 v2 text (escape it as \X00\)
            name = next(raw[:3] for raw in raw_segments if "\x00" in raw)
            raise MessageError(f"NUL character in segment {name}", location=name, code=102)
        self.segments = [Segment(s, self.enc) for s in raw_segments]

    def __repr__(self) -> str:
        return f"<Message {self.message_type} {len(self.segments)} segments>"

    @property
    def msh(self) -> Segment:
        """Return the MSH segment."""
        return self.segments[0]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """Return the ``occurrence``-th segment named ``name`` (1-based), or None."""
        seen = 0
        for segment in self.segments:
            if segment.name == name:
                seen += 1
                if seen == occurrence:
                    return segment
        return None

    def all(self, name: str) -> list[Segment]:
        """Return every segment named ``name``, in message order."""
        return [s for s in self.segments if s.name == name]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def get(self, path: str) -> str:
        """Return the decoded value at ``path``, e.g. ``"PID-3[2].4.2"`` or ``"OBX(2)-5"``."""
        seg, occ, field, rep, comp, sub = parse_path(path)
        segment = self.segment(seg, occ)
        if segment is None:
            return ""
        return segment.get(field, rep, comp, sub)

    def is_null(self, path: str) -> bool:
        """Tell whether the field at ``path`` holds the explicit null ``""``."""
        seg, occ, field, rep, _, _ = parse_path(path)
        segment = self.segment(seg, occ)
        return segment is not None and segment.is_null(field, rep)

    # Header fields routing and ACKs need, by their standard names.
    @property
    def sending_application(self) -> str:
        """Return MSH-3.1."""
        return self.msh.get(3, comp=1)

    @property
    def sending_facility(self) -> str:
        """Return MSH-4.1."""
        return self.msh.get(4, comp=1)

    @property
    def receiving_application(self) -> str:
        """Return MSH-5.1."""
        return self.msh.get(5, comp=1)

    @property
    def receiving_facility(self) -> str:
        """Return MSH-6.1."""
        return self.msh.get(6, comp=1)

    @property
    def message_type(self) -> str:
        """Return MSH-9 as ``CODE^TRIGGER`` (``ACK`` alone when there is no trigger)."""
        code, trigger = self.msh.get(9, comp=1), self.msh.get(9, comp=2)
        return f"{code}^{trigger}" if trigger else code

    @property
    def structure(self) -> str:
        """Return MSH-9.3, the message structure, when the sender gave it."""
        return self.msh.get(9, comp=3)

    @property
    def control_id(self) -> str:
        """Return MSH-10."""
        return self.msh.get(10)

    @property
    def processing_id(self) -> str:
        """Return MSH-11.1 (P production, T training, D debugging)."""
        return self.msh.get(11, comp=1)

    @property
    def version(self) -> str:
        """Return MSH-12.1, e.g. ``2.5.1``."""
        return self.msh.get(12, comp=1)

    @property
    def accept_ack_type(self) -> str:
        """Return MSH-15 (table 0155); empty with MSH-16 empty means original mode."""
        return self.msh.get(15)

    @property
    def application_ack_type(self) -> str:
        """Return MSH-16 (table 0155)."""
        return self.msh.get(16)

    @property
    def charset(self) -> str:
        """Return MSH-18.1 as written (table 0211)."""
        return self.msh.get(18, comp=1)


def parse_path(path: str) -> tuple[str, int, int, int, int | None, int | None]:
    """Parse ``SEG(occ)-field[rep].comp.sub`` into its numbers (1-based; comp/sub optional)."""
    match = _PATH.match(path)
    if match is None:
        raise ValueError(f"not an HL7 v2 field path: {path!r}")
    return (
        match["seg"],
        int(match["occ"] or 1),
        int(match["field"]),
        int(match["rep"] or 1),
        int(match["comp"]) if match["comp"] else None,
        int(match["sub"]) if match["sub"] else None,
    )


def replace_fields(text: str, values: dict[int, str]) -> str:
    """Return ``text`` with MSH fields replaced by already-encoded values (``{5: "APP"}``).

    Used to re-address a message to a recipient without re-encoding the rest.
    """
    segments = split_segments(text)
    enc = Encoding.from_header(segments[0])
    parts = segments[0].split(enc.field)
    for n, value in values.items():
        index = n - 1  # MSH-n sits at parts[n - 1]
        if n < 3:
            raise ValueError("MSH-1 and MSH-2 are the delimiters")
        while len(parts) <= index:
            parts.append("")
        parts[index] = value
    segments[0] = enc.field.join(parts)
    return encode_message(segments)
