"""Financial segments -> Coverage, Account, ChargeItem and the parties they name.

Maps: IN1[Coverage] (v2-to-FHIR IG), with IN2 (no IG sheet) adding the
insured's identifiers; GT1 (guarantor, no IG sheet) becomes the Account's
guarantor, the Patient when GT1-11 says the patient is their own guarantor
(``SEL``), else a RelatedPerson; FT1 (financial transaction, no IG sheet)
becomes a ChargeItem with the Procedure or MedicationDispense it charges for,
as FHIR's financial module models them.
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
    human_name,
    identifier_ei,
    identifier_type,
    mapped_code,
    prune,
    telecom,
    text,
    values,
)
from adapters.translate.parties import (
    device_ei,
    identifier,
    location,
    organization_name,
    organization_xon,
    practitioner,
    xon_organization,
)
from adapters.translate.v2_to_fhir import Context, Handler

COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _money(value: Value | None) -> Json | None:
    """CP/MO (price) -> Money: the amount and its currency."""
    if not value:
        return None
    amount = decimal(value.s(1, 1))
    if amount is None:
        return None
    return prune({"value": amount, "currency": value.s(1, 2)})


def in1(ctx: Context, seg: Segment) -> set[int]:
    """IN1 -> Coverage (IN1[Coverage]), its payor, policy holder and subscriber."""
    payor = xon_organization(ctx, first(seg, 4)) or {"resourceType": "Organization"}
    plan_id = identifier(ctx, first(seg, 3))
    payor_extra = {
        "identifier": ([plan_id] if plan_id else []) + payor.get("identifier", []),
        "address": [address(v) for v in values(seg, 5)],
        "contact": [{"name": n} for v in values(seg, 6) for n in human_name(v)],
        "telecom": [telecom(v) for v in values(seg, 7)],
    }
    payor.update(payor_extra)
    payor = prune(payor)
    payor_ref = (
        ctx.builder.add_shared(payor, f"Organization|IN1|{seg.raw}") if len(payor) > 1 else ""
    )
    holder_ref = ""
    holder = first(seg, 11)
    if holder:
        holder_ref = organization_xon(
            ctx,
            holder,
            source=seg.field(44),
            address=[address(v) for v in values(seg, 44)],
        )
    relation = first(seg, 17)
    subscriber_ref = ""
    if relation and relation.c(1) == "SEL":
        subscriber_ref = ctx.patient_ref
    elif first(seg, 16) or relation:
        related: Json = {
            "resourceType": "RelatedPerson",
            "name": [n for v in values(seg, 16) for n in human_name(v)],
            "relationship": [codeable(relation, "HL70063", maps.RELATIONSHIP)],
            "birthDate": (ctx.time(text(seg, 18), "IN1-18") or "")[:10],
            "address": [address(v) for v in values(seg, 19)],
            "gender": mapped_code(text(seg, 43), maps.ADMINISTRATIVE_SEX),
        }
        subscriber_id = identifier(ctx, first(seg, 49))
        if subscriber_id:
            related["identifier"] = [subscriber_id]
        related = prune(related)
        subscriber_ref = ctx.add(related, f"RelatedPerson/IN1/{ctx.index}")
        ctx.about_patient(related, "patient")
        ctx.subscriber = related
    plan = first(seg, 2)
    classes = []
    if plan and plan.c(1):
        classes.append(
            prune(
                {
                    "value": plan.c(1),
                    "name": plan.c(2),
                    "type": {
                        "coding": [{"system": COVERAGE_CLASS, "code": "plan", "display": "Plan"}]
                    },
                }
            )
        )
    group = text(seg, 8)
    if group:
        classes.append(
            prune(
                {
                    "value": group,
                    "name": "+".join(v.c(1) or v.c(10) for v in values(seg, 9)),
                    "type": {
                        "coding": [{"system": COVERAGE_CLASS, "code": "group", "display": "Group"}]
                    },
                }
            )
        )
    cost = first(seg, 37)
    coverage: Json = {
        "resourceType": "Coverage",
        "status": "active",
        "class": classes,
        "network": plan.c(2) if plan else None,
        "type": codeable(first(seg, 15), "HL70086", maps.PLAN_ID),
        "identifier": [{"value": text(seg, 36)}] if text(seg, 36) else [],
        "subscriberId": first(seg, 49).c(1) if first(seg, 49) else None,  # type: ignore[union-attr]
        "payor": [{"reference": payor_ref}] if payor_ref else [{"display": "unknown"}],
        "policyHolder": {"reference": holder_ref} if holder_ref else None,
        "subscriber": {"reference": subscriber_ref} if subscriber_ref else None,
        "relationship": codeable(relation, "HL70063", maps.RELATIONSHIP),
        "costToBeneficiary": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0205",
                            "code": cost.c(2),
                        }
                    ]
                }
                if cost.c(2)
                else None,
                "valueMoney": _money(cost),
            }
        ]
        if cost and _money(cost)
        else [],
    }
    period: Json = {}
    ctx.set_time(period, "start", text(seg, 12), "IN1-12")
    ctx.set_time(period, "end", text(seg, 13), "IN1-13")
    coverage["period"] = period
    coverage = prune(coverage)
    ctx.coverage = coverage
    ctx.add(coverage, f"Coverage/{ctx.index}")
    ctx.about_patient(coverage, "beneficiary")
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 18, 19, 36, 37, 43, 44, 49}


_IN2_IDENTIFIERS = ((6, "MC"), (8, "MA"), (10, "MI"))


def in2(ctx: Context, seg: Segment) -> set[int]:
    """IN2 -> the insured's identifiers on the Coverage's subscriber and the Coverage."""
    coverage = ctx.coverage
    subscriber = ctx.subscriber
    found: list[Json] = []
    for n, code in _IN2_IDENTIFIERS:
        value = text(seg, n)
        if value:
            found.append({"value": value, "type": identifier_type(code)})
    ssn = text(seg, 2)
    owners = []
    if subscriber is not None:
        owners.append(subscriber)
    elif ctx.patient is not None:
        owners.append(ctx.patient)
    for owner in owners:
        ids = owner.setdefault("identifier", [])
        ids.extend(i for i in (identifier(ctx, v) for v in values(seg, 1)) if i)
        if ssn:
            ids.append({"value": ssn, "type": identifier_type("SS")})
        ids.extend(found)
    if coverage is not None:
        coverage.setdefault("identifier", []).extend(dict(i) for i in found)
        coverage["identifier"].extend(i for i in (identifier(ctx, v) for v in values(seg, 61)) if i)
    return {1, 2, 6, 8, 10, 61}


def gt1(ctx: Context, seg: Segment) -> set[int]:
    """GT1 -> the Account's guarantor: the Patient (GT1-11 SEL) or a RelatedPerson."""
    relation = first(seg, 11)
    self_guarantor = relation is not None and relation.c(1) == "SEL"
    identifiers = [identifier(ctx, v) for v in values(seg, 2)]
    if text(seg, 12):
        identifiers.append({"value": text(seg, 12), "type": identifier_type("SB")})
    identifiers += [identifier(ctx, v) for v in values(seg, 19)]
    details: Json = {
        "identifier": identifiers,
        "name": [n for v in values(seg, 3) for n in human_name(v)],
        "address": [address(v) for v in values(seg, 5)],
        "telecom": [telecom(v, "home") for v in values(seg, 6)]
        + [telecom(v, "work") for v in values(seg, 7)],
        "gender": mapped_code(text(seg, 9), maps.ADMINISTRATIVE_SEX),
    }
    party = ""
    if self_guarantor and ctx.patient is not None:
        for key, found in prune(details).items():
            if isinstance(found, list):
                ctx.patient.setdefault(key, []).extend(found)
        party = ctx.patient_ref
    else:
        related = prune(
            {
                "resourceType": "RelatedPerson",
                **details,
                "birthDate": (ctx.time(text(seg, 8), "GT1-8") or "")[:10],
                "relationship": [codeable(relation, "HL70063", maps.RELATIONSHIP)],
            }
        )
        party = ctx.add(related, f"RelatedPerson/GT1/{ctx.index}")
        ctx.about_patient(related, "patient")
    contacts: list[Json] = []
    employer = text(seg, 16)
    if employer:
        organization = organization_xon(ctx, first(seg, 51)) or organization_name(ctx, employer)
        contact = {
            "name": {"family": employer},
            "address": address(first(seg, 17)),
            "telecom": [telecom(v) for v in values(seg, 18)],
            "relationship": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                            "code": "E",
                            "display": "Employer",
                        }
                    ]
                }
            ],
            "period": prune(
                {
                    "start": ctx.time(text(seg, 31), "GT1-31"),
                    "end": ctx.time(text(seg, 32), "GT1-32"),
                }
            ),
            "organization": {"reference": organization} if organization else None,
        }
        contacts.append(contact)
    for value in values(seg, 4):
        for name in human_name(value):
            contacts.append(
                {
                    "name": name,
                    "relationship": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                    "code": "N",
                                    "display": "Next-of-Kin",
                                }
                            ]
                        }
                    ],
                }
            )
    contact_names = [n for v in values(seg, 45) for n in human_name(v)]
    if contact_names:
        contacts.append(
            {"name": contact_names[0], "telecom": [telecom(v) for v in values(seg, 46)]}
        )
    if ctx.patient is not None and contacts:
        ctx.patient.setdefault("contact", []).extend(c for c in (prune(c) for c in contacts) if c)
    guarantor = prune(
        {
            "party": {"reference": party} if party else None,
            "onHold": False,
            "period": {
                "start": ctx.time(text(seg, 13), "GT1-13"),
                "end": ctx.time(text(seg, 14), "GT1-14"),
            },
        }
    )
    account = _account(ctx)
    if account is not None and guarantor.get("party"):
        account.setdefault("guarantor", []).append(guarantor)
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 31, 32, 45, 46, 51}


