"""What one recipient receives: the message in the format, version and charset it reads (pure).

The router calls :func:`render_for` once per (message, recipient) and stores
the result in ``deliveries.payload``, so a retry or a replay sends exactly the
same bytes (same MSH-10, same ``Bundle.identifier``): that is what lets a
partner recognise a resend (domain-requirements §1.4, §1.8). Whichever format
came in, the recipient's ``accepts`` decides what goes out:

- :func:`to_hl7v2` for a recipient that reads HL7 v2. HL7 v2 input is
  re-addressed (HL7 v2.5.1 §2.14.9: MSH-5/6 name the recipient, MSH-12 the
  version it accepts, MSH-18 and the bytes its character set); a character the
  target set cannot hold is written as an ER7 hex escape ``\\Xhh..\\`` of its
  UTF-8 bytes (§2.7.2) and counted in the flags, never dropped. FHIR input is
  translated (results -> ORU^R01, referrals -> REF^I12, lab orders -> OML^O21)
  in the recipient's version and charset.
- :func:`to_fhir_message` for a recipient that reads FHIR: a FHIR R4 message
  Bundle (R4 §3.4: MessageHeader first, with event, source, destination and
  focus). HL7 v2 input is translated along the HL7 v2-to-FHIR IG; FHIR input
  keeps the sender's resources, a resource sent alone is wrapped in a message.
  ``Bundle.identifier`` is ``urn:uuid:<carebroker message id>``: unique per
  message whoever sent it, and the same on every resend.

On the way, whatever the formats: an INS without a qualified identity is
removed (``strip_ins``, flagged ``ins_stripped``, domain-requirements §3.1),
and with OBR-49 ``BCC`` the copies-to list OBR-28 is blanked for every
recipient (``obr28_hidden``). A translation reports what it produced and the
parts it could not map (:class:`Translation`, locations only) so the router
can audit it (``translated``). Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from adapters.hl7v2 import charset as charsets
from adapters.hl7v2 import ins
from adapters.hl7v2.er7 import (
    Encoding,
    Message,
    Segment,
    encode_field,
    replace_fields,
    split_segments,
)
from adapters.hl7v2.ins import INS_OIDS
from adapters.hprim import medecins as hprim_medecins
from adapters.hprim import oru as hprim_oru
from adapters.hprim import sante as hprim_sante
from adapters.translate import fhir_to_v2, v2_to_fhir
from adapters.translate.bundle import NAMESPACE, dumps, loads
from adapters.translate.sampling import should_validate
from adapters.translate.vocabulary import V2_0003
from broker.directory import MssanteEndpoint, Partner
from broker.envelope import Envelope
from broker.errors import MessageError, PermanentError
from routing import cisis

Json = dict[str, Any]
V2_CONTENT_TYPE = "x-application/hl7-v2+er7"
FHIR_CONTENT_TYPE = "application/fhir+json"
HPRIM_FORMATS = {"hprim-medecins": "text/x-hprim-medecins", "hprim-sante": "text/x-hprim-sante"}
HPRIM_CHARSET = "iso-8859-1"  # what HPRIM readers in the field expect, unless `accepts` says
_TRANSLATION_BUGS = (KeyError, IndexError, TypeError, AttributeError, ValueError)
UNMAPPED_SHOWN = 50  # an audit event lists this many unmapped parts, then counts the rest
# What a FHIR resource sent alone means as a message event (HL7 table 0003 codes,
# the events carebroker's v2 -> FHIR translation uses for the same content).
_EVENTS = {
    "DiagnosticReport": ("R01", "ORU^R01^ORU_R01"),
    "Observation": ("R01", "ORU^R01^ORU_R01"),
    "ServiceRequest": ("I12", "REF^I12^REF_I12"),
    "Task": ("I12", "REF^I12^REF_I12"),
    "DocumentReference": ("T02", "MDM^T02^MDM_T02"),
}


class RenderError(PermanentError):
    """The message cannot be rendered for this recipient (it would fail the same way again)."""


@dataclass(frozen=True)
class Translation:
    """What a change of format produced, and what of the input it could not map.

    ``produced`` names resource types with their counts (FHIR out) or the
    message type, version and segments (HL7 v2 out); ``unmapped`` lists
    locations (``PID-8``, ``ZXY segment``, FHIRPaths), never values.
    """

    source: Literal["hl7v2", "fhir"]
    target: Literal["hl7v2", "fhir", "hprim-medecins", "hprim-sante"]
    produced: dict[str, Any]
    unmapped: tuple[str, ...] = ()

    def detail(self) -> dict[str, Any]:
        """Return the audit detail of this translation (ids, codes and locations only)."""
        shown = list(self.unmapped[:UNMAPPED_SHOWN])
        if len(self.unmapped) > UNMAPPED_SHOWN:
            shown.append(f"and {len(self.unmapped) - UNMAPPED_SHOWN} more")
        return {
            "from": self.source,
            "to": self.target,
            "produced": self.produced,
            "unmapped": shown,
        }


@dataclass(frozen=True)
class Rendered:
    """The bytes for one recipient, their media type, what changed, and any translation.

    ``control_id`` is set when the recipient sees another message id than the
    sender's (HL7 v2 written from FHIR has an MSH-10 of its own): the id its
    ACK's MSA-2 echoes.
    """

    payload: bytes = field(repr=False)
    content_type: str
    flags: tuple[str, ...] = ()
    translation: Translation | None = None
    control_id: str | None = None


def render_for(
    envelope: Envelope,
    recipient: Partner,
    *,
    strip_ins: bool = False,
    sender: Partner | None = None,
    timezone: str | None = None,
    validation_sample: float = 0.0,
) -> Rendered:
    """Return what ``recipient`` reads for ``envelope``; raise RenderError if it cannot be made.

    ``sender`` (the partner the message came from) names MSH-3/4 of HL7 v2
    translated from FHIR; ``timezone`` reads HL7 v2 times sent without offset;
    ``validation_sample`` is the share of v2 -> FHIR translations validated
    with fhir.resources (all of them for a recipient with ``validate_fhir``).
    """
    if isinstance(recipient.endpoint, MssanteEndpoint):
        return _mail(envelope, recipient)
    if recipient.accepts is None:
        raise RenderError(f"partner {recipient.id} declares no `accepts`")
    try:
        if recipient.accepts.format == "fhir":
            validate = recipient.validate_fhir or should_validate(
                str(envelope.message_id), validation_sample
            )
            return to_fhir_message(
                envelope, recipient, strip_ins=strip_ins, timezone=timezone, validate=validate
            )
        if recipient.accepts.format in HPRIM_FORMATS:
            return to_hprim(envelope, recipient, strip_ins=strip_ins, sender=sender)
        return to_hl7v2(envelope, recipient, strip_ins=strip_ins, sender=sender)
    except RenderError:
        raise
    except MessageError as exc:
        # The translation's error names the segment/field or FHIRPath, never a value.
        where = f" at {exc.location}" if exc.location else ""
        raise RenderError(
            f"{envelope.control_id} cannot be rendered for {recipient.id}{where}: {exc}"
        ) from exc
    except _TRANSLATION_BUGS as exc:
        # Content a translator did not expect must cost this delivery, not the router's
        # batch: it fails with a reason naming the error type (never its text).
        raise RenderError(
            f"{envelope.control_id} cannot be rendered for {recipient.id}: "
            f"translation failed ({type(exc).__name__})"
        ) from exc


def _mail(envelope: Envelope, recipient: Partner) -> Rendered:
    """Return the MSSanté mail of a CI-SIS document request (``routing/cisis.py``)."""
    try:
        mail = cisis.render_mail(envelope, recipient)
    except MessageError as exc:
        # Names the rule or the element, never a value (the patient's address included).
        raise RenderError(
            f"{envelope.control_id} cannot be mailed to {recipient.id}: {exc}"
        ) from exc
    return Rendered(mail.payload, mail.content_type, mail.flags)


# --- HL7 v2 out -------------------------------------------------------------------------


def to_hl7v2(
    envelope: Envelope,
    recipient: Partner,
    *,
    strip_ins: bool = False,
    sender: Partner | None = None,
) -> Rendered:
    """Return the message as HL7 v2 in the recipient's version and charset, addressed to it."""
    accepts = recipient.accepts
    version = accepts.version if accepts else None
    label = accepts.charset if accepts else None
    if envelope.format == "fhir":
        document = _fhir_document(envelope, strip_ins=strip_ins)
        # Stable per message (a resend keeps it), within the 20 characters of v2.5 MSH-10.
        control_id = envelope.message_id.hex[:20].upper()
        out = fhir_to_v2.convert(
            document,
            version=version or "2.5",
            charset=label or "UNICODE UTF-8",
            sending_facility=sender.msh_facility if sender else envelope.sender.upper(),
            receiving_application=recipient.msh_application,
            receiving_facility=recipient.msh_facility,
            control_id=control_id,
            timestamp=envelope.received_at,
        )
        codec = charsets.codec_for(label or "UNICODE UTF-8")
        segments = Counter(line[:3] for line in out.text.split("\r") if line)
        translation = Translation(
            "fhir",
            "hl7v2",
            {
                "message_type": out.message_type,
                "version": version or "2.5",
                "segments": dict(segments),
            },
            tuple(out.warnings),
        )
        flags = ["translated", *(["ins_stripped"] if _had_ins(envelope, strip_ins) else [])]
        return Rendered(
            out.data,
            f"{V2_CONTENT_TYPE}; charset={codec}",
            tuple(flags),
            translation,
            control_id,
        )
    text, flags = readdress(envelope, recipient, strip_ins=strip_ins)
    codec = charsets.codec_for(label) if label is not None else envelope.charset
    data, escaped = encode_escaping(text, codec)
    if escaped:
        flags.append(f"chars_escaped:{escaped}")
    return Rendered(data, f"{V2_CONTENT_TYPE}; charset={codec}", tuple(flags))


