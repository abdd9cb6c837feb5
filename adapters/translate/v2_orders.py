"""Order, result and referral segments -> ServiceRequest, DiagnosticReport, Observation, Task.

Maps (v2-to-FHIR IG): ORC[ServiceRequest], ORC[DiagnosticReport],
OBR[ServiceRequest], OBR[DiagnosticReport], OBX[Observation],
OBX[Observation-Component], SPM[Specimen], NTE[Observation|ServiceRequest],
TQ1[ServiceRequest], PRT[PractitionerRole]. The IG has no REF^I12 map; RF1
and PRD follow the same pattern as an order: RF1 -> ServiceRequest (category
"patient referral"), PRD RP -> requester, PRD RT -> performer, and a Task
tracks the referral (FHIR Clinical Order Workflows: ServiceRequest is the
request, Task its fulfilment; domain-requirements §2.2).

Where carebroker adds to the IG, for routing and the round trip to v2:

- ORU always gets a ServiceRequest (the IG makes it optional): its
  ``requester`` is the ordering provider (ORC-12, else OBR-16), whom results
  are routed back to.
- OBR-28 (result copies-to) has no IG row; each copy-to doctor becomes an
  extension ``http://hl7.org.au/fhir/StructureDefinition/result-copies-to``
  (HL7 Australia's published extension) on the DiagnosticReport.
- An OBX of type ED (embedded document, e.g. a PDF report) is an Observation
  with the IG's R5 ``valueAttachment`` extension *and* the report's
  ``presentedForm``, where FHIR readers look for the report document.
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
    attachment,
    codeable,
    decimal,
    first,
    hd_system,
    human_name,
    identifier_ei,
    identifier_type,
    instant,
    mapped_code,
    organization,
    practitioner,
    prune,
    quantity,
    reference_pointer,
    structured_numeric,
    telecom,
    text,
    values,
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
_REPORT_FAMILIES = frozenset({"ORU", "REF"})


def _status(code: str, table: maps.ConceptMap, v2_table: str, default: str) -> tuple[str, Json]:
    """Return (FHIR status, ``_status`` element): the v2 code kept when the map loses it."""
    mapped = mapped_code(code, table)
    lossy = not mapped or sum(1 for v in table.values() if v[0] == mapped) > 1
    extra = {"extension": [alternate_code(code, v2_table)]} if code and lossy else {}
    return mapped or default, extra


def _new_order(ctx: Context) -> Order:
    request: Json = {"resourceType": "ServiceRequest", "status": "unknown", "intent": "order"}
    ref = ctx.builder.add(request, f"ServiceRequest/{ctx.index}")
    ctx.about_patient(request)
    order = Order(request=request, request_ref=ref)
    ctx.orders.append(order)
    ctx.order = order
    return order


def _placer_filler(request: Json, placer: Value | None, filler: Value | None) -> None:
    identifiers = request.setdefault("identifier", [])
    for value, code in ((placer, "PLAC"), (filler, "FILL")):
        ident = identifier_ei(value, code)
        if ident and ident not in identifiers:
            identifiers.append(ident)


def orc(ctx: Context, seg: Segment) -> set[int]:
    """ORC -> ServiceRequest (ORC[ServiceRequest]); starts an order group."""
    order = _new_order(ctx)
    request = order.request
    control, order_status = text(seg, 1), text(seg, 5)
    if order_status:
        request["status"], extra = _status(order_status, maps.ORDER_STATUS, "HL70038", "unknown")
    else:
        request["status"], extra = _status(control, maps.ORDER_CONTROL_STATUS, "HL70119", "unknown")
    if extra:
        request["_status"] = extra
    _placer_filler(request, first(seg, 2), first(seg, 3))
    group = first(seg, 4)
    if group:
        request["requisition"] = identifier_ei(group, "PGN")
    request["authoredOn"] = ctx.time(text(seg, 9), "ORC-9")
    requester = ctx.party(practitioner(first(seg, 12)))
    if requester:
        request["requester"] = {"reference": requester}
    ctx.note_target = request
    ctx.observation = None
    ctx.document = None  # an ORU order document (TXA + OBX) ends with its group
    return {1, 2, 3, 4, 5, 9, 12}


def obr(ctx: Context, seg: Segment) -> set[int]:
    """OBR -> ServiceRequest (OBR[ServiceRequest]) and, for results, DiagnosticReport."""
    order = ctx.order
    if order is None or order.has_obr:
        order = _new_order(ctx)
    order.has_obr = True
    if ctx.family != "MDM":
        ctx.document = None
    request = order.request
    placer, filler = first(seg, 2), first(seg, 3)
    _placer_filler(request, placer, filler)
    code = codeable(first(seg, 4))
    request["code"] = code
    priority = mapped_code(text(seg, 5), maps.PRIORITY)
    if priority:
        request["priority"] = priority
    requested = ctx.time(text(seg, 6), "OBR-6")
    if requested and "occurrencePeriod" not in request:
        request["occurrenceDateTime"] = requested
    if "requester" not in request:
        requester = ctx.party(practitioner(first(seg, 16)))
        if requester:
            request["requester"] = {"reference": requester}
    reasons = [r for v in values(seg, 31) if (r := codeable(v))]
    if reasons:
        request["reasonCode"] = reasons
    used = {1, 2, 3, 4, 5, 6, 16, 31}
    ctx.note_target = request
    ctx.observation = None
    if ctx.family in _REPORT_FAMILIES:
        used |= _report(ctx, seg, order, code)
    elif ctx.family in ("OML", "ORM"):
        ctx.focus.append(order.request_ref)
    if ctx.referral is not None and ctx.referral is not request:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": order.request_ref})
    return used


def _report(ctx: Context, seg: Segment, order: Order, code: Json | None) -> set[int]:
    """OBR -> DiagnosticReport (OBR[DiagnosticReport], ORC[DiagnosticReport])."""
    status, extra = _status(text(seg, 25), maps.RESULT_STATUS, "HL70123", "unknown")
    start = ctx.time(text(seg, 7), "OBR-7")
    end = ctx.time(text(seg, 8), "OBR-8")
    interpreters = [ctx.party(_cnn_practitioner(v)) for v in values(seg, 32)]
    copies = [ctx.party(practitioner(v)) for v in values(seg, 28)]
    report: Json = {
        "resourceType": "DiagnosticReport",
        "extension": [
            {"url": RESULT_COPIES_TO_URL, "valueReference": {"reference": c}} for c in copies if c
        ],
        "identifier": [dict(i) for i in order.request.get("identifier", [])],
        "basedOn": [{"reference": order.request_ref}],
        "status": status,
        "_status": extra,
        "category": [codeable(first(seg, 24), "HL70074")],
        "code": code or {"text": "unspecified"},
        "issued": instant(ctx.time(text(seg, 22), "OBR-22")),
        "resultsInterpreter": [{"reference": r} for r in interpreters if r],
    }
    if start and end:
        report["effectivePeriod"] = {"start": start, "end": end}
    elif start:
        report["effectiveDateTime"] = start
    if code is None:
        ctx.problems.append("OBR-4 is empty; DiagnosticReport.code set to 'unspecified'")
    order.report = report
    order.report_ref = ctx.builder.add(report, f"DiagnosticReport/{ctx.index}")
    ctx.about_patient(report)
    if ctx.family == "ORU":
        ctx.focus.append(order.report_ref)
    elif ctx.referral is not None:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": order.report_ref})
    return {7, 8, 22, 24, 25, 28, 32}


def _cnn_practitioner(value: Value) -> Json | None:
    """NDL.1 (CNN, subcomponents) -> Practitioner: id, family, given, authority."""
    ident = value.s(1, 1)
    family, given = value.s(1, 2), value.s(1, 3)
    if not ident and not family:
        return None
    system = hd_system(value.s(1, 9), value.s(1, 10), value.s(1, 11))
    return prune(
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": system, "value": ident}] if ident else [],
            "name": [{"family": family, "given": [given] if given else []}],
        }
    )


def obx(ctx: Context, seg: Segment) -> set[int]:
    """OBX -> Observation (OBX[Observation]); in MDM, document content instead."""
    if ctx.document is not None:
        from adapters.translate.v2_documents import document_content

        return document_content(ctx, seg)
    value_type = text(seg, 2)
    code = codeable(first(seg, 3))
    status, extra = _status(text(seg, 11), maps.OBSERVATION_STATUS, "HL70085", "unknown")
    observation: Json = {
        "resourceType": "Observation",
        "status": status,
        "_status": extra,
        "code": code or {"text": "unspecified"},
    }
    used = {1, 2, 3, 5, 6, 11}
    document = _observation_value(ctx, seg, value_type, observation)
    ranges = [r.text() for r in values(seg, 7)]
    if ranges:
        observation["referenceRange"] = [{"text": r} for r in ranges]
    flags = [{"coding": [_interpretation(v)]} for v in values(seg, 8) if v.c(1)]
    observation["interpretation"] = flags
    observation["effectiveDateTime"] = ctx.time(text(seg, 14), "OBX-14")
    performers = []
    observer = ctx.party(practitioner(first(seg, 16)))
    if observer:
        performers.append({"reference": observer})
    lab = organization(first(seg, 23))
    if lab is not None:
        addresses = values(seg, 24)
        if addresses:
            lab["address"] = [address(addresses[0])]
        performers.append({"reference": ctx.party(prune(lab))})
    observation["performer"] = performers
    observation["method"] = codeable(first(seg, 17))
    observation["bodySite"] = codeable(first(seg, 20))
    instance = identifier_ei(first(seg, 21), "FILL")
    observation["identifier"] = [instance] if instance else []
    used |= {7, 8, 14, 16, 17, 20, 21, 23, 24}
    observation = prune(observation)
    if code is None:
        ctx.problems.append("OBX-3 is empty; Observation.code set to 'unspecified'")
    ref = ctx.builder.add(observation, f"Observation/{ctx.index}")
    ctx.about_patient(observation)
    order = ctx.order
    if order is not None and order.report is not None:
        order.report.setdefault("result", []).append({"reference": ref})
        observation["basedOn"] = [{"reference": order.request_ref}]
        if document is not None:
            order.report.setdefault("presentedForm", []).append(document)
    elif order is not None:
        order.request.setdefault("supportingInfo", []).append({"reference": ref})
    elif ctx.referral is not None:
        ctx.referral.setdefault("supportingInfo", []).append({"reference": ref})
    elif ctx.appointment is not None:
        ctx.appointment.setdefault("supportingInformation", []).append({"reference": ref})
    if order is not None:
        order.observations.append(observation)
    ctx.observation = observation
    ctx.note_target = observation
    return used


def _interpretation(value: Value) -> Json:
    target = maps.INTERPRETATION.get(value.c(1))
    if target:
        return {"system": target[2], "code": target[0], "display": target[1]}
    return prune({"code": value.c(1), "display": value.c(2)})


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
        return None
    converted = [_one_value(ctx, kind, r, units) for r in reps]
    converted = [c for c in converted if c[0]]
    if not converted:
        return None
    if len(converted) == 1:
        name, value = converted[0]
        observation[name] = value
    else:  # OBX[Observation-Component]: a repeating OBX-5 is one component each
        observation["component"] = [
            {"code": codeable(first(seg, 3)) or {"text": "unspecified"}, name: value}
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
    ctx.problems.append(f"OBX-2 {kind or 'empty'} has no FHIR value type; OBX-5 kept as text")
    return "valueString", value.text()


def nte(ctx: Context, seg: Segment) -> set[int]:
    """NTE -> note of the resource it follows (NTE[Observation], NTE[ServiceRequest])."""
    comment = "\n".join(v.text() for v in values(seg, 3))
    if not comment:
        return {1, 2}
    target = ctx.note_target
    if ctx.document is not None:
        from adapters.translate.v2_documents import document_note

        document_note(ctx, comment)
        return {1, 2, 3}
    if ctx.appointment is not None and target is ctx.appointment:
        existing = ctx.appointment.get("comment")
        ctx.appointment["comment"] = f"{existing}\n{comment}" if existing else comment
        return {1, 2, 3}
    if target is None or target.get("resourceType") not in _NOTEABLE:
        return {1, 2}
    annotation: Json = {"text": comment}
    author = ctx.party(practitioner(first(seg, 5)))
    if author:
        annotation["authorReference"] = {"reference": author}
    entered = ctx.time(text(seg, 6), "NTE-6")
    if entered:
        annotation["time"] = entered
    target.setdefault("note", []).append(annotation)
    return {1, 2, 3, 5, 6}


_NOTEABLE = frozenset({"Observation", "ServiceRequest", "Specimen", "Task"})


def spm(ctx: Context, seg: Segment) -> set[int]:
    """SPM -> Specimen (SPM[Specimen]) linked to the order's report and observations."""
    ids = first(seg, 2)
    identifiers = []
    if ids:
        for n, code in ((1, "PGN"), (2, "FGN")):
            if ids.s(n, 1):
                identifiers.append(
                    prune(
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": code,
                                    }
                                ]
                            },
                            "value": ids.s(n, 1),
                        }
                    )
                )
    collected = first(seg, 17)
    collection: Json = {
        "method": codeable(first(seg, 7)),
        "bodySite": codeable(first(seg, 8)),
    }
    if collected:
        start = ctx.time(collected.c(1), "SPM-17")
        end = ctx.time(collected.c(2), "SPM-17")
        if end:
            collection["collectedPeriod"] = {"start": start, "end": end}
        else:
            collection["collectedDateTime"] = start
    specimen = prune(
        {
            "resourceType": "Specimen",
            "identifier": identifiers,
            "type": codeable(first(seg, 4), "HL70487"),
            "collection": collection,
            "receivedTime": ctx.time(text(seg, 18), "SPM-18"),
            "condition": [c for v in values(seg, 24) if (c := codeable(v, "HL70493"))],
            "note": [{"text": v.text()} for v in values(seg, 14)],
        }
    )
    ref = ctx.builder.add(specimen, f"Specimen/{ctx.index}")
    ctx.about_patient(specimen)
    order = ctx.order
    if order is not None:
        order.specimens.append(ref)
        order.request.setdefault("specimen", []).append({"reference": ref})
        if order.report is not None:
            order.report.setdefault("specimen", []).append({"reference": ref})
        for observation in order.observations:
            observation.setdefault("specimen", {"reference": ref})
    ctx.note_target = specimen
    return {1, 2, 4, 7, 8, 14, 17, 18, 24}


