"""Visit segments -> Encounter and the clinical facts recorded with it.

Maps (v2-to-FHIR IG segment sheets): PV1[Encounter], PV1[Patient],
PV1[Coverage], PV2[Encounter], EVN[Provenance], ROL[Encounter-PractitionerRole],
ROL[Patient-GeneralPractitioner], DG1[Condition], DG1[Encounter],
DG1[EpisodeOfCare], PR1[Procedure], AL1[AllergyIntolerance],
IAM[AllergyIntolerance]. ACC (accident) and PDA (patient death and autopsy)
have no IG sheet; they become what FHIR records them as: an injury
Observation (LOINC 11374-6) with its place, and the cause-of-death Condition,
the death certification and autopsy Procedures and the coroner Observation.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    address,
    codeable,
    decimal,
    first,
    first_coding,
    identifier_ei,
    mapped_code,
    mapped_coding,
    prune,
    telecom,
    text,
    values,
    whole,
    yes_no,
)
from adapters.translate.parties import (
    identifier,
    location,
    location_hd,
    organization_xon,
    practitioner,
    practitioner_role,
)
from adapters.translate.v2_to_fhir import Context, Handler

PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V2_0136 = "http://terminology.hl7.org/CodeSystem/v2-0136"
_EXT = "http://hl7.org/fhir/StructureDefinition/"
_PARTICIPANTS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
    (52, "PART", "Participation"),
)


def _participant(ref: str, code: str, label: str) -> Json:
    return {
        "type": [
            {"coding": [{"system": PARTICIPATION, "code": code, "display": label}], "text": label}
        ],
        "individual": {"reference": ref},
    }


def pv1(ctx: Context, seg: Segment) -> set[int]:
    """PV1 -> Encounter (PV1[Encounter]); an empty ``N`` visit (A28/A31) makes none."""
    patient_class = text(seg, 2)
    fields = seg.fields
    valued = [n for n in range(3, len(fields)) if fields[n].strip()]
    if patient_class in ("", "N") and not valued:
        return {1, 2}
    discharge = text(seg, 45)
    status = (
        "finished"
        if discharge
        else mapped_code(ctx.trigger, maps.EVENT_ENCOUNTER_STATUS)
        or mapped_code(patient_class, maps.PATIENT_CLASS_STATUS)
        or "unknown"
    )
    klass = maps.PATIENT_CLASS.get(patient_class)
    participants = []
    for n, code, label in _PARTICIPANTS:
        for value in values(seg, n):
            ref = practitioner(ctx, value)
            if ref:
                participants.append(_participant(ref, code, label))
    bed_status = text(seg, 40)
    current = first(seg, 3)
    operational = None
    if bed_status and current and (current.has(2) or current.has(3)):
        operational = mapped_coding(bed_status, maps.BED_STATUS, "HL70116")
    locations = []
    for n, loc_status, temporary in (
        (3, "planned" if patient_class == "P" else "active", False),
        (6, "completed", False),
        (11, "active", True),
        (42, "planned", False),
        (43, "completed", True),
    ):
        extra = {"operationalStatus": operational} if n == 3 and operational else {}
        place = location(ctx, first(seg, n), **extra)
        if place:
            entry: Json = {"location": {"reference": place}, "status": loc_status}
            if temporary:
                entry["extension"] = [
                    {
                        "url": _EXT + "subject-locationClassification",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/ValueSet/subject-location",
                                    "code": "temporary",
                                }
                            ]
                        },
                    }
                ]
            locations.append(entry)
    visit = first(seg, 19)
    identifiers: list[Json | None] = []
    if visit:
        visit_id = identifier(ctx, visit)
        if visit_id:
            visit_id["type"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}
                ],
                "text": "visit number",
            }
            identifiers.append(visit_id)
    identifiers += [identifier(ctx, v) for v in values(seg, 50)]
    destination = ""
    discharged_to = first(seg, 37)
    if discharged_to:
        destination = _discharge_location(ctx, discharged_to)
    encounter: Json = {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": klass[2], "code": klass[0], "display": klass[1]}
        if klass
        else {
            "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
            "code": "UNK",
            "display": "unknown",
        },
        "identifier": identifiers,
        "type": [codeable(first(seg, 4), "HL70007", maps.ADMISSION_TYPE)],
        "serviceType": codeable(first(seg, 10), "HL70069", maps.HOSPITAL_SERVICE),
        "participant": participants,
        "location": locations,
        "hospitalization": {
            "preAdmissionIdentifier": identifier(ctx, first(seg, 5)),
            "reAdmission": codeable(first(seg, 13), "HL70092", maps.READMISSION_INDICATOR),
            "admitSource": codeable(first(seg, 14), "HL70023"),
            "specialArrangement": [
                codeable(v, "HL70009", maps.AMBULATORY_STATUS) for v in values(seg, 15)
            ],
            "specialCourtesy": [
                codeable(v, "HL70099", maps.VIP_INDICATOR) for v in values(seg, 16)
            ],
            "dischargeDisposition": codeable(first(seg, 36), "HL70112", maps.DISCHARGE_DISPOSITION),
            "destination": {"reference": destination} if destination else None,
            "dietPreference": [codeable(v, "HL70114", maps.DIET_TYPE) for v in values(seg, 38)],
        },
    }
    period: Json = {}
    ctx.set_time(period, "start", text(seg, 44), "PV1-44")
    ctx.set_time(period, "end", discharge, "PV1-45")
    encounter["period"] = period
    if ctx.account_ref:
        encounter["account"] = [{"reference": ctx.account_ref}]
    episode = first(seg, 54)
    if episode:
        episode_resource = prune(
            {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "identifier": [identifier(ctx, episode)],
                "extension": [
                    {"url": _EXT + "resource-instance-description", "valueString": text(seg, 53)}
                ]
                if text(seg, 53)
                else [],
            }
        )
        episode_ref = ctx.add(episode_resource, f"EpisodeOfCare/{ctx.index}")
        ctx.about_patient(episode_resource, "patient")
        encounter["episodeOfCare"] = [{"reference": episode_ref}]
        ctx.episode = episode_resource
    importance = first(seg, 16)
    if importance and ctx.patient is not None:
        ctx.patient.setdefault("extension", []).append(
            {
                "url": _EXT + "patient-importance",
                "valueCodeableConcept": codeable(importance, "HL70099", maps.VIP_INDICATOR),
            }
        )
    financial = first(seg, 20)
    if financial:
        coverage = {
            "resourceType": "Coverage",
            "status": "active",
            "type": codeable(financial, "HL70064", maps.FINANCIAL_CLASS),
            "payor": [{"display": "unknown"}],
        }
        coverage = prune(coverage)
        ctx.add(coverage, f"Coverage/PV1/{ctx.index}")
        ctx.about_patient(coverage, "beneficiary")
    encounter = prune(encounter)
    ctx.encounter = encounter
    ctx.encounter_ref = ctx.add(encounter, f"Encounter/{ctx.index}")
    ctx.about_patient(encounter)
    ctx.scope = "visit"
    ctx.note_target = None
    if ctx.family in ("ADT", "BAR", "DFT"):
        ctx.focus.append(ctx.encounter_ref)
    return {
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        13,
        14,
        15,
        16,
        17,
        19,
        20,
        36,
        37,
        38,
        40,
        42,
        43,
    }.union({44, 45, 50, 52, 53, 54})


def _discharge_location(ctx: Context, value: Value) -> str:
    """PV1-37 (DLD) -> the Location the patient was discharged to (DLD[Location-Discharge])."""
    code = value.component(1)
    if code is None:
        return ""
    resource = prune(
        {
            "resourceType": "Location",
            "name": code.c(2) or code.c(1),
            "identifier": [{"value": code.c(1)}] if code.c(1) else [],
            "type": [codeable(code, "HL70113", maps.DISCHARGED_TO_LOCATION)],
            "physicalType": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "code": "si",
                    }
                ]
            },
        }
    )
    return ctx.builder.add_shared(resource, f"Location|DLD|{value.raw}")


def pv2(ctx: Context, seg: Segment) -> set[int]:
    """PV2 -> Encounter (PV2[Encounter])."""
    encounter = ctx.encounter
    if encounter is None:
        return set()
    place = location(ctx, first(seg, 1))
    if place:
        encounter.setdefault("location", []).append(
            {"location": {"reference": place}, "status": "planned"}
        )
    reason = codeable(first(seg, 3))
    if reason:
        encounter.setdefault("reasonCode", []).append(reason)
    extensions = encounter.setdefault("extension", [])
    for n, url in (
        (8, "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"),
        (9, "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"),
    ):
        moment = ctx.time(text(seg, n), f"PV2-{n}")
        if moment:
            extensions.append({"url": url, "valueDateTime": moment})
    days = decimal(text(seg, 11))
    if days is not None:
        encounter["length"] = {
            "value": days,
            "unit": "d",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    description = whole(seg, 12)
    if description:
        encounter["text"] = {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_xhtml(description)}</div>',
        }
    for value in values(seg, 13):
        ref = practitioner(ctx, value)
        if ref:
            encounter.setdefault("participant", []).append(_participant(ref, "REF", "referrer"))
    priority = codeable(first(seg, 25), "HL70217", maps.ENCOUNTER_PRIORITY)
    if priority:
        encounter["priority"] = priority
    arrival = first_coding(first(seg, 38), "HL70430", maps.MODE_OF_ARRIVAL_CODE)
    if arrival:
        extensions.append({"url": _EXT + "encounter-modeOfArrival", "valueCoding": arrival})
    if not extensions:
        del encounter["extension"]
    return {1, 3, 8, 9, 11, 12, 13, 25, 38}


def _xhtml(text_value: str) -> str:
    return (
        text_value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", "<br/>")
    )


def evn(ctx: Context, seg: Segment) -> set[int]:
    """EVN -> Provenance of the clinical event (EVN[Provenance])."""
    provenance: Json = {"resourceType": "Provenance"}
    if (
        not ctx.set_time(provenance, "recorded", text(seg, 2), "EVN-2")
        or "T" not in provenance["recorded"]
    ):
        return {1, 2}
    provenance.pop("_recorded", None)
    operator = practitioner(ctx, first(seg, 5))
    reason = first(seg, 4)
    provenance.update(
        {
            "occurredDateTime": ctx.time(text(seg, 6), "EVN-6"),
            "reason": [codeable(reason, "HL70062", maps.EVENT_REASON)]
            if reason and reason.c(1) != "U"
            else [],
            "activity": {
                "coding": [mapped_coding(ctx.trigger, maps.EVENT_TYPE, "HL70003")],
                "text": ctx.message.msh.get(9).replace(ctx.message.enc.subcomponent, "^"),
            },
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "author",
                            }
                        ]
                    },
                    "who": {"reference": operator} if operator else {"display": "sending system"},
                }
            ],
            "location": {"reference": location_hd(ctx, first(seg, 7))} if first(seg, 7) else None,
        }
    )
    provenance = prune(provenance)
    ctx.add(provenance, f"Provenance/EVN/{ctx.index}")
    ctx.needs_subject.append((provenance, "target"))
    return {1, 2, 4, 5, 6, 7}


GP_ROLES = frozenset({"ODRP", "PP", "FHCP"})


def rol(ctx: Context, seg: Segment) -> set[int]:
    """ROL -> PractitionerRole: the GP (PP, FHCP, ODRP), a visit participant, a performer."""
    role = first(seg, 3)
    code = role.c(1) if role else ""
    people = [practitioner(ctx, v) for v in values(seg, 4)]
    addresses = [address(v) for v in values(seg, 11)]
    if addresses and ctx.builder.entries:
        for person in people:
            found = ctx.builder.find(person)
            if found is not None and "address" not in found:
                found["address"] = [a for a in addresses if a]
    extra = {
        "identifier": [i for i in (identifier_ei(first(seg, 1)),) if i],
        "telecom": [telecom(v) for v in values(seg, 12)],
        "specialty": [codeable(v) for v in values(seg, 9)],
        "location": [{"reference": r} for r in (location(ctx, first(seg, 13)),) if r],
        "organization": {"reference": r} if (r := organization_xon(ctx, first(seg, 14))) else None,
        "period": prune(
            {"start": ctx.time(text(seg, 5), "ROL-5"), "end": ctx.time(text(seg, 6), "ROL-6")}
        ),
    }
    concept = codeable(role, "HL70443", maps.PROVIDER_ROLE)
    refs = [
        practitioner_role(
            ctx, person, code=concept, key=seg.raw, **{k: prune(v) for k, v in extra.items()}
        )
        for person in (people or [""])
    ]
    refs = [r for r in refs if r]
    if code in GP_ROLES and ctx.patient is not None and ctx.scope == "patient":
        ctx.patient.setdefault("generalPractitioner", []).extend({"reference": r} for r in refs)
    elif ctx.scope == "procedure" and ctx.procedure is not None:
        performers = ctx.procedure.setdefault("performer", [])
        performers.extend({"actor": {"reference": r}} for r in refs)
    elif ctx.encounter is not None:
        for ref in refs:
            ctx.encounter.setdefault("participant", []).append({"individual": {"reference": ref}})
    elif ctx.patient is not None:
        ctx.patient.setdefault("generalPractitioner", []).extend({"reference": r} for r in refs)
    return {1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14}


def dg1(ctx: Context, seg: Segment) -> set[int]:
    """DG1 -> Condition (DG1[Condition]), Encounter.diagnosis, EpisodeOfCare.diagnosis."""
    code = codeable(first(seg, 3), "I10")
    label = text(seg, 4)
    if label:
        code = {**(code or {}), "text": label}
    condition: Json = {"resourceType": "Condition", "code": code}
    ctx.set_time(condition, "onsetDateTime", text(seg, 5), "DG1-5")
    asserted = ctx.time(text(seg, 19), "DG1-19")
    condition.update(
        {
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "asserter": {"reference": r} if (r := practitioner(ctx, first(seg, 16))) else None,
            "recordedDate": asserted,
            "identifier": [i for i in (identifier_ei(first(seg, 20)),) if i],
            "extension": [{"url": _EXT + "condition-assertedDate", "valueDateTime": asserted}]
            if asserted
            else [],
        }
    )
    if text(seg, 21) == "D":
        condition["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        }
    parent = identifier_ei(first(seg, 22)) if first(seg, 22) else None
    parent_value = first(seg, 22)
    if parent_value and (parent or parent_value.c(3)):
        parent_resource = prune(
            {
                "resourceType": "Condition",
                "identifier": [parent or {"system": f"urn:oid:{parent_value.c(3)}"}],
            }
        )
        parent_ref = ctx.builder.add_shared(parent_resource, f"Condition|EI|{parent_value.raw}")
        ctx.about_patient(parent_resource)
        condition["extension"].append(
            {"url": _EXT + "condition-dueTo", "valueReference": {"reference": parent_ref}}
        )
    condition = prune(condition)
    if "code" not in condition and "identifier" not in condition:
        return {1}
    ref = ctx.add(condition, f"Condition/{ctx.index}")
    ctx.about_patient(condition)
    rank = text(seg, 15)
    diagnosis = prune(
        {
            "condition": {"reference": ref},
            "use": codeable(first(seg, 6), "HL70052", maps.DIAGNOSIS_TYPE),
            "rank": int(rank) if rank.isdigit() and rank != "0" else None,
        }
    )
    if ctx.encounter is not None:
        ctx.encounter.setdefault("diagnosis", []).append(diagnosis)
    episode = ctx.episode
    if episode is not None:
        role = diagnosis.pop("use", None)
        episode.setdefault("diagnosis", []).append(
            {**diagnosis, **({"role": role} if role else {})}
        )
    if ctx.referral is not None:
        ctx.referral.setdefault("reasonReference", []).append({"reference": ref})
    return {1, 2, 3, 4, 5, 6, 15, 16, 19, 20, 21, 22}


def _allergy(
    ctx: Context, seg: Segment, kind: int, allergen: int, severity: int, reaction: int
) -> Json:
    category = text(seg, kind)
    severity_code = text(seg, severity)
    reactions = [v.c(1) or v.c(2) for v in values(seg, reaction)]
    criticality = mapped_code(severity_code, maps.ALLERGY_CRITICALITY)
    reaction_severity = mapped_code(
        severity_code, maps.ALLERGY_SEVERITY__ALLERGY_INTOLERANCE_REACTION_SEVERITY
    )
    allergy: Json = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                    "display": "Active",
                }
            ]
        },
        "code": codeable(first(seg, allergen)),
        "category": [c for c in (mapped_code(category, maps.ALLERGY_CATEGORY),) if c],
        "type": mapped_code(category, maps.ALLERGY_TYPE),
        "criticality": criticality,
        "reaction": [
            prune({"manifestation": [{"text": r}], "severity": reaction_severity})
            for r in reactions
            if r
        ],
    }
    if category:
        allergy["_category"] = (
            [
                {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/alternate-codes",
                            "valueCodeableConcept": {
                                "coding": [
                                    mapped_coding(
                                        category,
                                        maps.ALLERGEN_TYPE__ALLERGY_INTOLERANCE_ORIGINAL_CATEGORY,
                                        "HL70127",
                                    )
                                ]
                            },
                        }
                    ]
                }
            ]
            if allergy["category"]
            else None
        )
    return allergy


def al1(ctx: Context, seg: Segment) -> set[int]:
    """AL1 -> AllergyIntolerance (AL1[AllergyIntolerance])."""
    allergy = _allergy(ctx, seg, 2, 3, 4, 5)
    ctx.set_time(allergy, "onsetDateTime", text(seg, 6), "AL1-6")
    allergy = prune(allergy)
    if "code" not in allergy:
        return {1}
    ctx.add(allergy, f"AllergyIntolerance/{ctx.index}")
    ctx.about_patient(allergy, "patient")
    return {1, 2, 3, 4, 5, 6}


def iam(ctx: Context, seg: Segment) -> set[int]:
    """IAM -> AllergyIntolerance (IAM[AllergyIntolerance])."""
    allergy = _allergy(ctx, seg, 2, 3, 4, 5)
    allergy["identifier"] = [i for i in (identifier_ei(first(seg, 7)),) if i]
    if text(seg, 11):
        ctx.set_time(allergy, "onsetDateTime", text(seg, 11), "IAM-11")
    elif text(seg, 12):
        allergy["onsetString"] = whole(seg, 12)
    ctx.set_time(allergy, "recordedDate", text(seg, 13), "IAM-13")
    status = codeable(first(seg, 17))
    if status:
        allergy["clinicalStatus"] = status
    allergy = prune(allergy)
    if "code" not in allergy:
        return {1}
    ctx.add(allergy, f"AllergyIntolerance/{ctx.index}")
    ctx.about_patient(allergy, "patient")
    ctx.note_target = allergy
    return {1, 2, 3, 4, 5, 7, 11, 12, 13, 17}


_PERFORMER_FUNCTION = (
    (8, "88189002", "Anesthesiologist"),
    (11, "304292004", "Surgeon"),
    (12, "", ""),
)


def pr1(ctx: Context, seg: Segment) -> set[int]:
    """PR1 -> Procedure (PR1[Procedure])."""
    code = codeable(first(seg, 3))
    label = text(seg, 4)
    if label and not (code and code.get("text")):
        code = {**(code or {}), "text": label}
    performers = []
    for n, function, display in _PERFORMER_FUNCTION:
        for value in values(seg, n):
            ref = practitioner(ctx, value)
            if ref:
                performers.append(
                    prune(
                        {
                            "actor": {"reference": ref},
                            "function": {
                                "coding": [
                                    {"system": SNOMED, "code": function, "display": display}
                                ],
                                "text": display,
                            }
                            if function
                            else None,
                        }
                    )
                )
    procedure: Json = {
        "resourceType": "Procedure",
        "status": "unknown",
        "code": code,
        "category": codeable(first(seg, 6), "HL70230"),
        "performer": performers,
        "reasonCode": [codeable(v) for v in values(seg, 15)],
        "identifier": [i for i in (identifier_ei(first(seg, 19)),) if i],
        "location": {"reference": r} if (r := location(ctx, first(seg, 23))) else None,
    }
    minutes = decimal(text(seg, 7))
    start = text(seg, 5)
    if minutes is not None and start:
        period: Json = {}
        ctx.set_time(period, "start", start, "PR1-5")
        procedure["performedPeriod"] = period
    else:
        ctx.set_time(procedure, "performedDateTime", start, "PR1-5")
    parent = identifier_ei(first(seg, 25))
    if parent:
        parent_resource = {"resourceType": "Procedure", "status": "unknown", "identifier": [parent]}
        parent_ref = ctx.add(parent_resource, f"Procedure/parent/{ctx.index}")
        ctx.about_patient(parent_resource)
        procedure["partOf"] = [{"reference": parent_ref}]
    procedure = prune(procedure)
    ctx.add(procedure, f"Procedure/{ctx.index}")
    ctx.about_patient(procedure)
    ctx.procedure = procedure
    ctx.scope = "procedure"
    return {1, 3, 4, 5, 6, 7, 8, 11, 12, 15, 19, 23, 25}


def _yes_no_observation(ctx: Context, code: str, display: str, value: str, key: str) -> str:
    answer = yes_no(value)
    if answer is None:
        return ""
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "valueCodeableConcept": {
            "coding": [
                {"system": V2_0136, "code": value.upper(), "display": "Yes" if answer else "No"}
            ]
        },
    }
    ref = ctx.add(observation, key)
    ctx.about_patient(observation)
    return ref


def acc(ctx: Context, seg: Segment) -> set[int]:
    """ACC (accident) -> an injury Observation (LOINC 11374-6) and the accident's place."""
    place_name = whole(seg, 3)
    place_address = address(first(seg, 11))
    place = ""
    if place_name or place_address:
        place = ctx.builder.add_shared(
            prune({"resourceType": "Location", "name": place_name, "address": place_address}),
            f"Location|ACC|{seg.raw}",
        )
    components = []
    for n, code, display in (
        (5, "AJRI", "Accident job related indicator"),
        (6, "ADI", "Accident death indicator"),
        (10, "PNI", "Police notified indicator"),
    ):
        answer = yes_no(text(seg, n))
        if answer is not None:
            components.append(
                {
                    "code": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0136",
                                "code": code,
                            }
                        ],
                        "text": display,
                    },
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": V2_0136,
                                "code": text(seg, n).upper(),
                                "display": "Yes" if answer else "No",
                            }
                        ]
                    },
                }
            )
    observation: Json = {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"value": text(seg, 13)}] if text(seg, 13) else [],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": "11374-6",
                    "display": "Injury incident description Narrative",
                }
            ]
        },
        "valueString": whole(seg, 8) or None,
        "valueCodeableConcept": codeable(first(seg, 2), "HL70050") if not whole(seg, 8) else None,
        "component": components,
        "performer": [{"reference": r} for r in (practitioner(ctx, first(seg, 7)),) if r],
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/event-location",
                "valueReference": {"reference": place},
            }
        ]
        if place
        else [],
    }
    ctx.set_time(observation, "effectiveDateTime", text(seg, 1), "ACC-1")
    observation = prune(observation)
    ctx.add(observation, f"Observation/ACC/{ctx.index}")
    ctx.about_patient(observation)
    return {1, 2, 3, 5, 6, 7, 8, 10, 11, 13}


