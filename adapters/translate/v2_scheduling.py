"""Scheduling segments -> Appointment and what it books (SIU S12-S26).

Maps (v2-to-FHIR IG): SCH[Appointment], SCH[ServiceRequest],
AIS[Appointment], AIS[ServiceRequest], AIG[Appointment], AIL[Appointment],
AIP[Appointment], NTE[Appointment-Comment]. The trigger event says what
happened to the appointment when SCH-25 does not: S12 booked, S15 and S26
cancelled or no-show, S17 deleted (entered in error), others proposed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    address,
    codeable,
    decimal,
    first,
    identifier_ei,
    instant,
    prune,
    telecom,
    text,
    typed,
    values,
    whole,
)
from adapters.translate.parties import location, practitioner, practitioner_role
from adapters.translate.v2_to_fhir import Context, Handler

_TRIGGER_STATUS = {
    "S12": "booked",
    "S13": "booked",
    "S14": "booked",
    "S15": "cancelled",
    "S16": "cancelled",
    "S17": "entered-in-error",
    "S26": "noshow",
}
V2_0443 = "http://terminology.hl7.org/CodeSystem/v2-0443"
# (person, phone, address, location) fields of each SCH contact, and its role (table 0443).
_CONTACT_ROLES = (
    (12, 13, 14, 15, "PLCR", "Placer contact"),
    (16, 17, 18, 19, "FLCR", "Filler contact"),
    (20, 21, 0, 22, "EP", "Entering Provider"),
)


def sch(ctx: Context, seg: Segment) -> set[int]:
    """SCH -> Appointment (SCH[Appointment]) and the request it fulfils (SCH[ServiceRequest])."""
    status_value = first(seg, 25)
    status = ""
    if status_value:
        code = status_value.c(1)
        target = maps.APPOINTMENT_STATUS.get(code) or maps.APPOINTMENT_STATUS.get(code.capitalize())
        status = target[0] if target else ""
    status = status or _TRIGGER_STATUS.get(ctx.trigger, "proposed")
    reason = first(seg, 7)
    timing = first(seg, 11)
    duration = decimal(text(seg, 9))
    supporting = []
    for person_field, phone_field, address_field, place_field, code, display in _CONTACT_ROLES:
        for value in values(seg, person_field):
            person = practitioner(ctx, value)
            found = ctx.builder.find(person) if person else None
            if found is not None:
                found.setdefault("telecom", []).extend(
                    t for v in values(seg, phone_field) if (t := telecom(v))
                )
                if address_field:
                    found.setdefault("address", []).extend(
                        a for v in values(seg, address_field) if (a := address(v))
                    )
            place = location(ctx, first(seg, place_field))
            role = practitioner_role(
                ctx,
                person,
                code={"coding": [{"system": V2_0443, "code": code, "display": display}]},
                key=f"SCH-{person_field}|{place}",
                location=[{"reference": place}] if place else None,
            )
            if role:
                supporting.append({"reference": role})
    appointment: Json = {
        "resourceType": "Appointment",
        "identifier": [
            i
            for i in (identifier_ei(first(seg, 1), "PLAC"), identifier_ei(first(seg, 2), "FILL"))
            if i
        ],
        "status": status,
        # FHIR R4 binds appointmentType to table 0276 (SCH-7); SCH-8 (table 0277) has no FHIR home.
        "appointmentType": codeable(reason, "HL70276", maps.APPOINTMENT_REASON_CODES),
        "description": whole(seg, 6) or None,
        "minutesDuration": int(duration)
        if duration is not None
        and duration == duration.to_integral()
        and duration > 0
        and text(seg, 10).lower() in ("", "min", "m")
        else None,
        "supportingInformation": supporting,
    }
    if timing:
        appointment["start"] = instant(ctx.time(timing.c(4), "SCH-11.4"))
        appointment["end"] = instant(ctx.time(timing.c(5), "SCH-11.5"))
        priority = timing.c(6)
        if priority.isdigit():
            appointment["priority"] = int(priority)
    based_on = [
        i
        for i in (identifier_ei(first(seg, 26), "PLAC"), identifier_ei(first(seg, 27), "FILL"))
        if i
    ]
    if based_on:
        request = prune(
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "identifier": based_on,
            }
        )
        request_ref = ctx.add(request, f"ServiceRequest/SCH/{ctx.index}")
        ctx.about_patient(request)
        appointment["basedOn"] = [{"reference": request_ref}]
    appointment = prune(appointment)
    ctx.appointment = appointment
    ref = ctx.add(appointment, f"Appointment/{ctx.index}")
    ctx.about_patient(appointment, "participant")
    ctx.focus.append(ref)
    ctx.note_target = appointment
    ctx.scope = "appointment"
    return {1, 2, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 25, 26, 27}


def _period(ctx: Context, seg: Segment, start_field: int, duration_field: int) -> Json:
    """Return a participant period from a resource segment's start and duration."""
    start = instant(ctx.time(text(seg, start_field), f"{seg.name}-{start_field}"))
    if not start:
        return {}
    period: Json = {"start": start}
    minutes = decimal(text(seg, duration_field))
    unit = text(seg, duration_field + 1).lower()
    if minutes is not None and unit in ("", "min", "m", "minutes"):
        period["end"] = (
            datetime.fromisoformat(start) + timedelta(minutes=float(minutes))
        ).isoformat()
    return period


