"""Document segments -> DocumentReference (MDM, and a document inside an ORU order).

Maps (v2-to-FHIR IG): TXA[DocumentReference], OBX[DocumentReference],
NTE[DocumentReference]. CON (consent, no IG sheet here) becomes a Consent.

MDM carries the document in OBX-5 after TXA: text lines (TX/FT/ST) are
joined into one ``text/plain`` attachment, an ED (a PDF, a CDA in base64) is
kept as sent, an RP becomes a URL. Document completion status (TXA-17,
table 0271) has no IG vocabulary map: authenticated / legally authenticated
read ``final``, every other state ``preliminary``, and the v2 code is kept.
"""

from __future__ import annotations

import base64

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    alternate_code,
    attachment,
    codeable,
    first,
    identifier_ei,
    identifier_value,
    instant,
    mapped_coding,
    prune,
    reference_pointer,
    text,
    values,
    whole,
)
from adapters.translate.parties import practitioner
from adapters.translate.v2_to_fhir import Context, Handler

_DOC_STATUS = {"AU": "final", "LA": "final"}
_AVAILABILITY = {"AV": "current", "OB": "superseded", "CA": "entered-in-error", "UN": "current"}
_TEXT_TYPES = frozenset({"TX", "FT", "ST"})


def txa(ctx: Context, seg: Segment) -> set[int]:
    """TXA -> DocumentReference (TXA[DocumentReference])."""
    completion = text(seg, 17)
    authors = [practitioner(ctx, v) for v in values(seg, 9)]
    authenticator = practitioner(ctx, first(seg, 10))
    identifiers = [
        i
        for i in (
            identifier_ei(first(seg, 14), "PLAC"),
            identifier_ei(first(seg, 15), "FILL"),
            identifier_value(text(seg, 16)),
        )
        if i
    ]
    parent = identifier_ei(first(seg, 13))
    availability = text(seg, 19)
    document: Json = {
        "resourceType": "DocumentReference",
        "masterIdentifier": identifier_ei(first(seg, 12)),
        "identifier": identifiers,
        "status": _AVAILABILITY.get(availability, "current"),
        "_status": {"extension": [alternate_code(availability, "HL70273")]}
        if availability in ("CA", "OB", "UN")
        else None,
        "docStatus": _DOC_STATUS.get(completion, "preliminary") if completion else None,
        "_docStatus": {"extension": [alternate_code(completion, "HL70271")]}
        if completion
        else None,
        "type": codeable(first(seg, 2), "HL70270"),
        "category": [{"coding": [{"code": whole(seg, 24)}]}] if whole(seg, 24) else [],
        "author": [{"reference": a} for a in authors if a],
        "authenticator": {"reference": authenticator} if authenticator else None,
        "relatesTo": [{"code": "appends", "target": {"identifier": parent}}] if parent else [],
        "description": whole(seg, 25),
        "securityLabel": [
            {"coding": [mapped_coding(text(seg, 18), maps.DOCUMENT_CONFIDENTIALITY, "HL70272")]}
        ]
        if text(seg, 18)
        else [],
        "context": {"related": [{"reference": o.request_ref} for o in ctx.orders]},
        "content": [],
    }
    date = instant(ctx.time(text(seg, 6), "TXA-6"))
    if date:
        document["date"] = date
    period: Json = {}
    ctx.set_time(period, "start", text(seg, 4), "TXA-4")
    if period:
        document["context"]["period"] = period
    media = text(seg, 3)
    if media:
        document["_media"] = media
    document = prune(document)
    ctx.document = document
    ctx.documents.append(document)
    ref = ctx.add(document, f"DocumentReference/{ctx.index}")
    ctx.document_ref = ref
    ctx.about_patient(document)
    if ctx.family == "MDM" or not ctx.focus:
        ctx.focus.append(ref)
    ctx.note_target = document
    ctx.scope = "document"
    return {1, 2, 3, 4, 6, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 24, 25}


def document_content(ctx: Context, seg: Segment) -> set[int]:
    """OBX in MDM -> DocumentReference.content (OBX[DocumentReference])."""
    document = ctx.document
    assert document is not None
    kind = text(seg, 2).upper()
    reps = values(seg, 5)
    if not reps:
        return {1, 2, 3}
    if kind in _TEXT_TYPES:
        lines: list[str] = document.setdefault("_lines", [])
        lines.extend(r.text() for r in reps)
        return {1, 2, 3, 4, 5, 11}
    found = attachment(reps[0]) if kind == "ED" else reference_pointer(reps[0])
    if found is None:
        ctx.problems.append(f"OBX({ctx.index})-5 {kind or 'empty'} holds no document")
        return {1, 2, 3}
    document.setdefault("content", []).append({"attachment": found})
    return {1, 2, 3, 4, 5, 11}


def document_note(ctx: Context, comment: str) -> None:
    """NTE in MDM -> another line of the document text (NTE[DocumentReference])."""
    assert ctx.document is not None
    ctx.document.setdefault("_lines", []).append(comment)


def finish_document(document: Json) -> None:
    """Turn the collected text lines into the document's text attachment."""
    lines = document.pop("_lines", [])
    media = document.pop("_media", "")
    content = document.setdefault("content", [])
    if lines:
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode()
        content.insert(0, {"attachment": {"contentType": "text/plain", "data": data}})
    if not content:
        content.append({"attachment": {"title": "document not included in the message"}})
    if media and "contentType" not in content[0]["attachment"]:
        from adapters.translate.vocabulary import mime_type

        kind = mime_type(media, "")
        if kind:
            content[0]["attachment"]["contentType"] = kind


def con(ctx: Context, seg: Segment) -> set[int]:
    """CON (consent) -> Consent."""
    consent: Json = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            codeable(first(seg, 2), "HL70496")
            or {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}
        ],
        "identifier": [i for i in (identifier_ei(first(seg, 3)),) if i],
    }
    ctx.set_time(consent, "dateTime", text(seg, 11) or text(seg, 12), "CON-11")
    consent = prune(consent)
    ctx.add(consent, f"Consent/{ctx.index}")
    ctx.about_patient(consent, "patient")
    return {1, 2, 3, 11, 12}


HANDLERS: dict[str, Handler] = {"TXA": txa, "CON": con}