def readdress(
    envelope: Envelope,
    recipient: Partner | None,
    *,
    strip_ins: bool,
    charset_label: str | None = None,
) -> tuple[str, list[str]]:
    """Return the HL7 v2 text for ``recipient`` (MSH-5/6/12/18, INS, OBR-28) and its flags.

    Without a recipient (the FHIR feeds), MSH stays as the sender wrote it.
    """
    try:
        text = envelope.payload.decode(envelope.charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise RenderError(f"{envelope.control_id} cannot be decoded as {envelope.charset}") from exc
    segments = split_segments(text)
    if not segments or not segments[0].startswith("MSH"):
        raise RenderError(f"{envelope.control_id} does not start with MSH")
    enc = Encoding.from_header(segments[0])
    accepts = recipient.accepts if recipient is not None else None
    msh = Segment(segments[0], enc)
    values = (
        {
            5: _encoded(recipient.msh_application, enc),
            6: _encoded(recipient.msh_facility, enc),
        }
        if recipient is not None
        else {}
    )
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
                flags += ["ins_stripped", *(f"ins_{k}" for k in envelope.identity.issues)]
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
    data, substituted = charsets.encode("".join(out), codec)
    return data, escaped + substituted


@lru_cache(maxsize=4096)
def _encoded(value: str, enc: Encoding) -> str:
    """Return a directory value (partner names, versions) encoded once per delimiter set."""
    return encode_field(value, enc)


def _strip_ins(raw: str, enc: Encoding) -> tuple[str, bool]:
    """Remove the PID-3 repetitions claiming to be the INS (§3.1: no INS unless qualified).

    Every claim goes, whatever was wrong with it: a wrong OID or key as much
    as a missing qualified status (adapters/hl7v2/ins.py).
    """
    segment = Segment(raw, enc)
    reps = segment.repetitions(3)
    claims = set(ins.claimed_repetitions(segment))
    kept = [rep for i, rep in enumerate(reps, 1) if i not in claims]
    if not claims:
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


# --- HPRIM out --------------------------------------------------------------------------


def to_hprim(
    envelope: Envelope,
    recipient: Partner,
    *,
    strip_ins: bool = False,
    sender: Partner | None = None,
) -> Rendered:
    """Return a lab result as HPRIM Médecins or HPRIM Santé text for ``recipient``.

    The result is first the HL7 v2 message the recipient would get (FHIR input
    translated, the INS stripped unless qualified), then read into HPRIM
    (``adapters/hprim``). Only results can be written: anything else fails
    this delivery with the reason. A value HPRIM has no type for (an ED
    document) is listed as unmapped, never silently dropped.
    """
    accepts = recipient.accepts
    assert accepts is not None
    if envelope.format == "fhir":
        as_v2 = to_hl7v2(envelope, recipient, strip_ins=strip_ins, sender=sender)
        text = as_v2.payload.decode(as_v2.content_type.rsplit("charset=", 1)[-1])
        flags = [f for f in as_v2.flags if f != "translated"]
    else:
        text, flags = readdress(envelope, recipient, strip_ins=strip_ins)
    message = Message(text)
    if not message.message_type.startswith(("ORU^", "OUL^")):
        raise RenderError(
            f"{envelope.control_id} is {message.message_type or 'not a result'}: "
            f"{accepts.format} carries lab results (ORU) only"
        )
    hprim = hprim_oru.to_hprim(
        message,
        sender_name=sender.name if sender else "",
        receiver=(recipient.msh_facility, recipient.name),
    )
    results = [r for p in hprim.patients for q in p.requests for r in q.results]
    if not results:
        raise RenderError(f"{envelope.control_id} holds no result (OBX) to write as HPRIM")
    if accepts.format == "hprim-medecins":
        qualified = ins.qualified_ins(message) if envelope.identity.ins_qualified else None
        out = hprim_medecins.write(
            hprim,
            ins=qualified[0] if qualified else "",
            recipient=(recipient.msh_facility, recipient.name),
        )
    else:
        out = hprim_sante.write(hprim)
    codec = charsets.codec_for(accepts.charset) if accepts.charset else HPRIM_CHARSET
    data, replaced = charsets.encode(out, codec)
    if replaced:
        flags.append(f"chars_replaced:{replaced}")
    unmapped = tuple(
        f"OBX({n})-5 {r.value_type}" for n, r in enumerate(results, 1) if r.value_type == "ED"
    )
    translation = Translation(
        "fhir" if envelope.format == "fhir" else "hl7v2",
        "hprim-medecins" if accepts.format == "hprim-medecins" else "hprim-sante",
        {"patients": len(hprim.patients), "results": len(results)},
        unmapped,
    )
    return Rendered(
        data,
        f"{HPRIM_FORMATS[accepts.format]}; charset={codec}",
        ("translated", *flags),
        translation,
    )


# --- FHIR out ---------------------------------------------------------------------------


def to_fhir_message(
    envelope: Envelope,
    recipient: Partner,
    *,
    strip_ins: bool = False,
    timezone: str | None = None,
    validate: bool = False,
) -> Rendered:
    """Return a FHIR message Bundle of the envelope's message, addressed to ``recipient``.

    ``validate`` runs fhir.resources validation of a translated Bundle (flag
    ``validated``); an invalid one raises MessageError naming the FHIRPath.
    """
    bundle, flags, translation = fhir_message(
        envelope, recipient, strip_ins=strip_ins, timezone=timezone, validate=validate
    )
    header = bundle["entry"][0]["resource"]
    header["destination"] = [{"name": recipient.id, "endpoint": partner_endpoint(recipient)}]
    return Rendered(dumps(bundle).encode("utf-8"), FHIR_CONTENT_TYPE, tuple(flags), translation)


def fhir_message(
    envelope: Envelope,
    recipient: Partner | None = None,
    *,
    strip_ins: bool = False,
    timezone: str | None = None,
    validate: bool = False,
) -> tuple[Json, list[str], Translation | None]:
    """Return the message as a FHIR message Bundle, its flags and what a translation did.

    HL7 v2 is translated (re-addressed to ``recipient`` first, when there is
    one: the FHIR feeds have none), FHIR wrapped in a message Bundle when it
    is not one. ``Bundle.identifier`` is the carebroker message id.
    """
    flags: list[str] = []
    translation: Translation | None = None
    if envelope.format == "hl7v2":
        # Re-addressed first, so the INS and a blind copies-to list never reach the Bundle.
        text, flags = readdress(envelope, recipient, strip_ins=strip_ins)
        conversion = v2_to_fhir.convert(
            Message(text),
            timezone=timezone,
            # The message's acceptance, not the clock: a re-render gives the same bytes.
            recorded=envelope.received_at.isoformat(timespec="seconds"),
            # fhir.resources validation costs twice the translation and runs in the
            # router's transaction: a sample (adapters/translate/sampling.py), every
            # translation of the corpus being validated by the tests.
            validate=validate,
        )
        if validate:
            flags.append("validated")
        bundle = conversion.bundle
        translation = Translation(
            "hl7v2", "fhir", _resource_counts(bundle), tuple(conversion.warnings)
        )
        flags.append("translated")
    else:
        bundle = _as_message(_fhir_document(envelope, strip_ins=strip_ins), envelope)
        if _had_ins(envelope, strip_ins):
            flags.append("ins_stripped")
    bundle["identifier"] = {
        "system": "urn:ietf:rfc:3986",
        "value": f"urn:uuid:{envelope.message_id}",
    }
    header = bundle["entry"][0]["resource"]
    # The copy comes from carebroker: naming the sender's system as its source
    # would have the recipient answer (or trust) it as if it came from there.
    # Who sent it stays in MessageHeader.sender (issue 13).
    header["source"] = dict(BROKER_SOURCE)
    if not header.get("sender") and envelope.sender:
        header["sender"] = {
            "identifier": {"system": "urn:carebroker:partner", "value": envelope.sender}
        }
    return bundle, flags, translation


# MessageHeader.source of every FHIR message carebroker delivers.
BROKER_SOURCE = {
    "name": "carebroker",
    "software": "carebroker",
    "endpoint": "urn:carebroker:broker",
}


def partner_endpoint(partner: Partner) -> str:
    """Return the endpoint URI a MessageHeader names for a partner."""
    url = getattr(partner.endpoint, "url", "")
    return str(url) if url else f"urn:carebroker:partner:{partner.id}"


def _fhir_document(envelope: Envelope, *, strip_ins: bool) -> Json:
    """Return the FHIR input as JSON, without INS identifiers when they must not travel."""
    document = loads(envelope.payload)
    if not isinstance(document, dict):
        raise MessageError("payload is not a FHIR resource", location="$")
    if strip_ins:
        for patient in _resources(document, "Patient"):
            identifiers = patient.get("identifier") or []
            patient["identifier"] = [i for i in identifiers if not _is_ins(i)]
            if not patient["identifier"]:
                del patient["identifier"]
    return document


def _had_ins(envelope: Envelope, strip_ins: bool) -> bool:
    return strip_ins and envelope.identity.ins_present


def _is_ins(identifier: Any) -> bool:
    system = str(identifier.get("system", "")) if isinstance(identifier, dict) else ""
    return system.removeprefix("urn:oid:") in INS_OIDS


def _resources(document: Json, kind: str) -> list[Json]:
    """Return the resources of ``kind``: the document itself, or its Bundle entries'."""
    if document.get("resourceType") == kind:
        return [document]
    entries = document.get("entry", []) if document.get("resourceType") == "Bundle" else []
    return [
        entry["resource"]
        for entry in entries or []
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == kind
    ]


def _resource_counts(bundle: Json) -> dict[str, int]:
    counts = Counter(
        entry["resource"]["resourceType"]
        for entry in bundle.get("entry", [])
        if isinstance(entry.get("resource"), dict)
    )
    return dict(counts)


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
        "source": dict(BROKER_SOURCE),
        "focus": [{"reference": url} for url in focus_entries],
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(NAMESPACE, f"{envelope.message_id}/Bundle")),
        "type": "message",
        "timestamp": envelope.received_at.isoformat(timespec="seconds"),
        "entry": [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}, *entries],
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
