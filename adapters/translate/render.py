"""Render an accepted message for one recipient, whichever format came in.

The router (issue 4) calls these with the envelope of an accepted message
and the recipient from the partner directory:

- :func:`to_fhir_message` gives a FHIR R4 message Bundle (MessageHeader with
  event, source, destination and focus) for a recipient that reads FHIR;
- :func:`to_hl7v2` gives an HL7 v2 message in the recipient's version and
  character set for a recipient that reads v2;
- :func:`render_for` picks one by the partner's ``accepts.format``.

HL7 v2 in, v2 out keeps the original message (only MSH-12/MSH-18 and the
bytes change when the recipient's version or charset differ); FHIR in, FHIR
out keeps the sender's resources and re-addresses the MessageHeader. Pure
functions: no I/O, so the router decides what to store and audit.
"""

from __future__ import annotations

import uuid
from typing import Any

from adapters.hl7v2 import charset as charsets
from adapters.hl7v2.er7 import Message, encode_field, replace_fields, split_segments
from adapters.translate import fhir_to_v2, v2_to_fhir
from adapters.translate.bundle import NAMESPACE, dumps, loads
from adapters.translate.vocabulary import V2_0003
from broker.envelope import Envelope
from broker.errors import MessageError
from routing.directory import Partner

Json = dict[str, Any]
# What a FHIR resource sent alone means as a message event (HL7 table 0003 codes,
# the events carebroker's v2 -> FHIR translation uses for the same content).
_EVENTS = {
    "DiagnosticReport": ("R01", "ORU^R01^ORU_R01"),
    "Observation": ("R01", "ORU^R01^ORU_R01"),
    "ServiceRequest": ("I12", "REF^I12^REF_I12"),
    "Task": ("I12", "REF^I12^REF_I12"),
    "DocumentReference": ("T02", "MDM^T02^MDM_T02"),
}


def render_for(envelope: Envelope, recipient: Partner, *, timezone: str | None = None) -> bytes:
    """Return what ``recipient`` reads: a FHIR message Bundle or an HL7 v2 message."""
    accepts = recipient.accepts
    if accepts is not None and accepts.format == "fhir":
        return to_fhir_message(envelope, recipient, timezone=timezone)
    version = accepts.version if accepts else None
    wanted = accepts.charset if accepts else None
    return to_hl7v2(envelope, version, wanted)


def partner_endpoint(partner: Partner) -> str:
    """Return the endpoint URI a MessageHeader names for a partner."""
    endpoint = partner.endpoint
    url = getattr(endpoint, "url", "")
    return str(url) if url else f"urn:carebroker:partner:{partner.id}"


def to_fhir_message(
    envelope: Envelope, recipient: Partner, *, timezone: str | None = None
) -> bytes:
    """Return a FHIR message Bundle of the envelope's message, addressed to ``recipient``."""
    if envelope.format == "hl7v2":
        text, _ = charsets.decode(envelope.payload, envelope.charset)
        bundle = v2_to_fhir.convert(Message(text), timezone=timezone).bundle
    else:
        document = loads(envelope.payload)
        if not isinstance(document, dict):
            raise MessageError("payload is not a FHIR resource", location="$")
        bundle = _as_message(document, envelope)
    header = bundle["entry"][0]["resource"]
    header["destination"] = [
        {"name": recipient.id, "endpoint": partner_endpoint(recipient)},
    ]
    header.setdefault("source", {}).setdefault(
        "endpoint", f"urn:carebroker:partner:{envelope.sender}"
    )
    return dumps(bundle).encode("utf-8")


def _as_message(document: Json, envelope: Envelope) -> Json:
    """Return the document as a message Bundle: as is, or wrapped with a MessageHeader."""
    if document.get("resourceType") == "Bundle" and document.get("type") == "message":
        return document
    if document.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in document.get("entry", []) or [] if isinstance(e, dict)]
    else:
        resources = [document]
    focus_entries = []
    entries: list[Json] = []
    for index, resource in enumerate(resources):
        resource_id = resource.get("id") or str(
            uuid.uuid5(NAMESPACE, f"{envelope.message_id}/{index}")
        )
        resource = {**resource, "id": resource_id}
        full_url = (
            f"urn:uuid:{resource_id}"
            if _is_uuid(resource_id)
            else (f"urn:carebroker:{envelope.message_id}:{resource['resourceType']}/{resource_id}")
        )
        entries.append({"fullUrl": full_url, "resource": resource})
        if resource.get("resourceType") in _EVENTS:
            focus_entries.append(full_url)
    kind = next(
        (r["resourceType"] for r in resources if r.get("resourceType") in _EVENTS),
        "ServiceRequest",
    )
    code, display = _EVENTS[kind]
    header_id = str(uuid.uuid5(NAMESPACE, f"{envelope.message_id}/MessageHeader"))
    header: Json = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": {"system": V2_0003, "code": code, "display": display},
        "source": {
            "name": envelope.sender,
            "endpoint": f"urn:carebroker:partner:{envelope.sender}",
        },
        "focus": [{"reference": url} for url in focus_entries],
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(NAMESPACE, f"{envelope.message_id}/Bundle")),
        "type": "message",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{envelope.message_id}"},
        "timestamp": envelope.received_at.isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}, *entries],
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def to_hl7v2(
    envelope: Envelope,
    version: str | None,
    charset: str | None,
    *,
    receiving_application: str = "",
    receiving_facility: str = "",
) -> bytes:
    """Return the envelope's message as HL7 v2 bytes in ``version`` and ``charset``.

    HL7 v2 input is passed through (MSH-12, MSH-18 and the bytes change only
    when the recipient needs another version or charset); FHIR input is
    translated (results -> ORU^R01, referrals -> REF^I12, lab orders -> OML^O21).
    """
    if envelope.format == "fhir":
        document = loads(envelope.payload)
        if not isinstance(document, dict):
            raise MessageError("payload is not a FHIR resource", location="$")
        result = fhir_to_v2.convert(
            document,
            version=version or "2.5",
            charset=charset or "UNICODE UTF-8",
            control_id=envelope.message_id.hex[:20],
            receiving_application=receiving_application,
            receiving_facility=receiving_facility,
            timestamp=envelope.received_at,
        )
        return result.data
    text, _ = charsets.decode(envelope.payload, envelope.charset)
    changes: dict[int, str] = {}
    message = Message(text)
    if version and message.version != version:
        changes[12] = encode_field(version, message.enc)
    if charset is not None and message.charset != charset:
        changes[18] = encode_field(charset, message.enc)
    if receiving_application:
        changes[5] = encode_field(receiving_application, message.enc)
    if receiving_facility:
        changes[6] = encode_field(receiving_facility, message.enc)
    if not changes and codec_matches(envelope.charset, charset):
        return envelope.payload
    rewritten = replace_fields("\r".join(split_segments(text)), changes) if changes else text
    data, _ = fhir_to_v2.encode(rewritten, charset if charset is not None else message.charset)
    return data


def codec_matches(current: str, label: str | None) -> bool:
    """Tell whether bytes in codec ``current`` already are what charset ``label`` names."""
    if label is None:
        return True
    return charsets.codec_for(label) == current
