"""Pharmacy and immunization segments -> Immunization, MedicationRequest, Medication.

Maps (v2-to-FHIR IG): RXA[Immunization], RXR[Immunization], ORC[Immunization]
(the order's identifiers and ordering provider on the Immunization),
RXO[MedicationRequest], RXR[MedicationRequest], TQ1[MedicationRequest]. RXE
(the pharmacy's encoded order) and RXC (components) have no IG sheet; they
follow RXO's pattern: RXE is the pharmacy's MedicationRequest (intent
``filler-order``, ``basedOn`` the prescriber's), RXC an ingredient of its
Medication.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    address,
    codeable,
    cq_quantity,
    decimal,
    first,
    prune,
    text,
    values,
)
from adapters.translate.parties import location, organization_xon, practitioner
from adapters.translate.v2_to_fhir import Context, Handler
from adapters.translate.vocabulary import code_system_uri

V2_0443 = "http://terminology.hl7.org/CodeSystem/v2-0443"


def _function(code: str, display: str) -> Json:
    return {"coding": [{"system": V2_0443, "code": code, "display": display}]}


def _order_identifiers(ctx: Context) -> list[Json]:
    if ctx.order is None:
        return []
    return [dict(i) for i in ctx.order.request.get("identifier", [])]


def rxa(ctx: Context, seg: Segment) -> set[int]:
    """RXA -> Immunization (RXA[Immunization], ORC[Immunization])."""
    performers = []
    if ctx.order is not None and ctx.order.orc is not None:
        ordering = practitioner(ctx, first(ctx.order.orc, 12))
        if ordering:
            performers.append(
                {"function": _function("OP", "Ordering Provider"), "actor": {"reference": ordering}}
            )
    for value in values(seg, 10):
        ref = practitioner(ctx, value)
        if ref:
            performers.append(
                {"function": _function("AP", "Administering Provider"), "actor": {"reference": ref}}
            )
    action = text(seg, 21)
    completion = text(seg, 20)
    if action == "D":
        status = "entered-in-error"
    else:
        status = {"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}.get(
            completion, "completed"
        )
    dose = decimal(text(seg, 6))
    units = first(seg, 7)
    quantity: Json | None = None
    if dose is not None and dose != 999:  # 999: dose unknown (CDC IIS guide)
        quantity = {"value": dose}
        if units:
            quantity.update(prune({"unit": units.c(2) or units.c(1), "code": units.c(1)}))
            if units.c(3):
                quantity["system"] = code_system_uri(units.c(3))
    manufacturer = first(seg, 17)
    manufacturer_ref = ""
    if manufacturer and (manufacturer.c(2) or manufacturer.c(1)):
        manufacturer_ref = ctx.builder.add_shared(
            prune(
                {
                    "resourceType": "Organization",
                    "name": manufacturer.c(2),
                    "identifier": [{"value": manufacturer.c(1)}] if manufacturer.c(1) else [],
                }
            ),
            f"Organization|RXA-17|{manufacturer.raw}",
        )
    place = location(ctx, first(seg, 27), address=address(first(seg, 28)))
    immunization: Json = {
        "resourceType": "Immunization",
        "identifier": _order_identifiers(ctx),
        "status": status,
        "vaccineCode": codeable(first(seg, 5), "CVX") or {"text": "unknown"},
        "doseQuantity": quantity,
        "performer": performers,
        "lotNumber": text(seg, 15),
        "expirationDate": (ctx.time(text(seg, 16), "RXA-16") or "")[:10],
        "manufacturer": {"reference": manufacturer_ref} if manufacturer_ref else None,
        "statusReason": codeable(first(seg, 18)),
        "reasonCode": [codeable(v) for v in values(seg, 19)],
        "location": {"reference": place} if place else None,
        "primarySource": True,
    }
    if not ctx.set_time(immunization, "occurrenceDateTime", text(seg, 3), "RXA-3"):
        immunization["occurrenceString"] = "unknown"
    if ctx.order is not None and ctx.order.orc is not None:
        ctx.set_time(immunization, "recorded", text(ctx.order.orc, 9), "ORC-9")
    if action == "A":
        ctx.set_time(immunization, "recorded", text(seg, 22), "RXA-22")
    immunization = prune(immunization)
    ctx.immunization = immunization
    ref = ctx.add(immunization, f"Immunization/{ctx.index}")
    ctx.about_patient(immunization, "patient")
    ctx.focus.append(ref)
    ctx.note_target = immunization
    ctx.scope = "immunization"
    return {1, 2, 3, 5, 6, 7, 10, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28}


def rxr(ctx: Context, seg: Segment) -> set[int]:
    """RXR -> route and site (RXR[Immunization], RXR[MedicationRequest])."""
    route = codeable(first(seg, 1), "HL70162", maps.ROUTE_OF_ADMINISTRATION)
    site = codeable(first(seg, 2), "HL70163", maps.BODY_PARTS)
    if ctx.scope == "immunization" and ctx.immunization is not None:
        if route:
            ctx.immunization["route"] = route
        if site:
            ctx.immunization["site"] = site
        return {1, 2}
    request = ctx.medication_request
    if request is None:
        return {1}
    dosage = _dosage(request)
    dosage.update(
        prune(
            {
                "route": route,
                "site": site,
                "method": codeable(first(seg, 4), "HL70165", maps.ADMINISTRATION_METHOD),
                "additionalInstruction": [
                    codeable(first(seg, 5), "HL70166", maps.ROUTING_INSTRUCTION)
                ],
            }
        )
    )
    return {1, 2, 4, 5}


def _dosage(request: Json) -> Json:
    dosages = request.setdefault("dosageInstruction", [])
    if not dosages:
        dosages.append({})
    dosage: Json = dosages[0]
    return dosage


def _units(value: Value | None) -> Json:
    if not value:
        return {}
    return prune({"unit": value.c(2) or value.c(1), "code": value.c(1) if value.c(3) else ""})


def _medication(ctx: Context, code: Value | None, form: Value | None, key: str) -> str:
    concept = codeable(code)
    if concept is None:
        return ""
    medication = prune(
        {
            "resourceType": "Medication",
            "code": concept,
            "form": codeable(form, "HL70400", maps.REQUESTED_DOSAGE_FORM),
        }
    )
    return ctx.add(medication, key)


def rxo(ctx: Context, seg: Segment) -> set[int]:
    """RXO -> the prescriber's MedicationRequest (RXO[MedicationRequest]) and its Medication."""
    medication = _medication(ctx, first(seg, 1), first(seg, 5), f"Medication/RXO/{ctx.index}")
    low, high = decimal(text(seg, 2)), decimal(text(seg, 3))
    units = _units(first(seg, 4))
    dose_range = prune(
        {
            "low": {"value": low, **units} if low is not None else None,
            "high": {"value": high, **units} if high is not None else None,
        }
    )
    quantity = decimal(text(seg, 11))
    repeats = text(seg, 13)
    request: Json = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "original-order",
        "identifier": _order_identifiers(ctx),
        "medicationReference": {"reference": medication} if medication else None,
        "medicationCodeableConcept": None if medication else {"text": "unknown"},
        "dosageInstruction": [
            prune(
                {
                    "doseAndRate": [{"doseRange": dose_range}] if dose_range else [],
                    "text": "\n".join(v.text() for v in values(seg, 6)),
                    "patientInstruction": "\n".join(v.text() for v in values(seg, 7)),
                    "maxDosePerPeriod": _per_day(first(seg, 23)),
                }
            )
        ],
        "substitution": {
            "allowedCodeableConcept": codeable(first(seg, 9), "HL70161", maps.ALLOW_SUBSTITUTION)
        }
        if first(seg, 9)
        else None,
        "dispenseRequest": prune(
            {
                "quantity": {"value": quantity, **_units(first(seg, 12))}
                if quantity is not None
                else None,
                "numberOfRepeatsAllowed": int(repeats) if repeats.isdigit() else None,
            }
        ),
        "requester": {"reference": r} if (r := practitioner(ctx, first(seg, 14))) else None,
    }
    _order_details(ctx, request)
    request = prune(request)
    ctx.medication_request = request
    ctx.add(request, f"MedicationRequest/{ctx.index}")
    ctx.about_patient(request)
    ctx.focus.append(f"urn:uuid:{request['id']}")
    ctx.note_target = request
    ctx.scope = "pharmacy"
    ctx.prescription = request
    return {1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 13, 14, 23}