def _account(ctx: Context) -> Json | None:
    """Return the message's Account (PID-18), making one for a guarantor when there is none."""
    if ctx.account_ref:
        return ctx.builder.find(ctx.account_ref)
    account = {"resourceType": "Account", "status": "active"}
    ctx.account_ref = ctx.add(account, f"Account/GT1/{ctx.index}")
    ctx.needs_subject.append((account, "subject[]"))
    if ctx.encounter is not None:
        ctx.encounter.setdefault("account", []).append({"reference": ctx.account_ref})
    return account


def ft1(ctx: Context, seg: Segment) -> set[int]:
    """FT1 -> ChargeItem, with the Procedure or MedicationDispense it charges for."""
    services = []
    procedure_code = codeable(first(seg, 25))
    if procedure_code:
        procedure = {"resourceType": "Procedure", "status": "unknown", "code": procedure_code}
        services.append({"reference": ctx.add(procedure, f"Procedure/FT1/{ctx.index}")})
        ctx.about_patient(procedure)
    drug = codeable(first(seg, 29))
    if drug:
        dispense = prune(
            {
                "resourceType": "MedicationDispense",
                "status": "unknown",
                "medicationCodeableConcept": drug,
                "quantity": cq_quantity(first(seg, 43)),
                "authorizingPrescription": [
                    {"identifier": {"value": text(seg, 42)}, "type": "MedicationRequest"}
                ]
                if text(seg, 42)
                else [],
            }
        )
        services.append({"reference": ctx.add(dispense, f"MedicationDispense/FT1/{ctx.index}")})
        ctx.about_patient(dispense)
    transaction_id = text(seg, 2)
    item = first(seg, 34)
    device = device_ei(ctx, item, modelNumber=text(seg, 35)) if item else ""
    charge: Json = {
        "resourceType": "ChargeItem",
        "status": "unknown",
        "identifier": [{"value": transaction_id}] if transaction_id else [],
        "code": codeable(first(seg, 7), "HL70132") or {"text": "unspecified"},
        "quantity": {"value": decimal(text(seg, 10))}
        if decimal(text(seg, 10)) is not None
        else None,
        "priceOverride": _money(first(seg, 11)),
        "reason": [codeable(v) for v in values(seg, 19)],
        "performer": [
            {"actor": {"reference": r}} for v in values(seg, 20) if (r := practitioner(ctx, v))
        ],
        "enterer": {"reference": r} if (r := practitioner(ctx, first(seg, 24))) else None,
        "costCenter": {"reference": r} if (r := organization_xon(ctx, first(seg, 13))) else None,
        "performingOrganization": {"reference": r}
        if (r := organization_xon(ctx, first(seg, 32)))
        else None,
        "requestingOrganization": {"reference": r}
        if (r := organization_xon(ctx, first(seg, 33)))
        else None,
        "productReference": {"reference": device} if device else None,
        "service": services,
        "supportingInformation": [{"reference": ctx.order.request_ref}]
        if ctx.order is not None
        else [],
        "context": {"reference": ctx.encounter_ref} if ctx.encounter_ref else None,
    }
    dates = first(seg, 4)
    if dates:
        ctx.set_time(charge, "occurrenceDateTime", dates.s(1, 1) or dates.c(1), "FT1-4")
    entered = ctx.time(text(seg, 5), "FT1-5")
    if entered:
        charge["enteredDate"] = entered if "T" in entered else None
    place = location(ctx, first(seg, 16))
    if place:
        charge["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/event-location",
                "valueReference": {"reference": place},
            }
        ]
    order_number = identifier_ei(first(seg, 23), "FILL")
    if order_number:
        charge["identifier"].append(order_number)
    charge = prune(charge)
    ctx.add(charge, f"ChargeItem/{ctx.index}")
    ctx.about_patient(charge)
    return {1, 2, 4, 5, 7, 10, 11, 13, 16, 19, 20, 23, 24, 25, 29, 32, 33, 34, 35, 42, 43}


def in3(ctx: Context, seg: Segment) -> set[int]:
    """IN3 -> CareTeam: the certifying physician and the case manager (IN3[CareTeam])."""
    participants: list[Json] = []
    certifier = practitioner(ctx, first(seg, 3))
    if certifier:
        participants.append({"member": {"reference": certifier}})
    manager = text(seg, 21)
    if manager:
        participants.append(
            {
                "role": [
                    {
                        "coding": [{"system": "http://snomed.info/sct", "code": "768832004"}],
                        "text": "case manager",
                    }
                ],
                "member": {"display": manager},
            }
        )
    if not participants:
        return {1}
    team = {"resourceType": "CareTeam", "status": "active", "participant": participants}
    ctx.add(team, f"CareTeam/{ctx.index}")
    ctx.about_patient(team)
    return {1, 3, 21}


HANDLERS: dict[str, Handler] = {"IN1": in1, "IN2": in2, "IN3": in3, "GT1": gt1, "FT1": ft1}
