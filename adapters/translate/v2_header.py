"""Message header segments -> MessageHeader, its organisations and devices; the final wiring.

Maps (v2-to-FHIR IG): MSH[MessageHeader], MSH[Provenance-Source],
HD[Organization] (MSH-4, MSH-6), XON[Organization] (MSH-22, MSH-23),
SFT[Device], SFT[MessageHeader]. :func:`finish` ties the resources together
once every segment is read: subjects and encounters (a resource read before
PID learns its patient at the end), the message's focus, and the documents
assembled from several segments.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import Json, Value, first, text, universal_id, values
from adapters.translate.parties import (
    device_hd,
    hd_organization,
    organization_xon,
)
from adapters.translate.v2_to_fhir import Context, Handler
from adapters.translate.vocabulary import V2_0003

DATA_ABSENT_URL = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def _endpoint(value: Value | None) -> Json:
    """HD[MessageHeader.source-endpoint]: the URI HD.2 makes, else the data-absent reason."""
    if value and value.c(2):
        kind = value.c(3).upper()
        uri = universal_id(value.c(2), value.c(3))
        if kind == "DNS":
            uri = f"urn:dns:{value.c(2)}"
        elif kind == "URI":
            uri = value.c(2)
        return {"endpoint": uri}
    return {"_endpoint": {"extension": [{"url": DATA_ABSENT_URL, "valueCode": "unknown"}]}}


def _sending_organization(ctx: Context, msh: Segment) -> str:
    """MSH-4 -> the sender Organization (HD[Organization]), MSH-17 its country."""
    resource = hd_organization(first(msh, 4))
    if resource is None:
        return ""
    country = text(msh, 17)
    if country:
        resource["address"] = [{"country": country}]
    responsible = organization_xon(ctx, first(msh, 22))
    if responsible:
        resource["partOf"] = {"reference": responsible}
    return ctx.builder.add_shared(resource, f"Organization|HD|{msh.field(4)}|sender")


def _receiving_organization(ctx: Context, msh: Segment) -> str:
    """MSH-6 -> the receiver Organization; MSH-23, when given, is the receiver instead."""
    resource = hd_organization(first(msh, 6))
    receiving = organization_xon(ctx, first(msh, 23))
    if resource is None:
        return receiving
    if receiving:
        resource["partOf"] = {"reference": receiving}
    reference = ctx.builder.add_shared(resource, f"Organization|HD|{msh.field(6)}")
    return receiving or reference


def message_header(ctx: Context, msh: Segment) -> Json:
    """MSH (+ SFT) -> MessageHeader (MSH[MessageHeader], SFT[MessageHeader])."""
    application = first(msh, 3)
    source_override = first(msh, 24)
    named = source_override or application
    source: Json = {"name": named.c(1) if named else ""}
    source.update(_endpoint(named))
    receiving = first(msh, 5)
    destination_override = first(msh, 25)
    addressed = destination_override or receiving
    destination: Json = {"name": addressed.c(1) if addressed else ""}
    destination.update(_endpoint(addressed))
    sender = _sending_organization(ctx, msh)
    receiver = _receiving_organization(ctx, msh)
    if receiver:
        destination["receiver"] = {"reference": receiver}
    if receiving and source_override:
        target = device_hd(ctx, receiving)
        if target:
            destination["target"] = {"reference": target}
    processing = first(msh, 11)
    tags = []
    if processing:
        code = processing.c(1)
        target_code = maps.PROCESSING_ID.get(code)
        tags.append(
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0103",
                "code": code,
                "display": target_code[1] if target_code else "",
            }
        )
        if processing.c(2):
            tags.append(
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0207", "code": processing.c(2)}
            )
    security = [{"display": v.text()} for v in values(msh, 8)]
    header: Json = {
        "resourceType": "MessageHeader",
        "id": ctx.builder.make_id("MessageHeader"),
        "meta": {"tag": tags, "security": security},
        "eventCoding": {
            "system": V2_0003,
            "code": ctx.trigger,
            "display": msh.get(9).replace(msh.enc.subcomponent, "^"),
        },
        "source": source,
        "destination": [destination],
    }
    if sender:
        header["sender"] = {"reference": sender}
    responsible = organization_xon(ctx, first(msh, 22))
    if responsible:
        header["responsible"] = {"reference": responsible}
    language = text(msh, 19)
    if language:
        header["language"] = language
    if application and source_override:
        device_hd(ctx, application)
    return header


def sft(ctx: Context, seg: Segment) -> set[int]:
    """SFT -> Device (SFT[Device]); the first also names the MessageHeader's software."""
    vendor = first(seg, 1)
    manufacturer = (
        vendor.c(1) if vendor and not (len(vendor.parts()) >= 10 and vendor.c(10)) else ""
    )
    device: Json = {
        "resourceType": "Device",
        "manufacturer": manufacturer,
        "deviceName": [{"name": text(seg, 3), "type": "manufacturer-name"}] if text(seg, 3) else [],
        "modelNumber": text(seg, 4),
        "note": [{"text": v.text()} for v in values(seg, 5)],
    }
    version = text(seg, 2)
    installed = ctx.time(text(seg, 6), "SFT-6")
    if version or installed:
        device["version"] = [
            {
                "value": version or "unknown",
                "extension": [
                    {
                        "url": "https://hl7.org/fhir/5.0/StructureDefinition/extension-Device.version.installDate",
                        "valueDateTime": installed,
                    }
                ]
                if installed
                else [],
            }
        ]
    ctx.builder.add_shared(device, f"Device|SFT|{seg.raw}")
    return {1, 2, 3, 4, 5, 6}