def tq1(ctx: Context, seg: Segment) -> set[int]:
    """TQ1 -> ServiceRequest occurrence and priority (TQ1[ServiceRequest])."""
    if ctx.appointment is not None:  # SIU v2.6+: timing moved from SCH-11 to TQ1
        start = instant(ctx.time(text(seg, 7), "TQ1-7"))
        end = instant(ctx.time(text(seg, 8), "TQ1-8"))
        if start:
            ctx.appointment["start"] = start
        if end:
            ctx.appointment["end"] = end
        return {1, 7, 8}
    target = ctx.order.request if ctx.order is not None else ctx.referral
    if target is None:
        return {1}
    start = ctx.time(text(seg, 7), "TQ1-7")
    end = ctx.time(text(seg, 8), "TQ1-8")
    if start or end:
        target.pop("occurrenceDateTime", None)
        target["occurrencePeriod"] = prune({"start": start, "end": end})
    priority = mapped_code(text(seg, 9), maps.PRIORITY)
    if priority:
        target["priority"] = priority
    amount = first(seg, 2)
    number = decimal(amount.c(1)) if amount else None
    if number is not None:
        target["quantityQuantity"] = prune(
            {"value": number, "unit": amount.s(2, 1) if amount else ""}
        )
    return {1, 2, 7, 8, 9}


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
    authored = ctx.time(text(seg, 7), "RF1-7")
    expires = ctx.time(text(seg, 8), "RF1-8")
    priority = _REFERRAL_PRIORITY.get(text(seg, 2), "")
    referral = prune(
        {
            "resourceType": "ServiceRequest",
            "identifier": identifiers,
            "status": status,
            "_status": {"extension": [alternate_code(status_code, "HL70283")]}
            if status_code
            else None,
            "intent": "order",
            "category": [{"coding": [REFERRAL_CATEGORY]}, codeable(first(seg, 3), "HL70281")],
            "priority": priority,
            "authoredOn": authored,
            "occurrencePeriod": {"start": authored, "end": expires} if expires else None,
            "reasonCode": [r for v in values(seg, 10) if (r := codeable(v, "HL70336"))],
        }
    )
    ctx.referral = referral
    ctx.referral_ref = ctx.builder.add(referral, "ServiceRequest/referral")
    ctx.about_patient(referral)
    task = prune(
        {
            "resourceType": "Task",
            "identifier": [dict(i) for i in identifiers],
            "status": "requested",
            "businessStatus": codeable(first(seg, 1), "HL70283"),
            "intent": "order",
            "priority": priority,
            "focus": {"reference": ctx.referral_ref},
            "authoredOn": authored,
        }
    )
    ctx.task = task
    task_ref = ctx.builder.add(task, "Task/referral")
    ctx.about_patient(task, "for")
    ctx.focus.extend((ctx.referral_ref, task_ref))
    ctx.note_target = referral
    return {1, 2, 3, 6, 7, 8, 10, 11}


