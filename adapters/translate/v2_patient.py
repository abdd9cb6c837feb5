"""Patient segments -> Patient and the people and accounts that hang off it.

Maps (v2-to-FHIR IG segment sheets): PID[Patient], PID[Account],
CX[RelatedPerson-Mother] (PID-21), PD1[Patient], PD1[Observation-LivingWill],
NK1[RelatedPerson] and NK1[Patient] (each next of kin is a RelatedPerson and a
``Patient.contact``), MRG[Account]. MRG (ADT^A40) follows FHIR's merge
pattern: the merged-away record becomes an inactive Patient ``replaced-by``
the surviving one. ARV (access restrictions, no IG sheet) becomes security
labels on the Patient; DB1 (disability) the disabled person's identifier.

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
    dtm,
    first,
    human_name,
    identifier_dln,
    identifier_type,
    language,
    mapped_code,
    prune,
    telecom,
    text,
    values,
    whole,
    yes_no,
)
from adapters.translate.parties import (
    identifier,
    organization_xon,
    practitioner,
    xon_organization,
)
from adapters.translate.v2_to_fhir import Context, Handler

IDENTITY_RELIABILITY_URL = (
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
)
IDENTITY_STATUS_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445"
_EXT = "http://hl7.org/fhir/StructureDefinition/"


def _coded_extension(
    url: str, value: Value | None, table: str = "", inner: str = ""
) -> Json | None:
    concept = codeable(value, table)
    if concept is None:
        return None
    if inner:
        return {"url": url, "extension": [{"url": inner, "valueCodeableConcept": concept}]}
    return {"url": url, "valueCodeableConcept": concept}


def pid(ctx: Context, seg: Segment) -> set[int]:
    """PID -> Patient (PID[Patient]), PID-18 -> Account, PID-21 -> the mother."""
    identifiers = [identifier(ctx, v) for n in (2, 3, 4) for v in values(seg, n)]
    ssn = text(seg, 19)
    if ssn:  # PID-19: social beneficiary number ("SB" outside the US, IG PID[Patient])
        identifiers.append({"value": ssn, "type": identifier_type("SB")})
    identifiers.append(identifier_dln(first(seg, 20)))
    names = [n for v in values(seg, 5) for n in human_name(v)]
    names += [n for v in values(seg, 9) for n in human_name(v)]
    telecoms = [telecom(v, "home") for v in values(seg, 13)]
    telecoms += [telecom(v, "work") for v in values(seg, 14)]
    telecoms += [telecom(v) for v in values(seg, 40)]
    extensions: list[Json | None] = []
    mother = first(seg, 6)
    if mother:
        extensions.append({"url": _EXT + "patient-mothersMaidenName", "valueString": mother.flat()})
    for value in values(seg, 17):
        extensions.append(
            {
                "url": _EXT + "patient-religion",
                "valueCodeableConcept": codeable(value, "HL70006", maps.RELIGION),
            }
        )
    birth_place = whole(seg, 23)
    if birth_place:
        extensions.append(
            {"url": _EXT + "patient-birthPlace", "valueAddress": {"text": birth_place}}
        )
    for n in (26, 39):
        for value in values(seg, n):
            extensions.append(_coded_extension(_EXT + "patient-citizenship", value, "", "code"))
    for value in values(seg, 28):
        extensions.append(_coded_extension(_EXT + "patient-nationality", value, "", "code"))
    animal = [
        {"url": part, "valueCodeableConcept": concept}
        for n, part in ((35, "species"), (36, "breed"))
        if (concept := codeable(first(seg, n)))
    ]
    if animal:
        extensions.append({"url": _EXT + "patient-animal", "extension": animal})
    for value in values(seg, 32):
        extensions.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": value.c(1)},
                    }
                ],
            }
        )
    patient: Json = {
        "resourceType": "Patient",
        "extension": extensions,
        "identifier": identifiers,
        "name": names,
        "telecom": telecoms,
        "gender": mapped_code(text(seg, 8), maps.ADMINISTRATIVE_SEX),
        "address": [address(v) for v in values(seg, 11)],
        "maritalStatus": codeable(first(seg, 16), "HL70002", maps.MARITAL_STATUS),
        "communication": [{"language": language(v), "preferred": True} for v in values(seg, 15)],
    }
    county = text(seg, 12)
    if county and patient["address"]:
        first_address = patient["address"][0]
        if first_address is not None and "district" not in first_address:
            first_address["district"] = county
    elif county:
        patient["address"] = [{"district": county}]
    birth = text(seg, 7)
    if birth and ctx.set_time(patient, "birthDate", birth, "PID-7"):
        birth_time = patient["birthDate"]
        patient["birthDate"] = birth_time[:10]
        patient.pop("_birthDate", None)
        if "T" in birth_time:
            patient["_birthDate"] = {
                "extension": [{"url": _EXT + "patient-birthTime", "valueDateTime": birth_time}]
            }
            if len(birth.split("^")[0].strip()) > 8 and not any(c in birth for c in "+-"):
                patient["_birthDate"]["extension"].append(
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/originalText",
                        "valueString": birth.strip(),
                    }
                )
    death = text(seg, 29)
    if death:
        ctx.set_time(patient, "deceasedDateTime", death, "PID-29")
    elif yes_no(text(seg, 30)) is not None:
        patient["deceasedBoolean"] = yes_no(text(seg, 30))
    order = text(seg, 25)
    if order.isdigit():
        patient["multipleBirthInteger"] = int(order)
    elif yes_no(text(seg, 24)) is not None:
        patient["multipleBirthBoolean"] = yes_no(text(seg, 24))
    patient = prune(patient)
    if ctx.patient is None:
        ctx.patient = patient
        ctx.patient_ref = ctx.add(patient, "Patient")
    else:  # ADT^A40: each PID/MRG pair names another survivor
        ctx.patient = patient
        ctx.patient_ref = ctx.add(patient, f"Patient/{ctx.index}")
    ctx.note_target = None
    ctx.scope = "patient"
    if ctx.family in ("ADT", "BAR"):
        ctx.focus.append(ctx.patient_ref)
    used = {
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        19,
        20,
        23,
        24,
        25,
        26,
        28,
        29,
        30,
    }
    used |= {32, 35, 36, 39, 40}
    account = first(seg, 18)
    if account:
        _account(ctx, account)
        used.add(18)
    mother = first(seg, 21)
    if mother:
        _mother(ctx, mother)
        used.add(21)
    return used


def _account(ctx: Context, value: Value) -> None:
    """PID-18 -> Account (PID[Account])."""
    account = {
        "resourceType": "Account",
        "status": "active",
        "identifier": [identifier(ctx, value)],
    }
    account = prune(account)
    ctx.account_ref = ctx.add(account, f"Account/{ctx.index}")
    ctx.needs_subject.append((account, "subject[]"))


def _mother(ctx: Context, value: Value) -> None:
    """PID-21 -> RelatedPerson, the mother (CX[RelatedPerson-Mother])."""
    related = {
        "resourceType": "RelatedPerson",
        "identifier": [identifier(ctx, value)],
        "relationship": [
            {
                "coding": [
                    {"code": "MTH", "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode"}
                ]
            }
        ],
    }
    related = prune(related)
    ctx.add(related, f"RelatedPerson/mother/{ctx.index}")
    ctx.about_patient(related, "patient")


def pd1(ctx: Context, seg: Segment) -> set[int]:
    """PD1 -> Patient (PD1[Patient]); PD1-7 -> a living-will Observation."""
    if ctx.patient is None:
        return set()
    patient = ctx.patient
    gps = patient.setdefault("generalPractitioner", [])
    for value in values(seg, 3):
        ref = organization_xon(ctx, value)
        if ref:
            gps.append({"reference": ref})
    for value in values(seg, 4):
        ref = practitioner(ctx, value)
        if ref:
            gps.append({"reference": ref})
    extensions = patient.setdefault("extension", [])
    disability = codeable(first(seg, 6))
    if disability:
        extensions.append({"url": _EXT + "patient-disability", "valueCodeableConcept": disability})
    congregation = first(seg, 14)
    if congregation:
        extensions.append({"url": _EXT + "patient-congregation", "valueString": congregation.c(1)})
    will = first(seg, 7)
    if will:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "75320-2"}]},
            "valueCodeableConcept": codeable(will, "HL70315", maps.LIVING_WILL_CODE),
        }
        ctx.add(observation, f"Observation/living-will/{ctx.index}")
        ctx.about_patient(observation)
    for key in ("generalPractitioner", "extension"):
        if not patient[key]:
            del patient[key]
    return {3, 4, 6, 7, 14}


def nk1(ctx: Context, seg: Segment) -> set[int]:
    """NK1 -> RelatedPerson (NK1[RelatedPerson]) and Patient.contact (NK1[Patient])."""
    relationships = [
        codeable(first(seg, 3), "HL70063", maps.RELATIONSHIP),
        codeable(first(seg, 7), "HL70131", maps.CONTACT_ROLE),
    ]
    names = [n for v in values(seg, 2) for n in human_name(v)]
    addresses = [address(v) for v in values(seg, 4)]
    telecoms = [telecom(v) for v in values(seg, 5)]
    telecoms += [telecom(v, "work") for v in values(seg, 6)]
    gender = mapped_code(text(seg, 15), maps.ADMINISTRATIVE_SEX)
    period = prune(
        {"start": ctx.time(text(seg, 8), "NK1-8"), "end": ctx.time(text(seg, 9), "NK1-9")}
    )
    extra_telecoms = [telecom(v) for n in (40, 41) for v in values(seg, n)]
    related: Json = {
        "resourceType": "RelatedPerson",
        "identifier": [identifier(ctx, v) for v in values(seg, 12)]
        + [identifier(ctx, v) for v in values(seg, 33)]
        + ([{"value": text(seg, 37), "type": identifier_type("SB")}] if text(seg, 37) else []),
        "name": names + [n for v in values(seg, 30) for n in human_name(v)],
        "relationship": relationships,
        "address": addresses + [address(v) for v in values(seg, 32)],
        "telecom": telecoms + [telecom(v) for v in values(seg, 31)] + extra_telecoms,
        "gender": gender,
        "birthDate": (dtm(text(seg, 16), ctx.clock) or "")[:10],
        "period": period,
        "communication": [{"language": language(v)} for v in values(seg, 20)],
    }
    related = prune(related)
    ctx.add(related, f"RelatedPerson/{ctx.index}")
    ctx.about_patient(related, "patient")
    if ctx.patient is not None:
        contact: Json = {
            "name": names[0] if names else None,
            "relationship": relationships,
            "address": addresses[0] if addresses else None,
            "telecom": telecoms + extra_telecoms,
            "gender": gender,
            "period": period,
        }
        employer = first(seg, 13)
        if employer:
            organization = xon_organization(ctx, employer)
            if organization is not None:
                people = [n for v in values(seg, 30) for n in human_name(v)]
                contact_telecoms = [telecom(v) for v in values(seg, 31)]
                contact_addresses = [address(v) for v in values(seg, 32)]
                organization["contact"] = [
                    prune(
                        {
                            "name": people[0] if people else None,
                            "telecom": contact_telecoms,
                            "address": contact_addresses[0] if contact_addresses else None,
                        }
                    )
                ]
                ref = ctx.builder.add_shared(prune(organization), f"Organization|NK1|{seg.raw}")
                contact["organization"] = {"reference": ref}
        contact = prune(contact)
        if contact:
            ctx.patient.setdefault("contact", []).append(contact)
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 20, 30, 31, 32, 33, 37, 40, 41}


def mrg(ctx: Context, seg: Segment) -> set[int]:
    """MRG (ADT^A40) -> the merged-away Patient, ``replaced-by`` the survivor; MRG-3 Account."""
    identifiers = [identifier(ctx, v) for n in (1, 4) for v in values(seg, n)]
    used = {1, 4, 7}
    for value in values(seg, 3):
        account = {
            "resourceType": "Account",
            "status": "unknown",
            "identifier": [identifier(ctx, value)],
        }
        account = prune(account)
        ctx.add(account, f"Account/merged/{ctx.index}")
        used.add(3)
    if not identifiers or not ctx.patient_ref or ctx.patient is None:
        return used
    old = prune(
        {
            "resourceType": "Patient",
            "active": False,
            "identifier": identifiers,
            "name": [n for v in values(seg, 7) for n in human_name(v)],
            "link": [{"other": {"reference": ctx.patient_ref}, "type": "replaced-by"}],
        }
    )
    old_ref = ctx.add(old, f"Patient/merged/{ctx.index}")
    ctx.patient.setdefault("link", []).append({"other": {"reference": old_ref}, "type": "replaces"})
    _link(ctx, ctx.patient, ctx.patient_ref, "source")
    _link(ctx, old, old_ref, "historical")
    return used


def _link(ctx: Context, patient: Json, reference: str, kind: str) -> None:
    """Record a merge in the message's Linkage (FHIR's record of one person's two records)."""
    target: Json = {"reference": reference, "type": "Patient"}
    identifiers = patient.get("identifier") or []
    if identifiers:
        target["identifier"] = {k: v for k, v in identifiers[0].items() if k != "assigner"}
    if ctx.linkage is None:
        ctx.linkage = {"resourceType": "Linkage", "item": [{"type": kind, "resource": target}]}
        ctx.add(ctx.linkage, "Linkage")
    else:
        ctx.linkage["item"].append({"type": kind, "resource": target})


_SECURITY = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def arv(ctx: Context, seg: Segment) -> set[int]:
    """ARV (access restrictions) -> security labels on the Patient (no IG sheet)."""
    if ctx.patient is None:
        return {1}
    labels = [{"system": _SECURITY, "code": v.c(1)} for v in values(seg, 3) if v.c(1)]
    labels += [
        {"system": _SECURITY, "code": "PRS", "display": v.c(2) or v.c(1)} for v in values(seg, 5)
    ]
    if labels:
        ctx.patient.setdefault("meta", {}).setdefault("security", []).extend(labels)
    return {1, 2, 3, 4, 5, 6}


def db1(ctx: Context, seg: Segment) -> set[int]:
    """DB1 -> the disabled person's identifier on the Patient (DB1-2 PT: the patient)."""
    if ctx.patient is None or text(seg, 2) not in ("PT", ""):
        return {1, 2}
    for value in values(seg, 3):
        found = identifier(ctx, value)
        if found:
            ctx.patient.setdefault("identifier", []).append(found)
    return {1, 2, 3}


HANDLERS: dict[str, Handler] = {
    "PID": pid,
    "PD1": pd1,
    "NK1": nk1,
    "MRG": mrg,
    "ARV": arv,
    "DB1": db1,
}