def _order_details(ctx: Context, request: Json) -> None:
    orc_segment = ctx.order.orc if ctx.order is not None else None
    if orc_segment is None:
        return
    ctx.set_time(request, "authoredOn", text(orc_segment, 9), "ORC-9")
    if "requester" not in request or not request["requester"]:
        ordering = practitioner(ctx, first(orc_segment, 12))
        if ordering:
            request["requester"] = {"reference": ordering}
    recorder = practitioner(ctx, first(orc_segment, 10))
    if recorder:
        request["recorder"] = {"reference": recorder}


def _per_day(value: Value | None) -> Json | None:
    """A total daily dose (CQ) -> maxDosePerPeriod: the amount per 1 day."""
    amount = cq_quantity(value)
    if amount is None:
        return None
    day = {"value": 1, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    return {"numerator": amount, "denominator": day}


def rxe(ctx: Context, seg: Segment) -> set[int]:
    """RXE -> the pharmacy's MedicationRequest (filler order), based on the prescriber's."""
    medication = _medication(ctx, first(seg, 2), first(seg, 6), f"Medication/RXE/{ctx.index}")
    dose = decimal(text(seg, 3))
    units = _units(first(seg, 5))
    quantity = decimal(text(seg, 10))
    repeats = text(seg, 12)
    rate = decimal(text(seg, 23))
    prescription = ctx.prescription
    request: Json = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "filler-order",
        "identifier": _order_identifiers(ctx)
        + (
            [
                {
                    "value": text(seg, 15),
                    "type": {"coding": [{"code": "PRN", "display": "Prescription number"}]},
                }
            ]
            if text(seg, 15)
            else []
        ),
        "medicationReference": {"reference": medication} if medication else None,
        "medicationCodeableConcept": None if medication else {"text": "unknown"},
        "dosageInstruction": [
            prune(
                {
                    "doseAndRate": [
                        prune(
                            {
                                "doseQuantity": {"value": dose, **units}
                                if dose is not None
                                else None,
                                "rateQuantity": {"value": rate, **_units(first(seg, 24))}
                                if rate is not None
                                else None,
                            }
                        )
                    ],
                    "additionalInstruction": [codeable(v) for v in values(seg, 7)],
                    "maxDosePerPeriod": _per_day(first(seg, 19)),
                }
            )
        ],
        "dispenseRequest": prune(
            {
                "quantity": {"value": quantity, **_units(first(seg, 11))}
                if quantity is not None
                else None,
                "numberOfRepeatsAllowed": int(repeats) if repeats.isdigit() else None,
                "performer": {"reference": r}
                if (r := organization_xon(ctx, first(seg, 40)))
                else None,
            }
        ),
        "basedOn": [{"reference": f"urn:uuid:{prescription['id']}"}] if prescription else [],
    }
    _order_details(ctx, request)
    request = prune(request)
    ctx.medication_request = request
    ctx.add(request, f"MedicationRequest/RXE/{ctx.index}")
    ctx.about_patient(request)
    ctx.note_target = request
    ctx.scope = "pharmacy"
    return {1, 2, 3, 5, 6, 7, 10, 11, 12, 15, 19, 23, 24, 40}


