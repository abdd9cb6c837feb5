"""Patient and visit segments -> Patient, Encounter and what hangs off them.

Maps (v2-to-FHIR IG segment sheets): PID[Patient], PD1[Patient],
ROL[Patient-GeneralPractitioner], NK1[RelatedPerson], PV1[Encounter],
PV2[Encounter], EVN[Provenance], DG1[Condition], AL1[AllergyIntolerance],
PR1[Procedure]. MRG (ADT^A40) follows FHIR's merge pattern: the merged-away
record becomes an inactive Patient ``replaced-by`` the surviving one.

French specifics kept (domain-requirements §3.1): PID-3 identifiers keep
their assigning-authority OIDs (INS-NIR ``urn:oid:1.2.250.1.213.1.4.8``),
and PID-32 (identity reliability: VALI, QUAL, PROV ...) becomes FR Core's
``fr-core-identity-reliability`` extension, never upgraded or inferred.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import (
    Json,
    Value,
    address,
    codeable,
    first,
    hd_system,
    human_name,
    identifier_cx,
    identifier_type,
    mapped_code,
    mapped_coding,
    organization,
    practitioner,
    prune,
    telecom,
    text,
    values,
)
from adapters.translate.v2_to_fhir import Context, Handler

IDENTITY_RELIABILITY_URL = (
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
)
IDENTITY_STATUS_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445"
# ROL-3 / PRT-4 roles that name the patient's own GP (ANS PAM FR: ODRP; HL7: PP, FHCP).
GP_ROLES = frozenset({"ODRP", "PP", "FHCP"})


def pid(ctx: Context, seg: Segment) -> set[int]:
    """PID -> Patient (PID[Patient])."""
    identifiers = [identifier_cx(v) for n in (2, 3, 4) for v in values(seg, n)]
    ssn = text(seg, 19)
    if ssn:  # PID-19: social beneficiary number ("SB" outside the US, IG PID[Patient])
        identifiers.append({"type": identifier_type("SB"), "value": ssn})
    names = [human_name(v) for v in values(seg, 5)]
    names += [
        {**n, "use": n.get("use", "nickname")} for v in values(seg, 9) if (n := human_name(v))
    ]
    birth = text(seg, 7)
    birth_time = ctx.time(birth, "PID-7")
    telecoms = [telecom(v, "home") for v in values(seg, 13)]
    telecoms += [telecom(v, "work") for v in values(seg, 14)]
    telecoms += [telecom(v) for v in values(seg, 40)]
    extensions: list[Json] = []
    mother = first(seg, 6)
    if mother and mother.c(1):
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": mother.c(1),
            }
        )
    statuses = [v.c(1) for v in values(seg, 32)]
    for status in statuses:
        extensions.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": status},
                    }
                ],
            }
        )
    death = text(seg, 29)
    multiple = text(seg, 24)
    order = text(seg, 25)
    patient: Json = {
        "resourceType": "Patient",
        "extension": extensions,
        "identifier": identifiers,
        "name": names,
        "telecom": telecoms,
        "gender": mapped_code(text(seg, 8), maps.ADMINISTRATIVE_SEX),
        "birthDate": birth_time[:10] if birth_time else None,
        "address": [address(v) for v in values(seg, 11)],
        "maritalStatus": _mapped_concept(first(seg, 16), maps.MARITAL_STATUS, "HL70002"),
        "communication": [{"language": codeable(v)} for v in values(seg, 15)],
    }
    if birth_time and "T" in birth_time:
        patient["_birthDate"] = {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": birth_time,
                }
            ]
        }
    if death:
        patient["deceasedDateTime"] = ctx.time(death, "PID-29")
    elif text(seg, 30) in ("Y", "N"):
        patient["deceasedBoolean"] = text(seg, 30) == "Y"
    if order.isdigit():
        patient["multipleBirthInteger"] = int(order)
    elif multiple in ("Y", "N"):
        patient["multipleBirthBoolean"] = multiple == "Y"
    patient = prune(patient)
    if ctx.patient is None:
        ctx.patient = patient
        ctx.patient_ref = ctx.builder.add(patient, "Patient")
    else:  # ADT^A40: each PID/MRG pair names another survivor
        ctx.patient = patient
        ctx.patient_ref = ctx.builder.add(patient, f"Patient/{ctx.index}")
    ctx.note_target = None
    if ctx.family == "ADT":
        ctx.focus.append(ctx.patient_ref)
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 16, 19, 24, 25, 29, 30, 32, 40}


def _mapped_concept(value: Value | None, table: maps.ConceptMap, v2_table: str) -> Json | None:
    if not value or not value.c(1):
        return None
    found = mapped_coding(value.c(1), table, v2_table)
    return prune({"coding": [found], "text": value.c(2)}) if found else None


def pd1(ctx: Context, seg: Segment) -> set[int]:
    """PD1 -> Patient.generalPractitioner (PD1[Patient]: PD1-3 facility, PD1-4 provider)."""
    if ctx.patient is None:
        return set()
    gps = ctx.patient.setdefault("generalPractitioner", [])
    for value in values(seg, 3):
        ref = ctx.party(organization(value))
        if ref:
            gps.append({"reference": ref})
    for value in values(seg, 4):
        ref = ctx.party(practitioner(value))
        if ref:
            gps.append({"reference": ref})
    return {3, 4}


def rol(ctx: Context, seg: Segment) -> set[int]:
    """ROL -> Patient.generalPractitioner (GP roles) or Encounter.participant."""
    role = first(seg, 3)
    code = role.c(1) if role else ""
    people = [ctx.party(practitioner(v)) for v in values(seg, 4)]
    people = [p for p in people if p]
    if code in GP_ROLES and ctx.patient is not None:
        ctx.patient.setdefault("generalPractitioner", []).extend({"reference": p} for p in people)
        return {1, 2, 3, 4}
    if ctx.encounter is not None:
        for person in people:
            ctx.encounter.setdefault("participant", []).append(
                prune({"type": [codeable(role, "HL70443")], "individual": {"reference": person}})
            )
        return {1, 2, 3, 4}
    return {1, 2}


def nk1(ctx: Context, seg: Segment) -> set[int]:
    """NK1 -> RelatedPerson (NK1[RelatedPerson])."""
    relation = first(seg, 3)
    related: Json = {
        "resourceType": "RelatedPerson",
        "name": [human_name(v) for v in values(seg, 2)],
        "relationship": [_mapped_concept(relation, maps.RELATIONSHIP, "HL70063")],
        "address": [address(v) for v in values(seg, 4)],
        "telecom": [telecom(v, "home") for v in values(seg, 5)]
        + [telecom(v, "work") for v in values(seg, 6)],
    }
    related = prune(related)
    ctx.builder.add(related, f"RelatedPerson/{text(seg, 1) or ctx.index}")
    ctx.about_patient(related, "patient")
    return {1, 2, 3, 4, 5, 6}


_PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"))


def pv1(ctx: Context, seg: Segment) -> set[int]:
    """PV1 -> Encounter (PV1[Encounter]); an empty ``N`` visit (A28/A31) makes none."""
    patient_class = text(seg, 2)
    valued = [n for n, raw in enumerate(seg.fields) if n > 2 and raw.strip()]
    if patient_class in ("", "N") and not valued:
        return {1, 2}
    discharge = ctx.time(text(seg, 45), "PV1-45")
    status = (
        "finished"
        if discharge
        else mapped_code(ctx.trigger, maps.EVENT_ENCOUNTER_STATUS)
        or mapped_code(patient_class, maps.PATIENT_CLASS_STATUS)
        or "unknown"
    )
    klass = maps.PATIENT_CLASS.get(patient_class)
    participants = []
    for field, code, label in (*_PARTICIPANTS, (17, "ADM", "admitter")):
        for value in values(seg, field):
            ref = ctx.party(practitioner(value))
            if ref:
                participants.append(
                    {
                        "type": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": code,
                                    }
                                ],
                                "text": label,
                            }
                        ],
                        "individual": {"reference": ref},
                    }
                )
    locations = []
    for field, loc_status in (
        (3, "planned" if patient_class == "P" else "active"),
        (6, "completed"),
    ):
        place = location(ctx, first(seg, field))
        if place:
            locations.append({"location": {"reference": place}, "status": loc_status})
    visit = first(seg, 19)
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
        "identifier": [
            {
                **(identifier_cx(visit) or {}),
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}
                    ],
                    "text": "visit number",
                },
            }
        ]
        if visit
        else [],
        "type": [codeable(first(seg, 4), "HL70007")],
        "serviceType": codeable(first(seg, 10), "HL70069"),
        "participant": participants,
        "period": {
            "start": ctx.time(text(seg, 44), "PV1-44"),
            "end": discharge,
        },
        "location": locations,
        "hospitalization": {
            "preAdmissionIdentifier": identifier_cx(first(seg, 5)),
            "admitSource": codeable(first(seg, 14), "HL70023"),
            "dischargeDisposition": codeable(first(seg, 36), "HL70112"),
        },
    }
    encounter = prune(encounter)
    ctx.encounter = encounter
    ctx.encounter_ref = ctx.builder.add(encounter, "Encounter")
    ctx.about_patient(encounter)
    if ctx.family == "ADT":
        ctx.focus.append(ctx.encounter_ref)
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 17, 19, 36, 44, 45}


# PL components from most to least granular, with their physical type (PL[Location]).
_PL_LEVELS = ((3, "bd"), (2, "ro"), (8, "lvl"), (1, "wa"), (7, "bu"), (4, "si"))


def location(ctx: Context, value: Value | None) -> str:
    """PL -> Location chain (PL[Location]): bed partOf room partOf ... facility.

    Return the reference of the most granular Location given, as the IG says
    the referring resource must point at it.
    """
    if not value:
        return ""
    levels = [(n, kind) for n, kind in _PL_LEVELS if value.s(n, 1) or value.s(n, 2)]
    parent = ""
    reference = ""
    for position, (n, kind) in enumerate(reversed(levels)):
        name, universal = value.s(n, 1), value.s(n, 2)
        key = "|".join(
            value.s(m, 1) + "&" + value.s(m, 2)
            for m, _ in reversed(levels[: len(levels) - position])
        )
        resource = prune(
            {
                "resourceType": "Location",
                "identifier": [
                    {"system": hd_system("", universal, value.s(n, 3)), "value": universal}
                ]
                if universal
                else [],
                "name": name or universal,
                "mode": "instance",
                "description": value.c(9) if position == len(levels) - 1 else "",
                "physicalType": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                            "code": kind,
                        }
                    ]
                },
                "partOf": {"reference": parent} if parent else None,
            }
        )
        reference = ctx.builder.add_shared(resource, f"Location|{key}")
        parent = reference
    if not levels and value.c(9):
        reference = ctx.builder.add_shared(
            {"resourceType": "Location", "name": value.c(9), "mode": "instance"},
            f"Location|description|{value.c(9)}",
        )
    return reference


def pv2(ctx: Context, seg: Segment) -> set[int]:
    """PV2 -> Encounter.reasonCode (PV2-3 admit reason)."""
    if ctx.encounter is None:
        return set()
    reason = codeable(first(seg, 3))
    if reason:
        ctx.encounter.setdefault("reasonCode", []).append(reason)
    return {3}


def mrg(ctx: Context, seg: Segment) -> set[int]:
    """MRG (ADT^A40) -> the merged-away Patient, ``replaced-by`` the surviving one."""
    identifiers = [identifier_cx(v) for n in (1, 4) for v in values(seg, n)]
    if not identifiers or not ctx.patient_ref or ctx.patient is None:
        return set()
    old = prune(
        {
            "resourceType": "Patient",
            "active": False,
            "identifier": identifiers,
            "name": [human_name(v) for v in values(seg, 7)],
            "link": [{"other": {"reference": ctx.patient_ref}, "type": "replaced-by"}],
        }
    )
    old_ref = ctx.builder.add(old, f"Patient/merged/{ctx.index}")
    ctx.patient.setdefault("link", []).append({"other": {"reference": old_ref}, "type": "replaces"})
    return {1, 4, 7}


def evn(ctx: Context, seg: Segment) -> set[int]:
    """EVN -> Provenance of the clinical event (EVN[Provenance])."""
    recorded = ctx.time(text(seg, 2), "EVN-2")
    operator = ctx.party(practitioner(first(seg, 5)))
    provenance = prune(
        {
            "resourceType": "Provenance",
            "recorded": recorded if recorded and "T" in recorded else None,
            "occurredDateTime": ctx.time(text(seg, 6), "EVN-6"),
            "reason": [codeable(first(seg, 4), "HL70062")],
            "activity": {"coding": [mapped_coding(ctx.trigger, maps.EVENT_TYPE, "HL70003")]},
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
        }
    )
    if "recorded" not in provenance:
        return {1}
    ctx.builder.add(provenance, "Provenance/EVN")
    ctx.needs_subject.append((provenance, "target"))
    return {1, 2, 4, 5, 6}


def dg1(ctx: Context, seg: Segment) -> set[int]:
    """DG1 -> Condition (DG1[Condition]) and Encounter.diagnosis."""
    code = codeable(first(seg, 3), "I10")
    if code is None:
        return {1}
    condition = prune(
        {
            "resourceType": "Condition",
            "code": code,
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
            "onsetDateTime": ctx.time(text(seg, 5), "DG1-5"),
            "recordedDate": ctx.time(text(seg, 19), "DG1-19"),
        }
    )
    ref = ctx.builder.add(condition, f"Condition/{text(seg, 1) or ctx.index}")
    ctx.about_patient(condition)
    if ctx.encounter is not None:
        ctx.encounter.setdefault("diagnosis", []).append(
            prune(
                {
                    "condition": {"reference": ref},
                    "rank": int(text(seg, 15))
                    if text(seg, 15).isdigit() and text(seg, 15) != "0"
                    else None,
                }
            )
        )
    if ctx.referral is not None:
        ctx.referral.setdefault("reasonReference", []).append({"reference": ref})
    return {1, 3, 5, 15, 19}


def al1(ctx: Context, seg: Segment) -> set[int]:
    """AL1 -> AllergyIntolerance (AL1[AllergyIntolerance])."""
    allergen = first(seg, 3)
    code = codeable(allergen)
    if code is None:
        return {1}
    category = mapped_code(text(seg, 2), maps.ALLERGY_CATEGORY)
    reactions = [r.c(1) for r in values(seg, 5) if r.c(1)]
    allergy = prune(
        {
            "resourceType": "AllergyIntolerance",
            "code": code,
            "category": [category] if category else [],
            "criticality": mapped_code(text(seg, 4), maps.ALLERGY_CRITICALITY),
            "reaction": [{"manifestation": [{"text": r}]} for r in reactions],
            "onsetDateTime": ctx.time(text(seg, 6), "AL1-6"),
        }
    )
    ctx.builder.add(allergy, f"AllergyIntolerance/{text(seg, 1) or ctx.index}")
    ctx.about_patient(allergy, "patient")
    return {1, 2, 3, 4, 5, 6}


def pr1(ctx: Context, seg: Segment) -> set[int]:
    """PR1 -> Procedure (PR1[Procedure])."""
    code = codeable(first(seg, 3))
    if code is None:
        return {1}
    performers = [ctx.party(practitioner(v)) for n in (8, 11) for v in values(seg, n)]
    procedure = prune(
        {
            "resourceType": "Procedure",
            "status": "completed",
            "code": code,
            "performedDateTime": ctx.time(text(seg, 5), "PR1-5"),
            "performer": [{"actor": {"reference": p}} for p in performers if p],
        }
    )
    ctx.builder.add(procedure, f"Procedure/{text(seg, 1) or ctx.index}")
    ctx.about_patient(procedure)
    return {1, 3, 4, 5, 8, 11}


HANDLERS: dict[str, Handler] = {
    "PID": pid,
    "PD1": pd1,
    "ROL": rol,
    "NK1": nk1,
    "PV1": pv1,
    "PV2": pv2,
    "MRG": mrg,
    "EVN": evn,
    "DG1": dg1,
    "AL1": al1,
    "PR1": pr1,
}