def _fill_appointment_times(ctx: Context, period: Json) -> None:
    appointment = ctx.appointment
    if appointment is None or not period:
        return
    if not appointment.get("start"):
        appointment["start"] = period["start"]
        if period.get("end"):
            appointment["end"] = period["end"]


def ais(ctx: Context, seg: Segment) -> set[int]:
    """AIS -> Appointment.serviceType and a ServiceRequest for the service (AIS[ServiceRequest])."""
    if ctx.appointment is None:
        return {1}
    service = codeable(first(seg, 3))
    period = _period(ctx, seg, 4, 7)
    _fill_appointment_times(ctx, period)
    if service:
        ctx.appointment.setdefault("serviceType", []).append(service)
    request = prune(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": service,
            "occurrencePeriod": period,
            "orderDetail": [codeable(v) for n in (11, 12) for v in values(seg, n)],
        }
    )
    if service:
        ref = ctx.add(request, f"ServiceRequest/AIS/{ctx.index}")
        ctx.about_patient(request)
        ctx.appointment.setdefault("basedOn", []).append({"reference": ref})
        ctx.service_request = request
        ctx.note_target = request
    ctx.scope = "appointment-resource"
    return {1, 2, 3, 4, 7, 8, 10, 11, 12}


def _participant(
    ctx: Context, actor: str, seg: Segment, type_field: int, start: int, duration: int
) -> None:
    appointment = ctx.appointment
    if appointment is None or not actor:
        return
    period = _period(ctx, seg, start, duration)
    _fill_appointment_times(ctx, period)
    appointment.setdefault("participant", []).append(
        prune(
            {
                "type": [codeable(first(seg, type_field))] if type_field else [],
                "actor": {"reference": actor},
                "status": "accepted",
                "period": period,
            }
        )
    )
    request = ctx.service_request
    if request is not None:
        request.setdefault("performer", []).append({"reference": actor})


def aig(ctx: Context, seg: Segment) -> set[int]:
    """AIG -> a participant naming a general resource, a Device (AIG[Appointment])."""
    resource = first(seg, 3)
    if ctx.appointment is None or not resource:
        return {1}
    device = ctx.builder.add_shared(
        prune(
            {
                "resourceType": "Device",
                "status": "active",
                "identifier": [
                    i
                    for i in (
                        {"value": resource.c(1)} if resource.c(1) else None,
                        {"value": resource.c(4)} if resource.c(4) else None,
                    )
                    if i
                ],
                "deviceName": [{"name": resource.c(2), "type": "model-name"}]
                if resource.c(2)
                else [],
            }
        ),
        f"Device|AIG|{resource.raw}",
    )
    _participant(ctx, device, seg, 4, 8, 11)
    ctx.note_target = ctx.builder.find(device)
    return {1, 2, 3, 4, 8, 11, 12}


def ail(ctx: Context, seg: Segment) -> set[int]:
    """AIL -> a participant naming a Location (AIL[Appointment])."""
    kind = codeable(first(seg, 4), "HL70305")
    place = location(ctx, first(seg, 3), type=[kind] if kind else None)
    if ctx.appointment is None or not place:
        return {1}
    _participant(ctx, place, seg, 0, 6, 9)
    request = ctx.service_request
    if request is not None:
        performers = request.get("performer", [])
        if performers and performers[-1] == {"reference": place}:
            performers.pop()
        request.setdefault("locationReference", []).append({"reference": place})
    ctx.note_target = ctx.builder.find(place)
    return {1, 2, 3, 4, 6, 9, 10}


def aip(ctx: Context, seg: Segment) -> set[int]:
    """AIP -> a participant naming a Practitioner (AIP[Appointment])."""
    person = practitioner(ctx, first(seg, 3))
    if ctx.appointment is None or not person:
        return {1}
    _participant(ctx, person, seg, 4, 6, 9)
    return {1, 2, 3, 4, 6, 9, 10}


def rgs(ctx: Context, seg: Segment) -> set[int]:
    """RGS only opens a resource group: nothing to translate."""
    ctx.scope = "appointment"
    return {1, 2}


__all__ = ["typed"]

HANDLERS: dict[str, Handler] = {
    "SCH": sch,
    "AIS": ais,
    "AIG": aig,
    "AIL": ail,
    "AIP": aip,
    "RGS": rgs,
}
