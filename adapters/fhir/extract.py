"""Read what routing needs from FHIR input and build its envelope, like the HL7 v2 one.

Routing reads one vocabulary whatever came in: a provider a FHIR resource
names becomes a :class:`ProviderRef` whose ``source`` is the HL7 v2 field of
the same meaning and whose ``path`` is the FHIRPath it was read from:

=============================================  =================  ===========
FHIR element                                   ``source``         ``role``
=============================================  =================  ===========
ServiceRequest.requester                       ORC-12
ServiceRequest.performer                       PRD                RT
ServiceRequest / DiagnosticReport copies-to    OBR-28
  (extension result-copies-to)
DiagnosticReport.resultsInterpreter            OBR-28
Task.owner                                     PRD                RT
Task.requester                                 PRD                RP
Patient.generalPractitioner                    PD1-4
Encounter.participant (REF)                    PV1-8
DocumentReference.author                       TXA-9
MessageHeader.destination.receiver             MSH-6
=============================================  =================  ===========

Patient identifiers become the same pseudonymous keys as PID-3: the
authority is the OID of an ``urn:oid:`` system (what v2 carries in CX.4.2),
else the system itself, so a patient sent once as v2 and once as FHIR keeps
one ordering lane. A patient known only by a literal reference
(``Patient/123``) is keyed within the sender's namespace.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from adapters.fhir.resources import Resources
from adapters.hl7v2.extract import ordering_key
from adapters.hl7v2.ins import DEFAULT_QUALIFIED, INS_OIDS
from adapters.translate.v2_orders import RESULT_COPIES_TO_URL
from adapters.translate.v2_patient import IDENTITY_RELIABILITY_URL
from broker.envelope import Envelope, Identity, PatientKey, ProviderRef
from broker.pseudonym import Pseudonymizer

Json = dict[str, Any]
# HL7 table 0003 events carebroker recognises in MessageHeader.eventCoding.
_V2_EVENTS = {
    "R01": "ORU^R01",
    "I12": "REF^I12",
    "O21": "OML^O21",
    "O01": "ORM^O01",
    "T02": "MDM^T02",
    "S12": "SIU^S12",
    **{f"A{n:02d}": f"ADT^A{n:02d}" for n in (1, 2, 3, 4, 8, 28, 31, 40)},
}
_BY_RESOURCE = {
    "DiagnosticReport": "ORU^R01",
    "Observation": "ORU^R01",
    "ServiceRequest": "REF^I12",
    "Task": "REF^I12",
    "DocumentReference": "MDM^T02",
}


def authority_of(system: str) -> str:
    """Return the assigning authority a FHIR identifier system names (OID without urn:oid:)."""
    return system[8:] if system.startswith("urn:oid:") else system


def message_type(document: Json) -> str:
    """Return the HL7 v2 equivalent (``ORU^R01``) of FHIR input, else its FHIR event or type."""
    resources = Resources(document)
    header = next(iter(resources.of_type("MessageHeader")), None)
    if header is not None:
        event = header.get("eventCoding") or {}
        code = str(event.get("code") or "")
        if code in _V2_EVENTS:
            return _V2_EVENTS[code]
        for reference in header.get("focus", []) or []:
            focus = resources.resolve(reference)
            if focus is not None and focus.get("resourceType") in _BY_RESOURCE:
                return _BY_RESOURCE[focus["resourceType"]]
        return code or str(header.get("eventUri") or "message")
    for resource in resources.items:
        if resource.get("resourceType") in _BY_RESOURCE:
            return _BY_RESOURCE[resource["resourceType"]]
    return str(document.get("resourceType", ""))


def patient_keys(document: Json, sender: str, pseudonymizer: Pseudonymizer) -> list[PatientKey]:
    """Return the pseudonymous keys of the patient(s) the content is about."""
    resources = Resources(document)
    keys: list[PatientKey] = []
    seen: set[tuple[str, str]] = set()

    def add(system: str, id_type: str, value: str) -> None:
        authority = authority_of(system)
        if not value or (authority, value) in seen:
            return
        seen.add((authority, value))
        keys.append(
            PatientKey(
                authority=authority, id_type=id_type, digest=pseudonymizer.digest(authority, value)
            )
        )

    for patient in resources.of_type("Patient"):
        if patient.get("active") is False:
            continue  # the merged-away record of an ADT^A40
        for ident in patient.get("identifier", []) or []:
            coding = ((ident.get("type") or {}).get("coding") or [{}])[0]
            add(
                str(ident.get("system", "")),
                str(coding.get("code", "")),
                str(ident.get("value", "")),
            )
    if keys:
        return keys
    for resource in resources.items:
        for element in ("subject", "patient", "for"):
            reference = resource.get(element)
            if not isinstance(reference, dict):
                continue
            logical = reference.get("identifier")
            if isinstance(logical, dict):
                add(str(logical.get("system", "")), "", str(logical.get("value", "")))
            target = str(reference.get("reference", ""))
            if "Patient/" in target and resources.resolve(reference) is None:
                add(f"urn:carebroker:{sender}:Patient", "", target.rsplit("Patient/", 1)[1])
    return keys


def identity(document: Json, keys: list[PatientKey]) -> Identity:
    """Return what the content asserts about identity (FR Core reliability); never infer."""
    codes = [
        str(inner.get("valueCoding", {}).get("code", "")).upper()
        for patient in Resources(document).of_type("Patient")
        for extension in patient.get("extension", []) or []
        if extension.get("url") == IDENTITY_RELIABILITY_URL
        for inner in extension.get("extension", []) or []
        if inner.get("url") == "identityStatus"
    ]
    has_ins = any(k.authority in INS_OIDS for k in keys)
    return Identity(
        ins_present=has_ins,
        ins_qualified=has_ins and bool(set(DEFAULT_QUALIFIED) & set(codes)),
        reliability="~".join(c for c in codes if c),
    )


def providers(document: Json) -> list[ProviderRef]:
    """Return every professional or organisation the content names for routing, with where."""
    resources = Resources(document)
    is_bundle = document.get("resourceType") == "Bundle"
    found: list[ProviderRef] = []

    def add(reference: Any, source: str, path: str, role: str = "") -> None:
        if not isinstance(reference, dict):
            return
        party = resources.person(reference) if source != "MSH-6" else resources.resolve(reference)
        identifiers = (party or {}).get("identifier") or []
        if isinstance(reference.get("identifier"), dict):
            identifiers = [reference["identifier"], *identifiers]
        for ident in identifiers[:1]:
            if ident.get("value"):
                found.append(
                    ProviderRef(
                        source=source,
                        role=role,
                        id=str(ident["value"]),
                        authority=authority_of(str(ident.get("system", ""))),
                        path=path,
                    )
                )

    for index, resource in enumerate(resources.items):
        kind = resource.get("resourceType", "")
        root = f"Bundle.entry[{index}].resource" if is_bundle else kind
        if kind == "MessageHeader":
            for i, destination in enumerate(resource.get("destination", []) or []):
                add(destination.get("receiver"), "MSH-6", f"{root}.destination[{i}].receiver")
        elif kind == "ServiceRequest":
            add(resource.get("requester"), "ORC-12", f"{root}.requester")
            for i, performer in enumerate(resource.get("performer", []) or []):
                add(performer, "PRD", f"{root}.performer[{i}]", "RT")
        elif kind == "DiagnosticReport":
            for i, person in enumerate(resource.get("resultsInterpreter", []) or []):
                add(person, "OBR-28", f"{root}.resultsInterpreter[{i}]")
        elif kind == "Task":
            add(resource.get("owner"), "PRD", f"{root}.owner", "RT")
            add(resource.get("requester"), "PRD", f"{root}.requester", "RP")
        elif kind == "Patient" and resource.get("active") is not False:
            for i, doctor in enumerate(resource.get("generalPractitioner", []) or []):
                add(doctor, "PD1-4", f"{root}.generalPractitioner[{i}]")
        elif kind == "Encounter":
            for i, participant in enumerate(resource.get("participant", []) or []):
                codes = {
                    c.get("code")
                    for t in participant.get("type", []) or []
                    for c in t.get("coding", []) or []
                }
                if "REF" in codes:
                    add(
                        participant.get("individual"),
                        "PV1-8",
                        f"{root}.participant[{i}].individual",
                    )
        elif kind == "DocumentReference":
            for i, author in enumerate(resource.get("author", []) or []):
                add(author, "TXA-9", f"{root}.author[{i}]")
        if kind in ("ServiceRequest", "DiagnosticReport"):
            for i, extension in enumerate(resource.get("extension", []) or []):
                if extension.get("url") == RESULT_COPIES_TO_URL:
                    add(extension.get("valueReference"), "OBR-28", f"{root}.extension[{i}].value")
    return found


def build_envelope(
    document: Json,
    *,
    payload: bytes,
    sender: str,
    control_id: str,
    message_id: uuid.UUID,
    received_at: datetime,
    pseudonymizer: Pseudonymizer,
) -> Envelope:
    """Return the envelope of accepted FHIR input (``format="fhir"``, ``channel="fhir"``)."""
    keys = patient_keys(document, sender, pseudonymizer)
    ident = identity(document, keys)
    header = next(iter(Resources(document).of_type("MessageHeader")), None) or {}
    destinations = header.get("destination", []) or [{}]
    return Envelope(
        message_id=message_id,
        received_at=received_at,
        channel="fhir",
        format="fhir",
        sender=sender,
        control_id=control_id,
        message_type=message_type(document),
        version="4.0.1",
        # The de-duplication key is (sender, "", Bundle.identifier): the same
        # message sent from two of the partner's systems is still one message.
        sending_application="",
        sending_facility=str((header.get("source") or {}).get("name") or ""),
        receiving_application=str(destinations[0].get("name") or ""),
        charset="utf-8",
        patient_keys=keys,
        ordering_key=ordering_key(keys, ident, pseudonymizer.lane(str(message_id))),
        identity=ident,
        providers=providers(document),
        payload=payload,
    )
