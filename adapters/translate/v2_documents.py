"""Document and scheduling segments -> DocumentReference (MDM) and Appointment (SIU).

Maps (v2-to-FHIR IG): TXA[DocumentReference], OBX[DocumentReference],
NTE[DocumentReference], SCH[Appointment], AIS/AIG/AIL/AIP[Appointment].

MDM^T02 carries the document in OBX-5 after TXA: text lines (TX/FT/ST) are
joined into one ``text/plain`` attachment, an ED (a PDF, a CDA in base64) is
kept as sent, an RP becomes a URL. Document completion status (TXA-17,
table 0271) has no IG vocabulary map: authenticated / legally authenticated
read ``final``, every other state ``preliminary``, and the v2 code is kept.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    alternate_code,
    attachment,
    codeable,
    decimal,
    first,
    identifier_ei,
    identifier_value,
    instant,
    mapped_coding,
    practitioner,
    prune,
    reference_pointer,
    text,
    values,
)
from adapters.translate.v2_patient import location
from adapters.translate.v2_to_fhir import Context, Handler

_DOC_STATUS = {"AU": "final", "LA": "final"}
_AVAILABILITY = {"AV": "current", "OB": "superseded", "CA": "entered-in-error", "UN": "current"}
_TEXT_TYPES = frozenset({"TX", "FT", "ST"})


def txa(ctx: Context, seg: Segment) -> set[int]:
    """TXA -> DocumentReference (TXA[DocumentReference])."""
    completion = text(seg, 17)
    authors = [ctx.party(practitioner(v)) for v in values(seg, 9)]
    authenticator = ctx.party(practitioner(first(seg, 10)))
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
    document: Json = {
        "resourceType": "DocumentReference",
        "masterIdentifier": identifier_ei(first(seg, 12)),
        "identifier": identifiers,
        "status": _AVAILABILITY.get(text(seg, 19), "current"),
        "docStatus": _DOC_STATUS.get(completion, "preliminary") if completion else None,
        "_docStatus": {"extension": [alternate_code(completion, "HL70271")]}
        if completion
        else None,
        "type": codeable(first(seg, 2), "HL70270"),
        "date": instant(ctx.time(text(seg, 6), "TXA-6")),
        "author": [{"reference": a} for a in authors if a],
        "authenticator": {"reference": authenticator} if authenticator else None,
        "relatesTo": [{"code": "replaces", "target": {"identifier": parent}}] if parent else [],
        "description": text(seg, 25),
        "securityLabel": [
            {"coding": [mapped_coding(text(seg, 18), maps.DOCUMENT_CONFIDENTIALITY, "HL70272")]}
        ]
        if text(seg, 18)
        else [],
        "context": {
            "period": {"start": ctx.time(text(seg, 4), "TXA-4")},
            "related": [{"reference": o.request_ref} for o in ctx.orders],
        },
        "content": [],
    }
    ctx.document = document
    ctx.documents.append(document)
    ref = ctx.builder.add(document, "DocumentReference")
    ctx.about_patient(document)
    ctx.focus.append(ref)
    ctx.note_target = document
    return {1, 2, 4, 6, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 25}


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
    document["content"].append({"attachment": found})
    return {1, 2, 3, 4, 5, 11}


def document_note(ctx: Context, comment: str) -> None:
    """NTE in MDM -> another line of the document text (NTE[DocumentReference])."""
    assert ctx.document is not None
    ctx.document.setdefault("_lines", []).append(comment)


def finish_document(document: Json) -> None:
    """Turn the collected text lines into the document's text attachment."""
    lines = document.pop("_lines", [])
    if lines:
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode()
        document["content"].insert(0, {"attachment": {"contentType": "text/plain", "data": data}})
    if not document["content"]:
        document["content"] = [{"attachment": {"title": "document not included in the message"}}]


# --- scheduling (SIU^S12) -------------------------------------------------------------


