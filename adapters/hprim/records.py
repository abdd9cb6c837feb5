"""Read HPRIM Santé records: delimiters, continuation lines, fields (pure, no I/O).

HPRIM Santé 2.x (association H.PR.I.M., now Interop'Santé; the recommendation
itself is for members only) is built on ASTM E1394: one record per line, an
``H`` header first, an ``L`` end record last. What this module relies on, and
where it was read (tests/data/hprim/README.md lists the sources):

- ``H-2`` gives the delimiters after the field separator, by position:
  component, repetition, escape, subcomponent. The standard form is
  ``H|~^\\&|`` — so ``~`` separates *components* and ``^`` *repetitions*, the
  reverse of HL7 v2's ``^~\\&`` (libHprim's samples: ``AU~Acide urique~L``,
  ``TGO1~TGO ADVI~L^TGP1~TGP ADVI~L``). Some labs send other characters
  (``H|\\^&~|``, where ``\\`` separates components: MedinTux's reader); read by
  position, both come out the same.
- Records are separated by CR, LF or CRLF; blank lines and a trailing DOS
  end-of-file mark (Ctrl-Z) are ignored.
- A record too long for one line continues on ``A|`` lines whose text after
  ``A|`` is appended as is (libHprim: ``...~Cliniq`` then ``A|ue HP~L|...``;
  MedinTux joins them the same way).
- Fields are numbered as HPRIM and ASTM number them: the record type is field
  1, so ``H-2`` is the delimiters and ``OBX-6`` the result value (HL7's OBX-5).
  Errors name the record number, its type and the field (``record 5 (OBX)
  OBX-6``), never a value.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from adapters.hl7v2.er7 import Encoding, Segment
from broker.errors import MessageError

RECORD_TYPES = frozenset({"H", "P", "OBR", "OBX", "C", "L", "A"})
_EOF = "\x1a"  # DOS end-of-file mark some lab systems still append


class HprimError(MessageError):
    """An HPRIM Santé file that cannot be read: says which record and field, never a value."""

    def __init__(
        self,
        text: str,
        *,
        record: int | None = None,
        kind: str = "",
        field: str = "",
        code: int = 102,
    ) -> None:
        where = [f"record {record}" if record else "", f"({kind})" if kind else "", field]
        location = " ".join(w for w in where if w)
        super().__init__(f"{location}: {text}" if location else text, location=location, code=code)
        self.record = record
        self.field = field


@dataclass(frozen=True)
class Delimiters:
    """The delimiters of one file, from the H record (field separator, then H-2 by position)."""

    field: str = "|"
    component: str = "~"
    repetition: str = "^"
    escape: str = "\\"
    subcomponent: str = "&"

    @classmethod
    def read(cls, first_line: str) -> Delimiters:
        """Read them from the H record's first line; raise HprimError when unusable."""
        if len(first_line) < 6 or first_line[0] != "H":
            raise HprimError("the file does not start with an H record", record=1, field="H-1")
        separator = first_line[1]
        end = first_line.find(separator, 2)
        chars = first_line[2:end] if end > 0 else first_line[2:]
        if len(chars) != 4:
            raise HprimError(
                "H-2 must hold 4 delimiters (component, repetition, escape, subcomponent)",
                record=1,
                kind="H",
                field="H-2",
            )
        found = separator + chars
        if len(set(found)) != len(found) or any(c.isspace() or c.isalnum() for c in found):
            raise HprimError("H-1/H-2 delimiters must be distinct symbols", record=1, field="H-2")
        return cls(separator, chars[0], chars[1], chars[2], chars[3])

    @property
    def encoding(self) -> Encoding:
        """Return the same delimiters as the ER7 reader takes them (escapes work alike)."""
        return Encoding(self.field, self.component, self.repetition, self.escape, self.subcomponent)

    @property
    def h2(self) -> str:
        """Return H-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent


@dataclass(frozen=True)
class Record:
    """One record (its continuation lines joined): type, number in the file, fields on demand."""

    number: int
    line: int
    type: str
    raw: str = field(repr=False)
    delimiters: Delimiters = field(repr=False)

    @property
    def _segment(self) -> Segment:
        return Segment(self.raw, self.delimiters.encoding)

    def field(self, n: int) -> str:
        """Return field ``n`` (the record type is field 1) raw, or "" when absent."""
        if n == 1:
            return self.type
        return self._segment.field(n - 1)

    def repetitions(self, n: int) -> list[str]:
        """Return the raw repetitions of field ``n``."""
        return self._segment.repetitions(n - 1)

    def get(self, n: int, rep: int = 1, comp: int | None = None) -> str:
        """Return one decoded value: field ``n``, repetition ``rep``, component ``comp``."""
        return self._segment.get(n - 1, rep, comp).strip()

    def components(self, n: int, rep: int = 1) -> list[str]:
        """Return the decoded, trimmed components of one repetition of field ``n``."""
        return [c.strip() for c in self._segment.components(n - 1, rep)]

    def error(self, field: str, text: str, code: int = 102) -> HprimError:
        """Return the error naming this record and ``field`` (``OBX-6``)."""
        return HprimError(text, record=self.number, kind=self.type, field=field, code=code)


def decode(data: bytes, charset: str | None = None) -> tuple[str, str]:
    """Return the text of a file and the codec read.

    ``charset`` (the partner's ``inbound_charset``) wins; else a byte-order
    mark; else UTF-8 when the bytes are valid UTF-8; else ISO-8859-1, the
    charset of HPRIM files in the field (MedinTux reads them as such).
    """
    if charset:
        try:
            return data.decode(charset), codecs.lookup(charset).name
        except (UnicodeDecodeError, LookupError) as exc:
            raise HprimError(f"the file cannot be read as {charset}", code=102) from exc
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise HprimError(f"the file is not valid {codec}", code=102) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("iso-8859-1"), "iso-8859-1"


def lines(text: str) -> list[tuple[int, str]]:
    """Return the non-blank lines with their 1-based line numbers (CR, LF, CRLF; Ctrl-Z dropped)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip(_EOF + " \t\n")
    return [(n, line.rstrip()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def read_records(text: str) -> tuple[Delimiters, list[Record]]:
    """Split a file into records, continuation lines joined; raise HprimError on bad framing."""
    found = lines(text)
    if not found:
        raise HprimError("the file is empty", code=100)
    delimiters = Delimiters.read(found[0][1])
    records: list[Record] = []
    pending: tuple[int, str, str] | None = None  # (line, type, text) of the record being built
    for number, line in found:
        kind = line.split(delimiters.field, 1)[0].strip()
        if kind == "A" and line[1:2] == delimiters.field:
            if pending is None:
                raise HprimError("an A (continuation) line with no record before it", code=100)
            pending = (pending[0], pending[1], pending[2] + line[2:])
            continue
        if pending is not None:
            records.append(Record(len(records) + 1, pending[0], pending[1], pending[2], delimiters))
        pending = (number, kind, line)
    if pending is not None:
        records.append(Record(len(records) + 1, pending[0], pending[1], pending[2], delimiters))
    return delimiters, records


def is_complete(text: str) -> bool:
    """Tell whether a file ends with its L (end) record: a file still being written does not.

    The last non-blank line must be an ``L`` record (``L`` alone, or ``L``
    and the field separator the H record set).
    """
    text = text.removeprefix("\ufeff")
    if len(text) < 2 or text[0] != "H":
        return False
    tail = text[-4096:].replace("\r", "\n").rstrip(_EOF + " \t\n")
    last = tail.rsplit("\n", 1)[-1]
    return last == "L" or last.startswith("L" + text[1])
