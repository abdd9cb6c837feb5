"""Order and referral segments -> ServiceRequest, DiagnosticReport, Task and participants.

Maps (v2-to-FHIR IG): ORC[ServiceRequest], ORC[DiagnosticReport],
OBR[ServiceRequest], OBR[DiagnosticReport], OBR[Specimen], TQ1[ServiceRequest],
NTE[ServiceRequest|Observation|...], PRT[PractitionerRole], PRT[Device],
PRT[Observation-Location], PRT[RelatedPerson]. The IG has no REF^I12 map:
RF1 and PRD follow the pattern of an order: RF1 -> ServiceRequest (category
"patient referral"), PRD RP -> requester, PRD RT -> performer, and a Task
tracks the referral (FHIR Clinical Order Workflows: ServiceRequest is the
request, Task its fulfilment; domain-requirements §2.2). AUT (authorization)
becomes a ClaimResponse (pre-authorization) and CTI a ResearchStudy.

Where carebroker adds to the IG, for routing and the round trip to v2:

- ORU always gets a ServiceRequest (the IG makes it optional): its
  ``requester`` is the ordering provider (ORC-12, else OBR-16), whom results
  are routed back to.
- OBR-28 (result copies-to) has no IG row; each copy-to doctor becomes an
  extension ``http://hl7.org.au/fhir/StructureDefinition/result-copies-to``
  (HL7 Australia's published extension) on the DiagnosticReport.
- Status codes the FHIR value set cannot carry exactly (OBR-25 ``I`` and ``O``
  both read ``registered``) keep the v2 code in an ``alternate-codes``
  extension on the status element.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    address,
    alternate_code,
    codeable,
    cq_quantity,
    decimal,
    first,
    hd_system,
    human_name,
    identifier_cx,
    identifier_ei,
    identifier_type,
    instant,
    mapped_code,
    prune,
    telecom,
    text,
    typed,
    values,
    whole,
)
from adapters.translate.parties import (
    cnn_practitioner,
    device_ei,
    location,
    organization_xon,
    practitioner,
    practitioner_role,
    xcn_related_person,
)
from adapters.translate.v2_to_fhir import Context, Handler, Order

RESULT_COPIES_TO_URL = "http://hl7.org.au/fhir/StructureDefinition/result-copies-to"
VALUE_ATTACHMENT_URL = (
    "https://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.valueAttachment"
)
REFERRAL_CATEGORY = {
    "system": "http://snomed.info/sct",
    "code": "3457005",
    "display": "Patient referral",
}
V2_0443 = "http://terminology.hl7.org/CodeSystem/v2-0443"
_EXT = "http://hl7.org/fhir/StructureDefinition/"
REPORT_FAMILIES = frozenset({"ORU", "OUL", "REF", "RRI", "DFT"})


def status_of(code: str, table: maps.ConceptMap, v2_table: str, default: str) -> tuple[str, Json]:
    """Return (FHIR status, ``_status`` element): the v2 code kept when the map loses it."""
    mapped = mapped_code(code, table)
    lossy = not mapped or mapped in _ambiguous(id(table), table)
    extra = {"extension": [alternate_code(code, v2_table)]} if code and lossy else {}
    return mapped or default, extra


_AMBIGUOUS: dict[int, frozenset[str]] = {}


def _ambiguous(key: int, table: maps.ConceptMap) -> frozenset[str]:
    """FHIR codes several v2 codes map to (computed once per concept map)."""
    found = _AMBIGUOUS.get(key)
    if found is None:
        targets = [v[0] for v in table.values()]
        found = _AMBIGUOUS[key] = frozenset(t for t in targets if targets.count(t) > 1)
    return found


def new_order(ctx: Context, orc_segment: Segment | None = None) -> Order:
    """Start an order group: its ServiceRequest."""
    request: Json = {"resourceType": "ServiceRequest", "status": "unknown", "intent": "order"}
    ref = ctx.add(request, f"ServiceRequest/{ctx.index}")
    ctx.about_patient(request)
    order = Order(request=request, request_ref=ref, orc=orc_segment)
    ctx.orders.append(order)
    ctx.order = order
    return order


def _add_identifier(resource: Json, ident: Json | None) -> None:
    if ident is None:
        return
    identifiers = resource.setdefault("identifier", [])
    if ident not in identifiers:
        identifiers.append(ident)


def orc(ctx: Context, seg: Segment) -> set[int]:
    """ORC -> ServiceRequest (ORC[ServiceRequest]); starts an order group."""
    order = new_order(ctx, seg)
    request = order.request
    control, order_status = text(seg, 1), text(seg, 5)
    if order_status:
        request["status"], extra = status_of(order_status, maps.ORDER_STATUS, "HL70038", "unknown")
    else:
        request["status"], extra = status_of(
            control, maps.ORDER_CONTROL_STATUS, "HL70119", "unknown"
        )
    if extra:
        request["_status"] = extra
    _add_identifier(request, identifier_ei(first(seg, 2), "PLAC"))
    _add_identifier(request, identifier_ei(first(seg, 3), "FILL"))
    group = first(seg, 4)
    if group:
        request["requisition"] = identifier_ei(group, "PGN")
    parent = first(seg, 8)
    if parent:
        parent_request = prune(
            {
                "resourceType": "ServiceRequest",
                "status": "unknown",
                "intent": "order",
                "identifier": [
                    i
                    for i in (
                        {"value": parent.s(1, 1), "type": typed("PLAC")}
                        if parent.s(1, 1)
                        else None,
                        {"value": parent.s(2, 1), "type": typed("FILL")}
                        if parent.s(2, 1)
                        else None,
                    )
                    if i
                ],
            }
        )
        parent_ref = ctx.add(parent_request, f"ServiceRequest/parent/{ctx.index}")
        ctx.about_patient(parent_request)
        request["basedOn"] = [{"reference": parent_ref}]
    ctx.set_time(request, "authoredOn", text(seg, 9), "ORC-9")
    if control:
        request["extension"] = [
            {
                "url": _EXT + "businessEvent",
                "extension": [
                    {
                        "url": "value",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0119",
                                    "code": control,
                                }
                            ]
                        },
                    }
                ],
            }
        ]
    requester = practitioner(ctx, first(seg, 12))
    ordering_facility = organization_xon(
        ctx,
        first(seg, 21),
        source=f"{seg.field(22)}|{seg.field(23)}",
        address=[address(v) for v in values(seg, 22)],
        telecom=[telecom(v) for v in values(seg, 23)],
    )
    if requester and ordering_facility:
        role = practitioner_role(
            ctx,
            requester,
            key=f"ORC-12|{ordering_facility}",
            organization={"reference": ordering_facility},
        )
        request["requester"] = {"reference": role}
    elif requester:
        request["requester"] = {"reference": requester}
    elif ordering_facility:  # ORC-21: requester(PractitionerRole.organization)
        role = practitioner_role(
            ctx,
            "",
            key=f"ORC-21|{ordering_facility}",
            organization={"reference": ordering_facility},
        )
        request["requester"] = {"reference": role}
    callback = first(seg, 14)
    if callback:
        request.setdefault("extension", []).append(
            {
                "url": _EXT + "servicerequest-order-callback-phone-number",
                "valueContactPoint": telecom(callback),
            }
        )
    reason = codeable(first(seg, 16))
    if reason:
        request.setdefault("extension", []).append(
            {"url": _EXT + "request-statusReason", "valueCodeableConcept": reason}
        )
    location_code = codeable(first(seg, 29), "HL70482", maps.ORDER_TYPE)
    if location_code:
        request.setdefault("locationCode", []).append(location_code)
    confidentiality = first(seg, 28)
    label = codeable(confidentiality, "HL70177", maps.CONFIDENTIALITY_CODE)
    if label:
        request["meta"] = {"security": label["coding"][:1]}
    _add_identifier(request, _typed_cx(identifier_cx(first(seg, 33)), "PLAC"))
    ctx.note_target = request
    ctx.scope = "order"
    ctx.observation = None
    ctx.document = None  # an ORU order document (TXA + OBX) ends with its group
    return {1, 2, 3, 4, 5, 8, 9, 12, 14, 16, 21, 22, 23, 28, 29, 33}


def _typed_cx(ident: Json | None, code: str) -> Json | None:
    if ident is not None:
        ident["type"] = typed(code)
    return ident


def obr(ctx: Context, seg: Segment) -> set[int]:
    """OBR -> ServiceRequest (OBR[ServiceRequest]), Specimen, and for results DiagnosticReport."""
    order = ctx.order
    if order is None or order.has_obr:
        order = new_order(ctx)
    order.has_obr = True
    if ctx.family != "MDM":
        ctx.document = None
    request = order.request
    placer, filler = first(seg, 2), first(seg, 3)
    if not request.get("identifier") or all(
        i.get("type", {}).get("coding", [{}])[0].get("code") not in ("PLAC", "FILL")
        for i in request["identifier"]
    ):
        _add_identifier(request, identifier_ei(placer, "PLAC"))
        _add_identifier(request, identifier_ei(filler, "FILL"))
    code = codeable(first(seg, 4))
    request["code"] = code
    priority = mapped_code(text(seg, 5), maps.PRIORITY)
    if priority:
        request["priority"] = priority
    if text(seg, 6) and not any(k.startswith("occurrence") for k in request):
        ctx.set_time(request, "occurrenceDateTime", text(seg, 6), "OBR-6")
    action = text(seg, 11)
    if action == "G":
        request["intent"] = "reflex-order"
    if "requester" not in request:
        requester = practitioner(ctx, first(seg, 16))
        if requester:
            request["requester"] = {"reference": requester}
    callback = first(seg, 17)
    if callback:
        request.setdefault("extension", []).append(
            {
                "url": _EXT + "servicerequest-order-callback-phone-number",
                "valueContactPoint": telecom(callback),
            }
        )
    reasons = [r for v in values(seg, 31) if (r := codeable(v))]
    if reasons:
        request["reasonCode"] = reasons
    details = [c for n in (46, 47) for v in values(seg, n) if (c := codeable(v))]
    if details:
        request["orderDetail"] = details
    parent = first(seg, 29)
    if parent:
        request.setdefault("basedOn", []).extend(
            {"identifier": {"value": parent.s(n, 1), "type": typed(kind)}, "type": "ServiceRequest"}
            for n, kind in ((1, "PGN"), (2, "FGN"))
            if parent.s(n, 1)
        )
    _add_identifier(request, _typed_cx(identifier_cx(first(seg, 53)), "PLAC"))
    used = {1, 2, 3, 4, 5, 6, 11, 16, 17, 29, 31, 46, 47, 53}
    specimen_ref = _obr_specimen(ctx, seg, order)
    used |= {7, 8, 9, 10, 14, 15, 39}
    ctx.note_target = request
    ctx.scope = "obr"
    ctx.observation = None
    if ctx.family in REPORT_FAMILIES:
        used |= _report(ctx, seg, order, code, specimen_ref)
    elif ctx.family in ("OML", "ORM", "OMG"):
        ctx.focus.append(order.request_ref)
    if ctx.referral is not None and ctx.referral is not request:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": order.request_ref})
    return used


def _obr_specimen(ctx: Context, seg: Segment, order: Order) -> str:
    """OBR -> Specimen (OBR[Specimen]): collection times, quantity, collector, source."""
    collection: Json = {}
    start, end = text(seg, 7), text(seg, 8)
    if start and end:
        period: Json = {}
        ctx.set_time(period, "start", start, "OBR-7")
        ctx.set_time(period, "end", end, "OBR-8")
        collection["collectedPeriod"] = period
    elif start:
        ctx.set_time(collection, "collectedDateTime", start, "OBR-7")
    collection["quantity"] = cq_quantity(first(seg, 9))
    collector = practitioner(ctx, first(seg, 10))
    if collector:
        collection["collector"] = {"reference": practitioner_role(ctx, collector, key="OBR-10")}
    source = first(seg, 15)
    specimen: Json = {"resourceType": "Specimen", "collection": collection}
    if source:
        specimen["type"] = codeable(source.component(1))
        collection["bodySite"] = codeable(source.component(4))
        collection["method"] = {"text": source.c(3)} if source.c(3) else None
        additive = codeable(source.component(2))
        if additive:
            specimen["container"] = [{"additiveCodeableConcept": additive}]
    if not (start or collection["quantity"] or collector or source or text(seg, 14)):
        return ""
    ctx.set_time(specimen, "receivedTime", text(seg, 14), "OBR-14")
    identifiers = [dict(i) for i in order.request.get("identifier", [])]
    specimen["identifier"] = identifiers
    specimen["note"] = [{"text": v.text()} for v in values(seg, 39)]
    ref = ctx.add(specimen, f"Specimen/OBR/{ctx.index}")
    ctx.about_patient(specimen)
    order.specimens.append(ref)
    order.request.setdefault("specimen", []).append({"reference": ref})
    return ref


def _report(
    ctx: Context, seg: Segment, order: Order, code: Json | None, specimen_ref: str
) -> set[int]:
    """OBR -> DiagnosticReport (OBR[DiagnosticReport], ORC[DiagnosticReport])."""
    status, extra = status_of(text(seg, 25), maps.RESULT_STATUS, "HL70123", "unknown")
    interpreters = [r for v in values(seg, 32) if (r := _ndl_role(ctx, v, "OBR-32"))]
    performers = [
        {"reference": r}
        for n in (34, 35)
        for v in values(seg, n)
        if (r := _ndl_role(ctx, v, f"OBR-{n}"))
    ]
    copies = [practitioner(ctx, v) for v in values(seg, 28)]
    report: Json = {
        "resourceType": "DiagnosticReport",
        "extension": [
            {"url": RESULT_COPIES_TO_URL, "valueReference": {"reference": c}} for c in copies if c
        ],
        "identifier": [dict(i) for i in order.request.get("identifier", [])]
        + ([dict(order.request["requisition"])] if order.request.get("requisition") else []),
        "basedOn": [{"reference": order.request_ref}],
        "status": status,
        "_status": extra,
        "category": [codeable(first(seg, 24), "HL70074", maps.DIAGNOSTIC_SERVICE_SECTION)],
        "code": code or {"text": "unspecified"},
        "resultsInterpreter": [{"reference": r} for r in interpreters if r],
        "performer": performers,
        "specimen": [{"reference": specimen_ref}] if specimen_ref else [],
    }
    start, end = text(seg, 7), text(seg, 8)
    if start and end:
        period: Json = {}
        ctx.set_time(period, "start", start, "OBR-7")
        ctx.set_time(period, "end", end, "OBR-8")
        report["effectivePeriod"] = period
    elif start:
        ctx.set_time(report, "effectiveDateTime", start, "OBR-7")
    issued = instant(ctx.time(text(seg, 22), "OBR-22"))
    if issued:
        report["issued"] = issued
    if code is None:
        ctx.problems.append("OBR-4 is empty; DiagnosticReport.code set to 'unspecified'")
    order.report = report
    order.report_ref = ctx.add(report, f"DiagnosticReport/{ctx.index}")
    ctx.about_patient(report)
    if ctx.family in ("ORU", "OUL"):
        ctx.focus.append(order.report_ref)
    elif ctx.referral is not None:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": order.report_ref})
    return {7, 8, 22, 24, 25, 28, 32, 34, 35}


def _ndl_role(ctx: Context, value: Value, key: str) -> str:
    """NDL -> PractitionerRole (NDL[PractitionerRole]): the person, the period, the place.

    NDL.4-11 name a place as PL does (point of care, room, bed, facility, status,
    type, building, floor); they become the same Location hierarchy.
    """
    person = cnn_practitioner(ctx, value)
    parts = value.parts()
    place = ""
    if len(parts) >= 4 and any(p.strip() for p in parts[3:11]):
        pl = value.enc.component.join(parts[3:11])
        place = location(ctx, Value(pl, value.enc))
    if not person and not place:
        return ""
    return practitioner_role(
        ctx,
        person,
        key=f"{key}|{value.raw}",
        location=[{"reference": place}] if place else None,
        period=prune(
            {"start": ctx.time(value.c(2), f"{key}.2"), "end": ctx.time(value.c(3), f"{key}.3")}
        ),
    )


def tq1(ctx: Context, seg: Segment) -> set[int]:
    """TQ1 -> ServiceRequest occurrence, quantity and priority (TQ1[ServiceRequest])."""
    if ctx.appointment is not None and ctx.order is None:  # SIU v2.6+: timing in TQ1
        for n, element in ((7, "start"), (8, "end")):  # TQ1 replaces SCH-11 from v2.6
            moment = instant(ctx.time(text(seg, n), f"TQ1-{n}"))
            if moment:
                ctx.appointment[element] = moment
        return {1, 7, 8}
    target = ctx.medication_request or (
        ctx.order.request if ctx.order is not None else ctx.referral
    )
    if target is None:
        return {1}
    quantity = cq_quantity(first(seg, 2))
    if quantity and target["resourceType"] == "ServiceRequest":
        target["quantityQuantity"] = quantity
    repeat: Json = {}
    timing: Json = {"repeat": repeat}
    pattern = first(seg, 3)
    if pattern:
        timing["code"] = codeable(pattern.component(1), "HL70335")
        period = decimal(pattern.c(5)) if len(pattern.parts()) >= 5 else None
        if period is not None:
            repeat["period"] = period
            repeat["periodUnit"] = _unit(pattern.c(6))
        if len(pattern.parts()) >= 8 and pattern.c(8):
            repeat["when"] = [pattern.c(8)]
    times = [v.c(1) for v in values(seg, 4) if v.c(1)]
    if times:
        repeat["timeOfDay"] = [_time_of_day(t) for t in times if _time_of_day(t)]
    offset = first(seg, 5)
    if offset and decimal(offset.c(1)) is not None:
        minutes = decimal(offset.c(1))
        if minutes is not None and minutes >= 0:
            repeat["offset"] = int(minutes)
    bounds: Json = {}
    ctx.set_time(bounds, "start", text(seg, 7), "TQ1-7")
    ctx.set_time(bounds, "end", text(seg, 8), "TQ1-8")
    if bounds:
        repeat["boundsPeriod"] = bounds
    else:
        service = first(seg, 6)
        if service and decimal(service.c(1)) is not None:
            repeat["boundsDuration"] = prune(
                {
                    "value": decimal(service.c(1)),
                    "unit": service.s(2, 2) or service.s(2, 1),
                    "code": service.s(2, 1),
                }
            )
    duration = first(seg, 13)
    if duration and decimal(duration.c(1)) is not None:
        repeat["duration"] = decimal(duration.c(1))
        repeat["durationUnit"] = _unit(duration.s(2, 1) or duration.c(2))
    total = text(seg, 14)
    if total.isdigit() and int(total) > 0:
        repeat["count"] = int(total)
    timing = prune(timing)
    priority = mapped_code(text(seg, 9), maps.PRIORITY)
    if priority:
        target["priority"] = priority
    condition = whole(seg, 10)
    if target["resourceType"] == "MedicationRequest":  # TQ1[MedicationRequest]: the dosage
        dosages = target.setdefault("dosageInstruction", [])
        if not dosages:
            dosages.append({})
        dosage = dosages[0]
        sequence = text(seg, 1)
        dosage.update(
            prune(
                {
                    "sequence": int(sequence) if sequence.isdigit() else None,
                    "timing": timing,
                    "asNeededCodeableConcept": {"text": condition} if condition else None,
                    "text": "\n".join(v.text() for v in values(seg, 11)),
                }
            )
        )
        if quantity:
            dosage.setdefault("doseAndRate", [{}])[0]["doseQuantity"] = quantity
        return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14}
    if timing:
        target.pop("occurrenceDateTime", None)
        target.pop("_occurrenceDateTime", None)
        target["occurrenceTiming"] = timing
    if condition:
        target["asNeededCodeableConcept"] = {"text": condition}
    for value in values(seg, 11):
        target.setdefault("note", []).append({"text": value.text()})
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14}


_UNITS = {"s": "s", "min": "min", "h": "h", "hr": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}


def _unit(value: str) -> str:
    return _UNITS.get(value.strip().lower(), "") or ""


def _time_of_day(value: str) -> str:
    digits = value.replace(":", "")
    if len(digits) >= 4 and digits[:4].isdigit():
        seconds = digits[4:6] if digits[4:6].isdigit() else "00"
        return f"{digits[:2]}:{digits[2:4]}:{seconds}"
    return ""


_NOTEABLE = frozenset(
    {
        "Observation",
        "ServiceRequest",
        "Specimen",
        "Task",
        "DiagnosticReport",
        "AllergyIntolerance",
        "Immunization",
        "MedicationRequest",
        "Procedure",
    }
)


def nte(ctx: Context, seg: Segment) -> set[int]:
    """NTE -> note of the resource it follows (NTE[Observation], NTE[ServiceRequest] ...)."""
    comment = "\n".join(v.text() for v in values(seg, 3))
    if not comment:
        return {1, 2, 4}
    target = ctx.note_target
    if ctx.document is not None and ctx.scope == "document":
        from adapters.translate.v2_documents import document_note

        document_note(ctx, comment)
        return {1, 2, 3, 4}
    if ctx.appointment is not None and target is ctx.appointment:
        existing = ctx.appointment.get("comment")
        ctx.appointment["comment"] = f"{existing}\n{comment}" if existing else comment
        return {1, 2, 3, 4}
    if target is None or target.get("resourceType") not in _NOTEABLE:
        if ctx.patient is None:
            return {1, 2, 4}
        target = ctx.patient
        note_holder = target.setdefault("extension", [])
        note_holder.append(
            {"url": _EXT + "patient-note", "valueString": comment}
        )  # no Patient.note in R4
        return {1, 2, 3, 4}
    annotation: Json = {"text": comment}
    author = practitioner(ctx, first(seg, 5))
    if author:
        annotation["authorReference"] = {"reference": author}
    ctx.set_time(annotation, "time", text(seg, 6), "NTE-6")
    target.setdefault("note", []).append(annotation)
    return {1, 2, 3, 4, 5, 6}


# --- participations (PRT) -------------------------------------------------------------


def prt(ctx: Context, seg: Segment) -> set[int]:
    """PRT -> PractitionerRole, Device and location, attached by where the PRT stands."""
    role = first(seg, 4)
    code = role.c(1) if role else ""
    device_id = first(seg, 10)
    device = ""
    if device_id:
        device = device_ei(
            ctx,
            device_id,
            manufactureDate=ctx.time(text(seg, 17), "PRT-17"),
            expirationDate=ctx.time(text(seg, 18), "PRT-18"),
            lotNumber=text(seg, 19),
            serialNumber=text(seg, 20),
            udiCarrier=[{"deviceIdentifier": v.c(1)} for v in values(seg, 16) if v.c(1)],
        )
    person = practitioner(ctx, first(seg, 5))
    if person:
        found = ctx.builder.find(person)
        addresses = [address(v) for v in values(seg, 14)]
        if found is not None and addresses and "address" not in found:
            found["address"] = [a for a in addresses if a]
    organization = organization_xon(
        ctx,
        first(seg, 8),
        source=seg.field(7),
        type=[
            codeable(v, "HL70406", maps.PARTICIPANT_ORGANIZATION_UNIT_TYPE) for v in values(seg, 7)
        ],
    )
    place = location(ctx, first(seg, 9))
    concept = codeable(role, "HL70912", maps.PARTICIPATION) if role else None
    reference = ""
    if person or organization or place:
        reference = practitioner_role(
            ctx,
            person,
            code=concept,
            key=seg.raw,
            specialty=[codeable(v) for v in values(seg, 6)],
            organization={"reference": organization} if organization else None,
            location=[{"reference": place}] if place else None,
            period=prune(
                {
                    "start": ctx.time(text(seg, 11), "PRT-11"),
                    "end": ctx.time(text(seg, 12), "PRT-12"),
                }
            ),
            telecom=[telecom(v) for v in values(seg, 15)],
        )
    _attach_participation(ctx, code, reference, person, device, place)
    return {1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20}


def _attach_participation(
    ctx: Context, code: str, role: str, person: str, device: str, place: str
) -> None:
    scope = ctx.scope
    order = ctx.order
    if scope == "patient" and ctx.patient is not None:
        if code in ("PP", "FHCP", "ODRP") and role:
            ctx.patient.setdefault("generalPractitioner", []).append({"reference": role})
        if device:
            found = ctx.builder.find(device)
            if found is not None:
                found["patient"] = {"reference": ctx.patient_ref}
        return
    if scope == "visit" and ctx.encounter is not None:
        if role:
            ctx.encounter.setdefault("participant", []).append({"individual": {"reference": role}})
        return
    if scope == "observation" and ctx.observation is not None:
        observation = ctx.observation
        if role and person:
            observation.setdefault("performer", []).append({"reference": role})
        if device:
            observation["device"] = {"reference": device}
        if place:
            observation.setdefault("extension", []).append(
                {"url": _EXT + "event-location", "valueReference": {"reference": place}}
            )
        return
    if scope in ("order", "obr", "specimen") and order is not None:
        request = order.request
        if code == "OP" and role:
            request["requester"] = {"reference": role}
        elif code == "SC" and role:
            for specimen_ref in order.specimens[-1:]:
                specimen = ctx.builder.find(specimen_ref)
                if specimen is not None:
                    specimen.setdefault("collection", {})["collector"] = {"reference": role}
        elif code == "PRI" and role and order.report is not None:
            order.report.setdefault("resultsInterpreter", []).append({"reference": role})
        elif code in ("RCT", "CT") and person and order.report is not None:
            order.report.setdefault("extension", []).append(
                {"url": RESULT_COPIES_TO_URL, "valueReference": {"reference": person}}
            )
        elif role and order.report is not None:
            order.report.setdefault("performer", []).append({"reference": role})
        elif role:
            request.setdefault("performer", []).append({"reference": role})
        if device:
            request.setdefault("supportingInfo", []).append({"reference": device})
        return
    if ctx.patient is not None and role and code in ("PP", "FHCP", "ODRP"):
        ctx.patient.setdefault("generalPractitioner", []).append({"reference": role})


# --- referrals (REF^I12) ------------------------------------------------------------

_REFERRAL_STATUS = {"A": "active", "P": "active", "R": "revoked", "E": "revoked"}
_REFERRAL_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}


def rf1(ctx: Context, seg: Segment) -> set[int]:
    """RF1 -> the referral ServiceRequest and its Task."""
    status_code = text(seg, 1)
    status = _REFERRAL_STATUS.get(status_code, "unknown")
    identifiers = [
        i
        for i in (identifier_ei(first(seg, 6), "PLAC"), identifier_ei(first(seg, 11), "FILL"))
        if i
    ]
    priority = _REFERRAL_PRIORITY.get(text(seg, 2), "")
    referral: Json = {
        "resourceType": "ServiceRequest",
        "identifier": identifiers,
        "status": status,
        "_status": {"extension": [alternate_code(status_code, "HL70283")]} if status_code else None,
        "intent": "order",
        "category": [
            {"coding": [REFERRAL_CATEGORY]},
            codeable(first(seg, 3), "HL70281"),
            codeable(first(seg, 5), "HL70282"),
        ],
        "priority": priority,
        "reasonCode": [r for v in values(seg, 10) if (r := codeable(v, "HL70336"))],
        "performer": [{"reference": r} for r in (organization_xon(ctx, first(seg, 19)),) if r],
        "note": [{"text": whole(seg, 14)}] if whole(seg, 14) else [],
    }
    expiry = text(seg, 8)
    if expiry:
        period: Json = {}
        ctx.set_time(period, "start", text(seg, 7), "RF1-7")
        ctx.set_time(period, "end", expiry, "RF1-8")
        referral["authoredOn"] = period.get("start")
        if "_start" in period:
            referral["_authoredOn"] = period["_start"]
        referral["occurrencePeriod"] = period
    else:
        ctx.set_time(referral, "authoredOn", text(seg, 7), "RF1-7")
    reason_text = whole(seg, 14)
    if reason_text and referral["reasonCode"]:
        referral["reasonCode"][0]["text"] = reason_text
    referral = prune(referral)
    ctx.referral = referral
    ctx.referral_ref = ctx.add(referral, f"ServiceRequest/referral/{ctx.index}")
    ctx.about_patient(referral)
    if ctx.family in ("REF", "RRI"):
        task = prune(
            {
                "resourceType": "Task",
                "identifier": [dict(i) for i in identifiers],
                "status": "requested",
                "businessStatus": codeable(first(seg, 1), "HL70283"),
                "intent": "order",
                "priority": priority,
                "focus": {"reference": ctx.referral_ref},
                "authoredOn": referral.get("authoredOn"),
            }
        )
        ctx.task = task
        task_ref = ctx.add(task, f"Task/referral/{ctx.index}")
        ctx.about_patient(task, "for")
        ctx.focus.extend((ctx.referral_ref, task_ref))
    ctx.note_target = referral
    ctx.scope = "referral"
    return {1, 2, 3, 5, 6, 7, 8, 10, 11, 14, 19}


def prd(ctx: Context, seg: Segment) -> set[int]:
    """PRD -> Practitioner, by role: RP referrer (requester), RT referred-to (performer)."""
    role = first(seg, 1)
    code = role.c(1) if role else ""
    found = provider_practitioner(seg)
    if found is None:
        return {1}
    person = ctx.builder.add_shared(found, f"Practitioner|PRD|{seg.raw}")
    organization = organization_xon(
        ctx,
        first(seg, 10),
        source=f"{seg.field(11)}|{seg.field(13)}",
        address=[address(v) for v in values(seg, 11)],
        telecom=[telecom(v, "work") for v in values(seg, 13)],
    )
    place = location(ctx, first(seg, 4))
    reference = practitioner_role(
        ctx,
        person,
        code=codeable(role, "HL70286"),
        key=seg.raw,
        organization={"reference": organization} if organization else None,
        location=[{"reference": place}] if place else None,
        period=prune(
            {"start": ctx.time(text(seg, 8), "PRD-8"), "end": ctx.time(text(seg, 9), "PRD-9")}
        ),
    )
    target = ctx.referral
    if code == "RP" and target is not None:
        target["requester"] = {"reference": person}
        if ctx.task is not None:
            ctx.task["requester"] = {"reference": person}
    elif code in ("RT", "CP") and target is not None:
        target.setdefault("performer", []).append({"reference": person})
        if ctx.task is not None and "owner" not in ctx.task:
            ctx.task["owner"] = {"reference": person}
    elif code in ("PP", "FHCP") and ctx.patient is not None:
        ctx.patient.setdefault("generalPractitioner", []).append({"reference": person})
    elif target is not None:
        target.setdefault("supportingInfo", []).append({"reference": reference})
    return {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13}


# PLN.2 (practitioner id type) -> Identifier.system, for the ids referrals carry.
PLN_SYSTEMS = {
    "RPPS": "urn:oid:1.2.250.1.71.4.2.1",
    "ADELI": "urn:oid:1.2.250.1.71.4.2.1",
    "NPI": "http://hl7.org/fhir/sid/us-npi",
}


def provider_practitioner(seg: Segment) -> Json | None:
    """PRD -> Practitioner: PRD-2 name, PRD-3 address, PRD-5 telecom, PRD-7 ids (PLN)."""
    identifiers = [
        prune(
            {
                "type": identifier_type(v.c(2)),
                "system": PLN_SYSTEMS.get(v.c(2).upper(), ""),
                "value": v.c(1),
            }
        )
        for v in values(seg, 7)
        if v.c(1)
    ]
    names = [n for v in values(seg, 2) for n in human_name(v)]
    if not identifiers and not names:
        return None
    return prune(
        {
            "resourceType": "Practitioner",
            "identifier": identifiers,
            "name": names,
            "address": [address(v) for v in values(seg, 3)],
            "telecom": [telecom(v, "work") for v in values(seg, 5)],
        }
    )


def aut(ctx: Context, seg: Segment) -> set[int]:
    """AUT -> ClaimResponse, the payer's pre-authorization of the referral (no IG sheet)."""
    insurer = organization_xon(ctx, first(seg, 3)) or organization_xon(ctx, first(seg, 2))
    authorization = identifier_ei(first(seg, 6))
    items = [
        {
            "category": {"coding": [{"system": _ADJUDICATION, "code": code, "display": display}]},
            "value": number,
        }
        for n, code, display in (
            (8, "RNT", "Requested number of treatments"),
            (9, "ANT", "Authorized number of treatments"),
        )
        if (number := decimal(text(seg, n))) is not None
    ]
    limit = first(seg, 7)
    amount = decimal(limit.s(1, 1)) if limit else None
    response: Json = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                }
            ]
        },
        "use": "preauthorization",
        "outcome": "complete",
        "insurer": {"reference": insurer} if insurer else {"display": "unknown"},
        "identifier": [authorization] if authorization else [],
        "preAuthRef": authorization["value"] if authorization else None,
        "request": {"reference": ctx.referral_ref} if ctx.referral_ref else None,
        "item": [{"itemSequence": 1, "adjudication": items}] if items else [],
        "total": [
            {
                "category": {
                    "coding": [
                        {"system": _ADJUDICATION, "code": "benefit", "display": "Benefit Amount"}
                    ]
                },
                "amount": prune({"value": amount, "currency": limit.s(1, 2) if limit else ""}),
            }
        ]
        if amount is not None
        else [],
        "processNote": [
            {"text": v.text()} for n in (28, 29) for v in values(seg, n) if len(v.text()) > 1
        ],
    }
    created = ctx.time(text(seg, 10) or text(seg, 5) or text(seg, 4), "AUT-10")
    response["created"] = created or "1900-01-01"
    if not created:
        ctx.problems.append("AUT-10 is empty; ClaimResponse.created unknown")
    period: Json = {}
    ctx.set_time(period, "start", text(seg, 4), "AUT-4")
    ctx.set_time(period, "end", text(seg, 5), "AUT-5")
    if period:
        response["preAuthPeriod"] = period
    response = prune(response)
    ctx.add(response, f"ClaimResponse/{ctx.index}")
    ctx.about_patient(response, "patient")
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 28, 29}