def sch(ctx: Context, seg: Segment) -> set[int]:
    """SCH -> Appointment (SCH[Appointment])."""
    status_value = first(seg, 25)
    status = ""
    if status_value:
        code = status_value.c(1)
        target = maps.APPOINTMENT_STATUS.get(code) or maps.APPOINTMENT_STATUS.get(code.capitalize())
        status = target[0] if target else ""
    reason = first(seg, 7)
    timing = first(seg, 11)
    start = ctx.time(timing.c(4), "SCH-11.4") if timing else None
    end = ctx.time(timing.c(5), "SCH-11.5") if timing else None
    duration = decimal(text(seg, 9))
    contacts = [(n, ctx.party(practitioner(v))) for n in (12, 16, 20) for v in values(seg, n)]
    appointment: Json = {
        "resourceType": "Appointment",
        "identifier": [
            i
            for i in (identifier_ei(first(seg, 1), "PLAC"), identifier_ei(first(seg, 2), "FILL"))
            if i
        ],
        "status": status or ("booked" if ctx.trigger == "S12" else "proposed"),
        "reasonCode": [codeable(reason, "HL70276")] if reason else [],
        "appointmentType": codeable(first(seg, 8), "HL70277"),
        "description": text(seg, 6) or None,
        "start": instant(start),
        "end": instant(end),
        "minutesDuration": int(duration)
        if duration is not None and duration == duration.to_integral() and duration > 0
        else None,
        "participant": [
            {"actor": {"reference": ref}, "status": "accepted"} for _, ref in contacts if ref
        ],
        "basedOn": [
            {"identifier": i, "type": "ServiceRequest"}
            for i in (identifier_ei(first(seg, 26), "PLAC"), identifier_ei(first(seg, 27), "FILL"))
            if i
        ],
    }
    ctx.appointment = appointment
    ref = ctx.builder.add(appointment, "Appointment")
    ctx.about_patient(appointment, "participant")
    ctx.focus.append(ref)
    ctx.note_target = appointment
    return {1, 2, 6, 7, 8, 9, 11, 12, 16, 20, 25, 26, 27}


def _start_and_duration(ctx: Context, seg: Segment, start_field: int, duration_field: int) -> None:
    """Fill Appointment.start/end from a resource segment when SCH gave none."""
    appointment = ctx.appointment
    if appointment is None or appointment.get("start"):
        return
    start = instant(ctx.time(text(seg, start_field), f"{seg.name}-{start_field}"))
    if not start:
        return
    appointment["start"] = start
    minutes = decimal(text(seg, duration_field))
    unit = text(seg, duration_field + 1).upper()
    if minutes is not None and unit in ("", "MIN", "M"):
        begin = datetime.fromisoformat(start)
        appointment["end"] = (begin + timedelta(minutes=float(minutes))).isoformat()
        if minutes == minutes.to_integral() and minutes > 0:
            appointment["minutesDuration"] = int(minutes)


def ais(ctx: Context, seg: Segment) -> set[int]:
    """AIS -> Appointment.serviceType and times (AIS[Appointment])."""
    if ctx.appointment is None:
        return {1}
    service = codeable(first(seg, 3))
    if service:
        ctx.appointment.setdefault("serviceType", []).append(service)
    _start_and_duration(ctx, seg, 4, 7)
    ctx.note_target = ctx.appointment
    return {1, 2, 3, 4, 7, 8}


def aig(ctx: Context, seg: Segment) -> set[int]:
    """AIG -> a participant naming a general resource (AIG[Appointment])."""
    resource = first(seg, 3)
    if ctx.appointment is None or not resource:
        return {1}
    ctx.appointment.setdefault("participant", []).append(
        prune(
            {
                "type": [codeable(first(seg, 4))],
                "actor": {"display": resource.c(2) or resource.c(1)},
                "status": "accepted",
            }
        )
    )
    _start_and_duration(ctx, seg, 8, 11)
    return {1, 2, 3, 4, 8, 11, 12}


def ail(ctx: Context, seg: Segment) -> set[int]:
    """AIL -> a participant naming a Location (AIL[Appointment])."""
    place = location(ctx, first(seg, 3))
    if ctx.appointment is None or not place:
        return {1}
    ctx.appointment.setdefault("participant", []).append(
        {"actor": {"reference": place}, "status": "accepted"}
    )
    _start_and_duration(ctx, seg, 6, 9)
    return {1, 2, 3, 6, 9, 10}


def aip(ctx: Context, seg: Segment) -> set[int]:
    """AIP -> a participant naming a Practitioner (AIP[Appointment])."""
    person = ctx.party(practitioner(first(seg, 3)))
    if ctx.appointment is None or not person:
        return {1}
    ctx.appointment.setdefault("participant", []).append(
        prune(
            {
                "type": [codeable(first(seg, 4))],
                "actor": {"reference": person},
                "status": "accepted",
            }
        )
    )
    _start_and_duration(ctx, seg, 6, 9)
    return {1, 2, 3, 4, 6, 9, 10}


def rgs(ctx: Context, seg: Segment) -> set[int]:
    """RGS only opens a resource group: nothing to translate."""
    return {1, 2}


HANDLERS: dict[str, Handler] = {
    "TXA": txa,
    "SCH": sch,
    "AIS": ais,
    "AIG": aig,
    "AIL": ail,
    "AIP": aip,
    "RGS": rgs,
}