def _source_software(ctx: Context, header: Json) -> None:
    sft_segment = ctx.message.segment("SFT")
    if sft_segment is not None:
        header["source"]["software"] = text(sft_segment, 3)
        header["source"]["version"] = text(sft_segment, 2)


_ENCOUNTER_OF = frozenset(
    {
        "Observation",
        "DiagnosticReport",
        "ServiceRequest",
        "Condition",
        "Procedure",
        "DocumentReference",
    }
)
_REQUIRED_SUBJECT = {
    "ServiceRequest": "subject",
    "RelatedPerson": "patient",
    "AllergyIntolerance": "patient",
    "Condition": "subject",
    "Procedure": "subject",
    "Immunization": "patient",
    "MedicationRequest": "subject",
    "MedicationAdministration": "subject",
    "EpisodeOfCare": "patient",
    "Coverage": "beneficiary",
    "ChargeItem": "subject",
    "MedicationDispense": "subject",
}


def finish(ctx: Context, header: Json) -> None:
    """Tie the resources together once every segment is read: subjects, focus, documents."""
    from adapters.translate.v2_documents import finish_document

    _source_software(ctx, header)
    patient = {"reference": ctx.patient_ref} if ctx.patient_ref else None
    for resource, element in ctx.needs_subject:
        if element == "target":  # EVN's Provenance: about the patient and the visit
            targets = [r for r in (ctx.patient_ref, ctx.encounter_ref) if r]
            resource["target"] = [{"reference": r} for r in targets] or [
                {"reference": f"urn:uuid:{header['id']}"}
            ]
            continue
        if element == "participant":  # Appointment: the patient attends
            if patient is not None:
                resource.setdefault("participant", []).insert(
                    0, {"actor": dict(patient), "status": "accepted"}
                )
            continue
        if element == "subject[]":  # Account.subject is a list
            if patient is not None:
                resource.setdefault("subject", [dict(patient)])
            continue
        if patient is not None and element not in resource:
            resource[element] = dict(patient)
        if ctx.encounter_ref and resource["resourceType"] in _ENCOUNTER_OF:
            key = "context" if resource["resourceType"] == "DocumentReference" else "encounter"
            if key == "encounter":
                resource.setdefault("encounter", {"reference": ctx.encounter_ref})
    for resource, element in ctx.needs_subject:
        required = _REQUIRED_SUBJECT.get(resource["resourceType"])
        if required == element and element not in resource:
            # FHIR requires a subject; a message without PID says nothing about whom.
            resource[element] = {"display": "patient not identified in the message"}
            ctx.problems.append(f"{resource['resourceType']} has no patient (no PID segment)")
    for document in ctx.documents:
        finish_document(document)
    if not ctx.focus and ctx.patient_ref:
        ctx.focus.append(ctx.patient_ref)
    header["focus"] = [{"reference": ref} for ref in dict.fromkeys(ctx.focus)]
    if ctx.response:
        header["response"] = ctx.response


_ACK_CODES = {
    "AA": "ok",
    "CA": "ok",
    "AE": "fatal-error",
    "CE": "fatal-error",
    "AR": "transient-error",
    "CR": "transient-error",
}


def msa(ctx: Context, seg: Segment) -> set[int]:
    """MSA -> MessageHeader.response (MSA[MessageHeader]), applied when the Bundle is finished."""
    ctx.response = {
        "code": _ACK_CODES.get(text(seg, 1), "fatal-error"),
        "identifier": text(seg, 2) or "unknown",
    }
    return {1, 2}


HANDLERS: dict[str, Handler] = {"SFT": sft, "MSA": msa}
