"""What one recipient receives: the message re-addressed and re-encoded for it (pure).

:func:`render` is the one place that turns an accepted message into the bytes
for a recipient; the router stores its output in ``deliveries.payload`` so a
retry or a replay sends exactly the same bytes (same MSH-10, same
Bundle.identifier), which is what lets a partner recognise a resend
(domain-requirements §1.4, §1.8).

HL7 v2 recipients (HL7 v2.5.1 §2.14.9): MSH-5/6 name the recipient, MSH-12
carries the version it ``accepts``, MSH-18 and the bytes its character set.
A character the target set cannot hold is written as an ER7 hex escape
``\\Xhh..\\`` of its UTF-8 bytes (§2.7.2) and counted in the flags, never
dropped. A non-qualified INS is removed from PID-3 (flagged ``ins_stripped``);
with OBR-49 ``BCC`` the copies-to list OBR-28 is blanked for every recipient.

FHIR recipients: INTERIM RENDERING until translation (adapters/translate/)
lands — a FHIR R4 message Bundle whose MessageHeader focuses a Binary holding
the re-addressed HL7 v2 message (``x-application/hl7-v2+er7``, UTF-8). The
lead swaps in the HL7 v2-to-FHIR translation here, behind the same function.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Encoding, Segment, encode_field, replace_fields, split_segments
from adapters.hl7v2.extract import INS_OIDS, hd_authority
from broker.envelope import Envelope
from broker.errors import PermanentError
from routing.directory import Partner

V2_CONTENT_TYPE = "x-application/hl7-v2+er7"
FHIR_CONTENT_TYPE = "application/fhir+json"
EVENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0003"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:carebroker:fhir-entries")  # ids of entries


class RenderError(PermanentError):
    """The message cannot be rendered for this recipient (it would fail the same way again)."""


@dataclass(frozen=True)
class Rendered:
    """The bytes for one recipient, their media type, and what was changed on the way."""

    payload: bytes = field(repr=False)
    content_type: str
    flags: tuple[str, ...] = ()


def render(envelope: Envelope, partner: Partner, *, strip_ins: bool = False) -> Rendered:
    """Return what ``partner`` receives for ``envelope``; raise RenderError if it cannot."""
    if partner.accepts is None:
        raise RenderError(f"partner {partner.id} declares no `accepts`")
    wants = partner.accepts.format
    if envelope.format == "fhir":
        if wants == "fhir":
            # Interim: FHIR in, FHIR out, unchanged until translation re-addresses it.
            return Rendered(envelope.payload, FHIR_CONTENT_TYPE)
        raise RenderError(
            f"FHIR to HL7 v2 translation is not available yet for {envelope.control_id} "
            f"to {partner.id}"
        )
    if wants == "hl7v2":
        text, flags = readdress(envelope, partner, strip_ins=strip_ins)
        label = partner.accepts.charset
        codec = charset.codec_for(label) if label is not None else envelope.charset
        data, escaped = encode_escaping(text, codec)
        if escaped:
            flags.append(f"chars_escaped:{escaped}")
        return Rendered(data, f"{V2_CONTENT_TYPE}; charset={codec}", tuple(flags))
    return interim_fhir_bundle(envelope, partner, strip_ins=strip_ins)


def readdress(
    envelope: Envelope, partner: Partner, *, strip_ins: bool, charset_label: str | None = None
) -> tuple[str, list[str]]:
    """Return the HL7 v2 text for ``partner`` (MSH-5/6/12/18, INS, OBR-28) and its flags."""
    try:
        text = envelope.payload.decode(envelope.charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise RenderError(f"{envelope.control_id} cannot be decoded as {envelope.charset}") from exc
    segments = split_segments(text)
    if not segments or not segments[0].startswith("MSH"):
        raise RenderError(f"{envelope.control_id} does not start with MSH")
    enc = Encoding.from_header(segments[0])
    accepts = partner.accepts
    msh = Segment(segments[0], enc)
    values = {5: _encoded(partner.msh_application, enc), 6: _encoded(partner.msh_facility, enc)}
    if accepts is not None and accepts.version:
        # MSH-12 may carry a national profile after the version (2.5^FRA^2.11): keep it.
        rest = msh.field(12).split(enc.component)[1:]
        values[12] = enc.component.join([_encoded(accepts.version, enc), *rest])
    label = charset_label or (accepts.charset if accepts is not None else None)
    if label is not None:
        values[18] = _encoded(label, enc)
    flags: list[str] = []
    body = []
    for raw in segments[1:]:
        if strip_ins and raw.startswith("PID"):
            raw, removed = _strip_ins(raw, enc)
            if removed:
                flags.append("ins_stripped")
        if "BCC" in envelope.handling and raw.startswith("OBR"):
            raw, blanked = _blank_field(raw, enc, 28)
            if blanked and "obr28_hidden" not in flags:
                flags.append("obr28_hidden")
        body.append(raw)
    header = replace_fields(segments[0] + "\r", values).rstrip("\r")
    return "\r".join([header, *body]) + "\r", flags


def encode_escaping(text: str, codec: str) -> tuple[bytes, int]:
    """Encode ``text`` in ``codec``; escape what it cannot hold as ER7 ``\\Xhh\\``; count them.

    The escape character is read from MSH-2 so the sequence is valid in this
    message. Delimiters are ASCII, so they never need escaping here.
    """
    try:
        return text.encode(codec), 0
    except UnicodeEncodeError:
        pass
    esc = Encoding.from_header(split_segments(text)[0]).escape
    out: list[str] = []
    escaped = 0
    for char in text:
        try:
            char.encode(codec)
        except UnicodeEncodeError:
            out.append(f"{esc}X{char.encode('utf-8').hex().upper()}{esc}")
            escaped += 1
        else:
            out.append(char)
    data, substituted = charset.encode("".join(out), codec)
    return data, escaped + substituted


def interim_fhir_bundle(envelope: Envelope, partner: Partner, *, strip_ins: bool) -> Rendered:
    """Return a FHIR R4 message Bundle carrying the HL7 v2 message as a Binary (INTERIM).

    FHIR messaging (R4 §3.4, domain-requirements §1.8): the first entry is a
    MessageHeader; ``Bundle.identifier`` is stable for this message so a
    resend is recognised by the receiver. Replaced by the translation issue.
    """
    text, flags = readdress(envelope, partner, strip_ins=strip_ins, charset_label="UNICODE UTF-8")
    header_id = uuid.uuid5(_NAMESPACE, f"header:{envelope.message_id}:{partner.id}")
    binary_id = uuid.uuid5(_NAMESPACE, f"binary:{envelope.message_id}:{partner.id}")
    trigger = envelope.message_type.partition("^")[2] or envelope.message_type
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{envelope.message_id}"},
        "type": "message",
        "timestamp": envelope.received_at.isoformat(),
        "meta": {"tag": [{"system": "urn:carebroker:rendering", "code": "interim-v2-binary"}]},
        "entry": [
            {
                "fullUrl": f"urn:uuid:{header_id}",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": str(header_id),
                    "eventCoding": {"system": EVENT_SYSTEM, "code": trigger},
                    "destination": [
                        {"name": partner.name, "endpoint": f"urn:carebroker:partner:{partner.id}"}
                    ],
                    "source": {"name": "carebroker", "endpoint": "urn:carebroker"},
                    "focus": [{"reference": f"urn:uuid:{binary_id}"}],
                },
            },
            {
                "fullUrl": f"urn:uuid:{binary_id}",
                "resource": {
                    "resourceType": "Binary",
                    "id": str(binary_id),
                    "contentType": V2_CONTENT_TYPE,
                    "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                },
            },
        ],
    }
    return Rendered(
        json.dumps(bundle, separators=(",", ":")).encode("utf-8"),
        FHIR_CONTENT_TYPE,
        (*flags, "interim_fhir_rendering"),
    )


@lru_cache(maxsize=4096)
def _encoded(value: str, enc: Encoding) -> str:
    """Return a directory value (partner names, versions) encoded once per delimiter set."""
    return encode_field(value, enc)


def _strip_ins(raw: str, enc: Encoding) -> tuple[str, bool]:
    """Remove the INS repetitions of PID-3 (domain-requirements §3.1: no INS unless qualified)."""
    segment = Segment(raw, enc)
    reps = segment.repetitions(3)
    kept = [rep for i, rep in enumerate(reps, 1) if hd_authority(segment, 3, i, 4) not in INS_OIDS]
    if len(kept) == len(reps):
        return raw, False
    return _set_field(raw, enc, 3, enc.repetition.join(kept)), True


def _blank_field(raw: str, enc: Encoding, n: int) -> tuple[str, bool]:
    if not Segment(raw, enc).field(n):
        return raw, False
    return _set_field(raw, enc, n, ""), True


def _set_field(raw: str, enc: Encoding, n: int, value: str) -> str:
    parts = raw.split(enc.field)
    while len(parts) <= n:
        parts.append("")
    parts[n] = value
    return enc.field.join(parts)