_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"


def cti(ctx: Context, seg: Segment) -> set[int]:
    """CTI (clinical trial) -> ResearchStudy, supporting the order it stands in."""
    study = first(seg, 1)
    if not study:
        return {1}
    resource = prune(
        {
            "resourceType": "ResearchStudy",
            "status": "active",
            "identifier": [identifier_ei(study)],
            "phase": codeable(first(seg, 2), "HL70396"),
        }
    )
    ref = ctx.builder.add_shared(resource, f"ResearchStudy|{seg.raw}")
    if ctx.order is not None:
        ctx.order.request.setdefault("supportingInfo", []).append({"reference": ref})
    return {1, 2}


def related_person_participant(ctx: Context, value: Value | None) -> str:
    """Add a RelatedPerson for an XCN naming a non-provider participant (XCN[RelatedPerson])."""
    found = xcn_related_person(ctx, value)
    if found is None:
        return ""
    resource = {"resourceType": "RelatedPerson", **found}
    ref = ctx.add(resource, f"RelatedPerson/XCN/{ctx.index}")
    ctx.about_patient(resource, "patient")
    return ref


__all__ = ["hd_system"]

HANDLERS: dict[str, Handler] = {
    "ORC": orc,
    "OBR": obr,
    "NTE": nte,
    "TQ1": tq1,
    "PRT": prt,
    "RF1": rf1,
    "PRD": prd,
    "AUT": aut,
    "CTI": cti,
}