def rxc(ctx: Context, seg: Segment) -> set[int]:
    """RXC -> an ingredient of the current order's Medication."""
    request = ctx.medication_request
    if request is None:
        return {1}
    component = _medication(ctx, first(seg, 2), None, f"Medication/RXC/{ctx.index}")
    if not component:
        return {1}
    amount = decimal(text(seg, 3))
    if amount is not None:
        found = ctx.builder.find(component)
        if found is not None:
            found["amount"] = {
                "numerator": {"value": amount, **_units(first(seg, 4))},
                "denominator": {"value": 1},
            }
    medication_ref = (request.get("medicationReference") or {}).get("reference", "")
    medication = ctx.builder.find(medication_ref) if medication_ref else None
    if medication is not None:
        strength = decimal(text(seg, 5))
        medication.setdefault("ingredient", []).append(
            prune(
                {
                    "itemReference": {"reference": component},
                    "strength": {
                        "numerator": {"value": strength, **_units(first(seg, 6))},
                        "denominator": {"value": 1},
                    }
                    if strength is not None
                    else None,
                }
            )
        )
    return {1, 2, 3, 4, 5, 6}


HANDLERS: dict[str, Handler] = {"RXA": rxa, "RXR": rxr, "RXO": rxo, "RXE": rxe, "RXC": rxc}