def prd(ctx: Context, seg: Segment) -> set[int]:
    """PRD -> Practitioner, by role: RP referrer (requester), RT referred-to (performer)."""
    role = text(seg, 1)
    person = ctx.party(provider_practitioner(seg))
    if not person:
        return {1}
    target = ctx.referral
    if role == "RP" and target is not None:
        target["requester"] = {"reference": person}
        if ctx.task is not None:
            ctx.task["requester"] = {"reference": person}
    elif role in ("RT", "CP") and target is not None:
        target.setdefault("performer", []).append({"reference": person})
        if ctx.task is not None and "owner" not in ctx.task:
            ctx.task["owner"] = {"reference": person}
    elif role in ("PP", "FHCP") and ctx.patient is not None:
        ctx.patient.setdefault("generalPractitioner", []).append({"reference": person})
    else:
        return {1}
    return {1, 2, 3, 5, 7}


def prt(ctx: Context, seg: Segment) -> set[int]:
    """PRT -> by PRT-4 role: PP the GP, OP the orderer, RCT/CT a copy-to (CI-SIS), else none."""
    role = first(seg, 4)
    code = role.c(1) if role else ""
    person = ctx.party(practitioner(first(seg, 5))) or ctx.party(organization(first(seg, 8)))
    if not person:
        return {1, 2}
    if code in ("PP", "ODRP") and ctx.patient is not None and ctx.order is None:
        ctx.patient.setdefault("generalPractitioner", []).append({"reference": person})
    elif code == "OP" and ctx.order is not None:
        ctx.order.request["requester"] = {"reference": person}
    elif code in ("RCT", "CT") and ctx.order is not None and ctx.order.report is not None:
        ctx.order.report.setdefault("extension", []).append(
            {"url": RESULT_COPIES_TO_URL, "valueReference": {"reference": person}}
        )
    else:
        return {1, 2}
    return {1, 2, 4, 5, 8}


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
    names = [n for v in values(seg, 2) if (n := human_name(v))]
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


HANDLERS: dict[str, Handler] = {
    "ORC": orc,
    "OBR": obr,
    "OBX": obx,
    "NTE": nte,
    "SPM": spm,
    "TQ1": tq1,
    "RF1": rf1,
    "PRD": prd,
    "PRT": prt,
}
