"""Decode HL7 v2 bytes by MSH-18 (HL7 table 0211), with a per-partner override.

MSH-18 is read from the raw bytes before anything is decoded: the header is
ASCII in every character set HL7 v2 allows. The original bytes are always
stored untouched; this module only produces the text carebroker reads.

Decisions (see ../shared/reference/domain-requirements.md §1.6):

- An empty MSH-18 means ASCII (table 0211). Many senders leave it empty and
  send UTF-8, so carebroker reads an empty MSH-18 as UTF-8, ASCII's superset;
  bytes that are not valid UTF-8 are refused (AE, ERR at MSH-18) unless the
  partner has an ``inbound_charset`` override.
- A partner's ``inbound_charset`` wins over MSH-18: senders that label cp1252
  as ``8859/1`` are common, and the override is how operators say so.
- UTF-16 and UTF-32 are refused: HL7 v2 forbids them (wiki, v2.8).
"""

from __future__ import annotations

import codecs

from broker.errors import MessageError

# Table 0211 value -> Python codec. Keys are upper-cased, spaces kept.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "iso-8859-1",
    "ISO IR100": "iso-8859-1",
    "8859/2": "iso-8859-2",
    "ISO IR101": "iso-8859-2",
    "8859/3": "iso-8859-3",
    "8859/4": "iso-8859-4",
    "8859/5": "iso-8859-5",
    "ISO IR144": "iso-8859-5",
    "8859/6": "iso-8859-6",
    "ISO IR127": "iso-8859-6",
    "8859/7": "iso-8859-7",
    "ISO IR126": "iso-8859-7",
    "8859/8": "iso-8859-8",
    "ISO IR138": "iso-8859-8",
    "8859/9": "iso-8859-9",
    "ISO IR148": "iso-8859-9",
    "8859/15": "iso-8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",  # not in table 0211, but sent in the wild; unambiguous
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc-kr",
    "BIG-5": "big5",
    "CNS 11643-1992": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "JAS2020": "shift_jis",
    "JIS X 0202": "iso2022_jp",
}
FORBIDDEN = frozenset({"UNICODE", "UNICODE UTF-16", "UNICODE UTF-32"})
# Python codecs that are not character sets a message can be written in (found by tests/fuzz).
_NOT_CHARSETS = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7"}
)


def read_msh18(data: bytes) -> str:
    """Return MSH-18.1 from raw bytes (empty if absent or unreadable)."""
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 4:
        return ""
    separator = data[start + 3 : start + 4]
    end = len(data)
    for terminator in (b"\r", b"\n"):
        found = data.find(terminator, start)
        if 0 <= found < end:
            end = found
    fields = data[start:end].split(separator)
    # fields[0] is "MSH", fields[1] MSH-2; MSH-n is fields[n - 1].
    if len(fields) < 18:
        return ""
    component = fields[1][:1] or b"^"
    repetition = fields[1][1:2] or b"~"
    value = fields[17].split(repetition)[0].split(component)[0]
    return value.decode("ascii", errors="replace").strip()


def codec_for(label: str) -> str:
    """Return the Python codec for a table 0211 value or a codec name; raise if unknown."""
    key = label.strip().upper()
    if key in FORBIDDEN:
        raise MessageError(
            f"MSH-18 character set {label!r} is not allowed in HL7 v2", location="MSH-18", code=103
        )
    if key in CHARSETS:
        return CHARSETS[key]
    try:  # an override (or a lenient sender) may name a Python codec directly ("cp1252")
        name = codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name (found by tests/fuzz)
        name = ""
    if not name or name in _NOT_CHARSETS or name.startswith(("utf-16", "utf-32")):
        # Python also names transforms and escapes ("undefined" fails every
        # decode, "unicode-escape" rewrites backslashes): a character set only.
        raise MessageError(
            f"MSH-18 character set {label!r} is not supported", location="MSH-18", code=103
        ) from None
    return name


def decode(data: bytes, override: str | None = None) -> tuple[str, str]:
    """Decode a message; return (text, codec). Refuse bytes the charset cannot decode."""
    label = override if override else read_msh18(data)
    codec = codec_for(label)
    try:
        return data.decode(codec), codec
    except LookupError:  # a transform (base64, rot13 ...), not a text codec
        raise MessageError(
            f"MSH-18 character set {label!r} is not supported", location="MSH-18", code=103
        ) from None
    except UnicodeDecodeError as exc:
        raise MessageError(
            f"bytes at offset {exc.start} are not valid {codec} (MSH-18 {label or 'empty'!r})",
            location="MSH-18",
            code=102,
        ) from None


def encode(text: str, label: str | None) -> tuple[bytes, int]:
    """Encode text for a recipient's charset; return (bytes, characters substituted).

    A character the target charset cannot hold becomes ``?`` and is counted,
    so the caller can flag it: never silently dropped. Callers that can escape
    (ER7 ``\\X..\\``) should do so before calling this.
    """
    codec = codec_for(label or "")
    try:
        return text.encode(codec), 0
    except UnicodeEncodeError:
        pass
    out = bytearray()
    substituted = 0
    for char in text:
        try:
            out += char.encode(codec)
        except UnicodeEncodeError:
            out += b"?"
            substituted += 1
    return bytes(out), substituted