def pda(ctx: Context, seg: Segment) -> set[int]:
    """PDA (patient death and autopsy) -> cause-of-death Condition, certification and autopsy."""
    for value in values(seg, 1):
        condition = prune({"resourceType": "Condition", "code": codeable(value, "I10")})
        ctx.add(condition, f"Condition/PDA/{ctx.index}/{value.raw}")
        ctx.about_patient(condition)
    place = location(ctx, first(seg, 2))
    if place and ctx.encounter is not None:
        ctx.encounter.setdefault("location", []).append(
            {"location": {"reference": place}, "status": "completed"}
        )
    _yes_no_observation(
        ctx, "69409-1", "Death certificate", text(seg, 3), f"Observation/PDA/3/{ctx.index}"
    )
    certifier = practitioner(ctx, first(seg, 5))
    certified = text(seg, 4)
    if certified or certifier:
        procedure: Json = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {
                "coding": [
                    {"system": SNOMED, "code": "308646001", "display": "Death certification"}
                ]
            },
            "performer": [
                {"actor": {"reference": certifier}, "function": {"text": "Death certified by"}}
            ]
            if certifier
            else [],
        }
        ctx.set_time(procedure, "performedDateTime", certified, "PDA-4")
        procedure = prune(procedure)
        ctx.add(procedure, f"Procedure/PDA/certification/{ctx.index}")
        ctx.about_patient(procedure)
    _yes_no_observation(
        ctx, "85699-7", "Autopsy was performed", text(seg, 6), f"Observation/PDA/6/{ctx.index}"
    )
    autopsy = first(seg, 7)
    performer = practitioner(ctx, first(seg, 8))
    if autopsy or performer:
        period: Json = {}
        if autopsy:
            ctx.set_time(period, "start", autopsy.c(1), "PDA-7.1")
            ctx.set_time(period, "end", autopsy.c(2), "PDA-7.2")
        procedure = prune(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {
                    "coding": [
                        {"system": SNOMED, "code": "29240004", "display": "Autopsy examination"}
                    ]
                },
                "performedPeriod": period,
                "performer": [
                    {
                        "actor": {"reference": performer},
                        "function": {"text": "Autopsy performed by"},
                    }
                ]
                if performer
                else [],
            }
        )
        ctx.add(procedure, f"Procedure/PDA/autopsy/{ctx.index}")
        ctx.about_patient(procedure)
    _yes_no_observation(
        ctx,
        "74497-9",
        "Medical examiner or coroner was contacted",
        text(seg, 9),
        f"Observation/PDA/9/{ctx.index}",
    )
    return {1, 2, 3, 4, 5, 6, 7, 8, 9}


HANDLERS: dict[str, Handler] = {
    "PV1": pv1,
    "PV2": pv2,
    "EVN": evn,
    "ROL": rol,
    "DG1": dg1,
    "AL1": al1,
    "IAM": iam,
    "PR1": pr1,
    "ACC": acc,
    "PDA": pda,
}
