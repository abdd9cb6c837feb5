"""Result segments -> Observation and Specimen.

Maps (v2-to-FHIR IG): OBX[Observation], OBX[Observation-Component] (a
repeating OBX-5 is one component each), SPM[Specimen]. An OBX of type ED
(embedded document, e.g. a PDF report) or RP (a pointer to one) is an
Observation with the IG's R5 ``valueAttachment`` extension *and* a
DiagnosticReport presenting the document (``presentedForm``), where FHIR
readers look for a report document. In MDM, the OBX after TXA carry
the document itself (:mod:`adapters.translate.v2_documents`).
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    attachment,
    codeable,
    cq_quantity,
    decimal,
    first,
    hd_system,
    identifier_ei,
    prune,
    quantity,
    reference_pointer,
    structured_numeric,
    text,
    typed,
    universal_id_type,
    values,
)
from adapters.translate.parties import (
    identifier,
    organization_xon,
    practitioner,
    practitioner_role,
)
from adapters.translate.v2_orders import VALUE_ATTACHMENT_URL, status_of
from adapters.translate.v2_to_fhir import Context, Handler

V2_0443 = "http://terminology.hl7.org/CodeSystem/v2-0443"
_EXT = "http://hl7.org/fhir/StructureDefinition/"
_RESPONSIBLE_OBSERVER = {
    "coding": [{"code": "RO", "display": "Responsible Observer", "system": V2_0443}]
}
_MEDICAL_DIRECTOR = {"coding": [{"code": "MDIR", "display": "Medical Director", "system": V2_0443}]}


def obx(ctx: Context, seg: Segment) -> set[int]:
    """OBX -> Observation (OBX[Observation]); in MDM, document content instead."""
    if ctx.document is not None and ctx.scope == "document" and ctx.family == "MDM":
        from adapters.translate.v2_documents import document_content

        return document_content(ctx, seg)
    value_type = text(seg, 2)
    code = codeable(first(seg, 3))
    status, extra = status_of(text(seg, 11), maps.OBSERVATION_STATUS, "HL70085", "unknown")
    observation: Json = {
        "resourceType": "Observation",
        "status": status,
        "_status": extra,
        "code": code or {"text": "unspecified"},
    }
    document = _observation_value(ctx, seg, value_type, observation)
    ranges = [r.text() for r in values(seg, 7)]
    if ranges:
        observation["referenceRange"] = [{"text": r} for r in ranges]
    observation["interpretation"] = [
        c for v in values(seg, 8) if v.c(1) and (c := codeable(v, "HL70078", maps.INTERPRETATION))
    ]
    nature = [codeable(v, "HL70080", maps.NATURE_OF_ABNORMAL_TESTING) for v in values(seg, 10)]
    extensions = observation.setdefault("extension", [])
    extensions.extend(
        {"url": _EXT + "observation-nature-of-abnormal-test", "valueCodeableConcept": n}
        for n in nature
        if n
    )
    sub_id = text(seg, 4)
    if sub_id:
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/observation-v2-subid",
                "valueString": sub_id,
            }
        )
    ctx.set_time(observation, "effectiveDateTime", text(seg, 14), "OBX-14")
    performers = []
    for value in values(seg, 16):
        person = practitioner(ctx, value)
        if person:
            performers.append(
                {
                    "reference": practitioner_role(
                        ctx, person, code=_RESPONSIBLE_OBSERVER, key="OBX-16"
                    )
                }
            )
    lab = organization_xon(
        ctx,
        first(seg, 23),
        source=seg.field(24),
        address=[a for v in values(seg, 24) if (a := _address(v))],
    )
    director = practitioner(ctx, first(seg, 25))
    if director:
        performers.append(
            {
                "reference": practitioner_role(
                    ctx,
                    director,
                    code=_MEDICAL_DIRECTOR,
                    key=f"OBX-25|{lab}",
                    organization={"reference": lab} if lab else None,
                )
            }
        )
    if lab:
        performers.append({"reference": lab})
    observation["performer"] = performers
    observation["method"] = codeable(first(seg, 17))
    device = _equipment(ctx, seg)
    if device:
        observation["device"] = {"reference": device}
    observation["bodySite"] = codeable(first(seg, 20))
    instance = identifier_ei(first(seg, 21))
    if instance:
        instance["type"] = typed("FILL")
        observation["identifier"] = [instance]
    category = text(seg, 29)
    if category:
        observation["category"] = [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0936", "code": category}
                ]
            }
        ]
    if code is None:
        ctx.problems.append("OBX-3 is empty; Observation.code set to 'unspecified'")
    ref = ctx.add(observation, f"Observation/{ctx.index}")
    ctx.about_patient(observation)
    order = ctx.order
    scope = ctx.scope
    if order is not None and scope in ("order", "obr", "observation", "specimen"):
        if order.report is not None:
            order.report.setdefault("result", []).append({"reference": ref})
        else:
            order.request.setdefault("supportingInfo", []).append({"reference": ref})
        observation["basedOn"] = [{"reference": order.request_ref}]
        if order.specimens and scope == "specimen":
            observation["specimen"] = {"reference": order.specimens[-1]}
        order.observations.append(observation)
    elif ctx.referral is not None:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": ref})
    elif ctx.appointment is not None:
        ctx.appointment.setdefault("supportingInformation", []).append({"reference": ref})
    elif ctx.immunization is not None:
        observation["partOf"] = [{"reference": f"urn:uuid:{ctx.immunization['id']}"}]
    if document is not None:
        _document_report(ctx, seg, observation, document)
    ctx.observation = observation
    ctx.observation_ref = ref
    ctx.note_target = observation
    if scope != "specimen":
        ctx.scope = "observation"
    return {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 14, 16, 17, 18, 20, 21, 23, 24, 25, 29}


def _document_report(ctx: Context, seg: Segment, observation: Json, document: Json) -> None:
    """An OBX of type ED or RP -> a DiagnosticReport presenting the document.

    FHIR readers look for a report's document in ``DiagnosticReport.presentedForm``;
    the Observation keeps it too (the IG's valueAttachment extension), which is
    what FHIR -> v2 writes back, so this report adds no OBX on the way back.
    """
    status, extra = status_of(text(seg, 11), maps.RESULT_STATUS, "HL70123", "unknown")
    report: Json = {
        "resourceType": "DiagnosticReport",
        "identifier": [dict(i) for i in observation.get("identifier", [])],
        "basedOn": [{"reference": ctx.order.request_ref}] if ctx.order is not None else [],
        "status": status,
        "_status": extra,
        "code": observation["code"],
        "presentedForm": [document],
        "performer": [dict(p) for p in observation.get("performer", [])],
        "specimen": [dict(observation["specimen"])] if "specimen" in observation else [],
    }
    if "effectiveDateTime" in observation:
        report["effectiveDateTime"] = observation["effectiveDateTime"]
    ctx.add(report, f"DiagnosticReport/OBX/{ctx.index}")
    ctx.about_patient(report)


def _equipment(ctx: Context, seg: Segment) -> str:
    """OBX-18 -> one Device, an identifier per repetition (EI, typed by EI.4, table 0301)."""
    identifiers = []
    for value in values(seg, 18):
        found: Json = {"value": value.c(1)}
        system = hd_system(value.c(2), value.c(3), value.c(4))
        if system:
            found["system"] = system
        kind = universal_id_type(value.c(4))
        if kind:
            found["type"] = kind
        found = prune(found)
        if found:
            identifiers.append(found)
    if not identifiers:
        return ""
    return ctx.builder.add_shared(
        {"resourceType": "Device", "identifier": identifiers}, f"Device|OBX-18|{seg.field(18)}"
    )


def _address(value: Value) -> Json | None:
    from adapters.translate.datatypes import address

    return address(value)


def _observation_value(
    ctx: Context, seg: Segment, value_type: str, observation: Json
) -> Json | None:
    """OBX-5 by OBX-2 -> value[x], components, or an attachment; return an ED document."""
    reps = values(seg, 5)
    units = first(seg, 6)
    if not reps:
        return None
    kind = value_type.upper()
    if kind in ("ST", "TX", "FT"):
        observation["valueString"] = "\n".join(r.text() for r in reps)
        return None
    if kind == "ED":
        document = attachment(reps[0])
        if document is None:
            ctx.problems.append(f"OBX({ctx.index})-5 ED holds no data")
            return None
        observation["extension"] = [{"url": VALUE_ATTACHMENT_URL, "valueAttachment": document}]
        return document
    if kind == "RP":
        pointer = reference_pointer(reps[0])
        if pointer:
            observation["extension"] = [{"url": VALUE_ATTACHMENT_URL, "valueAttachment": pointer}]
        return pointer
    converted = [_one_value(ctx, kind, r, units) for r in reps]
    converted = [c for c in converted if c[0]]
    if not converted:
        return None
    if len(converted) == 1:
        name, value = converted[0]
        observation[name] = value
    else:  # OBX[Observation-Component]: a repeating OBX-5 is one component each
        component_code = codeable(first(seg, 3)) or {"text": "unspecified"}
        ranges = [{"text": r.text()} for r in values(seg, 7)]
        observation["component"] = [
            prune({"code": component_code, name: value, "referenceRange": ranges})
            for name, value in converted
        ]
    return None


def _one_value(ctx: Context, kind: str, value: Value, units: Value | None) -> tuple[str, object]:
    if kind == "" and decimal(value.c(1)) is not None:
        ctx.problems.append(f"OBX({ctx.index})-2 is empty; a numeric OBX-5 read as NM")
        kind = "NM"
    if kind == "NM":
        number = decimal(value.c(1))
        if number is None:
            ctx.problems.append(f"OBX({ctx.index})-5 is not a number; kept as text")
            return "valueString", value.text()
        return "valueQuantity", quantity(number, units)
    if kind in ("CWE", "CE", "CNE", "CF"):
        return "valueCodeableConcept", codeable(value)
    if kind in ("IS", "ID"):
        return "valueCodeableConcept", {"coding": [{"code": value.c(1)}]}
    if kind == "SN":
        name, result = structured_numeric(value, units)
        return (name, result) if name else ("", None)
    if kind in ("DT", "DTM", "TS"):
        return "valueDateTime", ctx.time(value.c(1), f"OBX({ctx.index})-5")
    if kind == "TM":
        raw = value.c(1)
        if len(raw) >= 4 and raw[:4].isdigit():
            seconds = raw[4:6] if raw[4:6].isdigit() else "00"
            return "valueTime", f"{raw[:2]}:{raw[2:4]}:{seconds}"
        return "valueString", raw
    if kind == "NR":
        low, high = decimal(value.c(1)), decimal(value.c(2))
        return "valueRange", prune(
            {
                "low": quantity(low, units) if low is not None else None,
                "high": quantity(high, units) if high is not None else None,
            }
        )
    if kind == "DR":
        return "valuePeriod", prune(
            {"start": ctx.time(value.c(1), "OBX-5.1"), "end": ctx.time(value.c(2), "OBX-5.2")}
        )
    if kind == "VR":
        return "valueString", f"{value.c(1)}-{value.c(2)}"
    ctx.problems.append(f"OBX-2 {kind or 'empty'} has no FHIR value type; OBX-5 kept as text")
    return "valueString", value.text()


def _eip_identifiers(value: Value | None) -> list[Json]:
    """EIP -> the placer (PGN) and filler (FGN) identifiers of a specimen."""
    if not value:
        return []
    found = []
    for n, code in ((1, "PGN"), (2, "FGN")):
        subs = value.subs(n)
        if subs and subs[0]:
            ident: Json = {"value": subs[0], "type": typed(code)}
            if len(subs) >= 3:
                from adapters.translate.datatypes import hd_system

                system = hd_system(subs[1], subs[2], subs[3] if len(subs) > 3 else "")
                if system:
                    ident["system"] = system
            found.append(ident)
    return found


def spm(ctx: Context, seg: Segment) -> set[int]:
    """SPM -> Specimen (SPM[Specimen]) linked to the order's request, report and observations."""
    identifiers = _eip_identifiers(first(seg, 2))
    identifiers += [i for i in (identifier(ctx, first(seg, 31)),) if i]
    shipment = identifier_ei(first(seg, 32))
    if shipment:
        shipment["type"] = {"coding": [{"code": "SHIP", "display": "Shipment ID"}]}
        identifiers.append(shipment)
    parents = []
    for value in values(seg, 3):
        parent_ids = _eip_identifiers(value)
        if parent_ids:
            parent = {"resourceType": "Specimen", "identifier": parent_ids}
            parents.append(
                {"reference": ctx.builder.add_shared(parent, f"Specimen|parent|{value.raw}")}
            )
            ctx.about_patient(parent)
    collection: Json = {
        "method": codeable(first(seg, 7), "HL70488", maps.SPECIMEN_COLLECTION_METHOD),
        "bodySite": codeable(first(seg, 8), "HL70784", maps.SPECIMEN_SOURCE_SITE),
        "quantity": cq_quantity(first(seg, 12)),
    }
    collected = first(seg, 17)
    if collected:
        if collected.c(2):
            period: Json = {}
            ctx.set_time(period, "start", collected.c(1), "SPM-17.1")
            ctx.set_time(period, "end", collected.c(2), "SPM-17.2")
            collection["collectedPeriod"] = period
        else:
            ctx.set_time(collection, "collectedDateTime", collected.c(1), "SPM-17")
    handling = [c for v in values(seg, 15) if (c := codeable(v, "HL70376"))]
    if handling:
        merged = {"coding": [c for concept in handling for c in concept.get("coding", [])]}
        collection["extension"] = [
            {"url": _EXT + "specimen-specialHandling", "valueCodeableConcept": merged}
        ]
    available = text(seg, 20)
    status = {"Y": "available", "N": "unavailable"}.get(available.upper(), "")
    conditions = [
        c for v in values(seg, 24) if (c := codeable(v, "HL70493", maps.SPECIMEN_CONDITION))
    ]
    container = prune(
        {
            "additiveCodeableConcept": codeable(
                first(seg, 6), "HL70371", maps.ADDITIVE_PRESERVATIVE
            ),
            "type": codeable(first(seg, 27), "HL70785", maps.CONTAINER_TYPE),
        }
    )
    specimen: Json = {
        "resourceType": "Specimen",
        "identifier": identifiers,
        "accessionIdentifier": identifier(ctx, first(seg, 30)),
        "type": codeable(first(seg, 4), "HL70487", maps.SPECIMEN_TYPE),
        "collection": collection,
        "container": [container] if container else [],
        "status": status,
        "condition": conditions,
        "parent": parents,
        "note": [{"text": v.text()} for v in values(seg, 14)],
    }
    ctx.set_time(specimen, "receivedTime", text(seg, 18), "SPM-18")
    ref = ctx.add(specimen, f"Specimen/{ctx.index}")
    ctx.about_patient(specimen)
    ctx.specimen = specimen
    ctx.specimen_ref = ref
    order = ctx.order
    if order is not None:
        order.specimens.append(ref)
        order.request.setdefault("specimen", []).append({"reference": ref})
        if order.report is not None:
            order.report.setdefault("specimen", []).append({"reference": ref})
        for observation in order.observations:
            observation.setdefault("specimen", {"reference": ref})
    ctx.note_target = specimen
    ctx.scope = "specimen"
    return {1, 2, 3, 4, 6, 7, 8, 12, 14, 15, 17, 18, 20, 24, 27, 30, 31, 32}


HANDLERS: dict[str, Handler] = {"OBX": obx, "SPM": spm}
