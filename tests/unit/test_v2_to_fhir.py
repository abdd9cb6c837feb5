"""HL7 v2 -> FHIR R4: what a recipient reading FHIR must find in the Bundle."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from adapters.hl7v2.er7 import Message
from adapters.translate.bundle import dumps
from adapters.translate.v2_to_fhir import UNMAPPED_URL, convert
from broker.errors import MessageError
from tests.conftest import CORPUS, REPO
from tests.corpus_messages import corpus_messages

Json = dict[str, Any]
CONVERTER = CORPUS / "fhir-converter"


def read(path: Path) -> Message:
    return Message(path.read_bytes().decode("utf-8-sig"))


def resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_ref(bundle: Json, reference: str) -> Json:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference)


def v2(*segments: str) -> Message:
    return Message("\r".join(segments) + "\r")


MSH = (
    "MSH|^~\\&|LIS|LABO-SUD|CAREBROKER|REGION|20261128101500+0100||{type}|C-1|P|2.5"
    "|||||FRA|UNICODE UTF-8"
)
PID = (
    "PID|1||LS-PAT-42^^^LABO-SUD&1.2.250.1.999.1&ISO^PI~277076322082910^^^"
    "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||MARTIN^JEANNE^^^^^L||19700101|F"
    "||||||||||||||||||||||||VALI"
)


CORPUS_MESSAGES = corpus_messages()
_NOT_A_FOCUS = {"MessageHeader", "Provenance", "Organization", "Device", "Location", "Practitioner"}


def test_every_corpus_translation_validates() -> None:
    """fhir.resources validation of the translation of every corpus message (run-time samples it).

    One test over the whole corpus rather than one per message: the suite
    pays for the validation once, in seconds.
    """
    assert len(CORPUS_MESSAGES) >= 90
    invalid = []
    for name, message in CORPUS_MESSAGES:
        bundle = convert(message, validate=False).bundle
        try:
            Bundle.model_validate(json.loads(dumps(bundle)))  # what goes on the wire
        except ValidationError as exc:
            invalid.append(f"{name}: {exc.errors(include_input=False)[0]['loc']}")
    assert invalid == []


@pytest.mark.parametrize(("name", "message"), CORPUS_MESSAGES, ids=[n for n, _ in CORPUS_MESSAGES])
def test_every_corpus_message_translates_to_a_message_bundle(name: str, message: Message) -> None:
    conversion = convert(message, validate=False)
    bundle = conversion.bundle
    assert bundle["type"] == "message"
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["eventCoding"]["code"] == message.message_type.split("^")[1]
    about = {e["resource"]["resourceType"] for e in bundle["entry"]} - _NOT_A_FOCUS
    if about:  # a message with clinical content says what it is about
        assert header["focus"], f"no focus among {sorted(about)}"
    for focus in header.get("focus", []):
        by_ref(bundle, focus["reference"])  # every focus resolves inside the Bundle
    provenance = resources(bundle, "Provenance")[-1]
    noted = [e["valueString"] for e in provenance.get("extension", []) if e["url"] == UNMAPPED_URL]
    assert noted == conversion.warnings, "unmapped parts are in the Provenance, not only returned"


def test_translation_is_deterministic() -> None:
    path = CONVERTER / "ORU_R01" / "ORU-R01-01.hl7"
    first = convert(read(path), recorded="2026-01-01T00:00:00Z")
    second = convert(read(path), recorded="2026-01-01T00:00:00Z")
    assert dumps(first.bundle) == dumps(second.bundle)


def test_identifiers_keep_their_systems_and_identity_status() -> None:
    bundle = convert(read(REPO / "tests" / "data" / "oru_labo_sud.hl7")).bundle
    [patient] = resources(bundle, "Patient")
    systems = {i["value"]: i["system"] for i in patient["identifier"]}
    assert systems == {
        "LS-PAT-42": "urn:oid:1.2.250.1.999.1",
        "277076322082910": "urn:oid:1.2.250.1.213.1.4.8",  # INS-NIR
    }
    reliability = patient["extension"][0]
    assert reliability["url"].endswith("fr-core-identity-reliability")
    assert reliability["extension"][0]["valueCoding"]["code"] == "VALI"
    rpps = {
        i["value"]: i["system"]
        for p in resources(bundle, "Practitioner")
        for i in p.get("identifier", [])
    }
    assert rpps["10001234567"] == "urn:oid:1.2.250.1.71.4.2.1"


def test_dates_keep_precision_and_offset() -> None:
    message = v2(
        MSH.format(type="ORU^R01^ORU_R01"),
        PID.replace("19700101", "197001"),
        "OBR|1|ORD-1|LS-1|2345-7^Glucose^LN|||202611280800|||||||||||||||20261128100512.25+0530|||F",
        "OBX|1|NM|2345-7^Glucose^LN||5.40|mmol/L^^UCUM|3.9-5.8|H|||F|||2026",
    )
    bundle = convert(message).bundle
    [patient] = resources(bundle, "Patient")
    assert patient["birthDate"] == "1970-01"
    [report] = resources(bundle, "DiagnosticReport")
    # No offset on OBR-7: the sender's zone is MSH-7's (+01:00), HL7 v2.5.1 §2.A.22.
    assert report["effectiveDateTime"] == "2026-11-28T08:00:00+01:00"
    assert report["issued"] == "2026-11-28T10:05:12.25+05:30"
    [observation] = resources(bundle, "Observation")
    assert observation["effectiveDateTime"] == "2026"
    assert observation["valueQuantity"] == {
        "value": Decimal("5.40"),
        "unit": "mmol/L",
        "code": "mmol/L",
        "system": "http://unitsofmeasure.org",
    }
    assert '"value": 5.40' in dumps(bundle), "significant zeros survive serialisation"
    assert observation["code"]["coding"][0]["system"] == "http://loinc.org"
    assert observation["interpretation"][0]["coding"][0]["code"] == "H"
    assert observation["referenceRange"] == [{"text": "3.9-5.8"}]


def test_a_sender_timezone_applies_to_times_without_offset() -> None:
    message = v2(
        "MSH|^~\\&|LIS|LABO-SUD|||20260701120000||ORU^R01|C-2|P|2.5",
        PID,
        "OBR|1|||2345-7^Glucose^LN|||20260701080000",
        "OBX|1|NM|2345-7^Glucose^LN||5|mmol/L||||F",
    )
    summer = convert(message, timezone="Europe/Paris").bundle
    assert resources(summer, "DiagnosticReport")[0]["effectiveDateTime"].endswith("+02:00")
    unknown = convert(message)
    assert any("read as UTC" in w for w in unknown.warnings), "a guess is reported"


def test_escapes_are_decoded() -> None:
    message = v2(
        MSH.format(type="ORU^R01^ORU_R01"),
        PID,
        "OBR|1|||2345-7^Glucose^LN",
        "OBX|1|ST|X-1^Remark^L||A \\T\\ B \\S\\ C \\F\\ D \\E\\ \\X4F4B\\ line\\.br\\two||||||F",
        "NTE|1||Note \\R\\ repeated",
    )
    bundle = convert(message).bundle
    [observation] = resources(bundle, "Observation")
    assert observation["valueString"] == "A & B ^ C | D \\ OK line\ntwo"
    assert observation["note"] == [{"text": "Note ~ repeated"}]
    assert observation["code"]["coding"][0]["system"] == "urn:carebroker:v2-0396:L"


@pytest.mark.parametrize(
    ("obx", "element", "expected"),
    [
        (
            "OBX|1|SN|X^Y^L||<^5|mmol/L^^UCUM",
            "valueQuantity",
            {"comparator": "<", "value": Decimal("5")},
        ),
        (
            "OBX|1|SN|X^Y^L||^1^-^5|mmol/L^^UCUM",
            "valueRange",
            {"low": Decimal("1"), "high": Decimal("5")},
        ),
        (
            "OBX|1|SN|X^Y^L||^1^:^128",
            "valueRatio",
            {"numerator": Decimal("1"), "denominator": Decimal("128")},
        ),
        (
            "OBX|1|CWE|X^Y^L||260373001^Detected^SCT",
            "valueCodeableConcept",
            "http://snomed.info/sct",
        ),
        ("OBX|1|TX|X^Y^L||first line~second line", "valueString", "first line\nsecond line"),
        ("OBX|1|NM|X^Y^L||27~25", "component", [Decimal("27"), Decimal("25")]),
    ],
    ids=["SN-comparator", "SN-range", "SN-ratio", "CWE", "TX-lines", "NM-repeating"],
)
def test_observation_value_types(obx: str, element: str, expected: Any) -> None:
    message = v2(
        MSH.format(type="ORU^R01^ORU_R01"), PID, "OBR|1|||2345-7^Glucose^LN", obx + "||||F"
    )
    [observation] = resources(convert(message).bundle, "Observation")
    value = observation[element]
    if element == "valueQuantity":
        assert {k: value[k] for k in expected} == expected
    elif element == "valueRange":
        assert (value["low"]["value"], value["high"]["value"]) == (
            expected["low"],
            expected["high"],
        )
    elif element == "valueRatio":
        assert value["numerator"]["value"] == expected["numerator"]
        assert value["denominator"]["value"] == expected["denominator"]
    elif element == "valueCodeableConcept":
        assert value["coding"][0]["system"] == expected
    elif element == "component":
        assert [c["valueQuantity"]["value"] for c in value] == expected
    else:
        assert value == expected


def test_embedded_document_becomes_the_report_form_and_an_attachment() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 report").decode()
    message = v2(
        MSH.format(type="ORU^R01^ORU_R01"),
        PID,
        "OBR|1|||11502-2^Laboratory report^LN||||||||||||||||||||F",
        f"OBX|1|ED|11502-2^Laboratory report^LN||^AP^PDF^Base64^{pdf}||||||F",
    )
    bundle = convert(message).bundle
    [observation] = resources(bundle, "Observation")
    assert observation["extension"][0]["valueAttachment"]["data"] == pdf
    order_report, document_report = resources(bundle, "DiagnosticReport")
    assert order_report["result"] == [{"reference": f"urn:uuid:{observation['id']}"}]
    assert document_report["presentedForm"] == [{"contentType": "application/pdf", "data": pdf}]
    assert document_report["basedOn"] == order_report["basedOn"]


def test_routing_parties_are_kept() -> None:
    bundle = convert(read(REPO / "tests" / "data" / "oru_labo_sud.hl7")).bundle
    [request] = resources(bundle, "ServiceRequest")
    [report] = resources(bundle, "DiagnosticReport")
    orderer = by_ref(bundle, request["requester"]["reference"])
    assert orderer["identifier"][0]["value"] == "10001234567"  # ORC-12 / OBR-16
    [copy] = [e for e in report["extension"] if e["url"].endswith("result-copies-to")]
    assert by_ref(bundle, copy["valueReference"]["reference"])["identifier"][0]["value"] == (
        "10007777777"
    )  # OBR-28
    [patient] = resources(bundle, "Patient")
    gp = by_ref(bundle, patient["generalPractitioner"][0]["reference"])
    assert gp["identifier"][0]["value"] == "10003456789"  # PD1-4


def test_referral_becomes_service_request_and_task() -> None:
    bundle = convert(read(REPO / "tests" / "data" / "ref_cabinet_dupont.hl7")).bundle
    [referral] = resources(bundle, "ServiceRequest")
    [task] = resources(bundle, "Task")
    assert referral["category"][0]["coding"][0]["code"] == "3457005"
    assert task["focus"]["reference"] == next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is referral
    )
    assert by_ref(bundle, referral["requester"]["reference"])["identifier"][0]["value"] == (
        "10001234567"
    )
    assert by_ref(bundle, referral["performer"][0]["reference"])["identifier"][0]["system"] == (
        "urn:oid:1.2.250.1.71.4.2.1"
    )
    assert task["owner"] == referral["performer"][0]
    assert task["for"]["reference"] == referral["subject"]["reference"]


def test_unmapped_parts_are_reported_by_location_never_silently_dropped() -> None:
    message = v2(
        MSH.format(type="ADT^A01^ADT_A01"),
        "EVN||20261128101500",
        PID + "|||||||||||SECRET-VALUE",
        "PV1|1|I|CARDIO^101^A||||||||||||||||V-1",
        "ZBE|1|MOVE-1|20261128101500||INSERT|N",
    )
    conversion = convert(message)
    assert "ZBE segment not mapped" in conversion.warnings
    assert any(w.startswith("PID-4") for w in conversion.warnings)
    assert "SECRET-VALUE" not in " ".join(conversion.warnings), "locations, never values"
    [encounter] = resources(conversion.bundle, "Encounter")
    assert encounter["status"] == "in-progress"  # A01: admitted
    location = by_ref(conversion.bundle, encounter["location"][0]["location"]["reference"])
    assert (location["name"], location["physicalType"]["coding"][0]["code"]) == ("A", "bd")
    assert by_ref(conversion.bundle, location["partOf"]["reference"])["name"] == "101"


def test_a_merge_links_the_two_patient_records() -> None:
    bundle = convert(read(CONVERTER / "ADT_A40" / "ADT-A40-01.hl7")).bundle
    survivor, merged = resources(bundle, "Patient")
    assert survivor["link"][0]["type"] == "replaces"
    assert merged["active"] is False and merged["link"][0]["type"] == "replaced-by"


def test_message_without_type_is_refused_by_location() -> None:

    with pytest.raises(MessageError) as caught:
        convert(v2("MSH|^~\\&|A|B|C|D|20260101||||P|2.5"))
    assert caught.value.location == "MSH-9"


@pytest.mark.parametrize(
    ("trigger", "pv1", "status", "locations"),
    [
        ("A02", "PV1|1|I|CARDIO^201^B|||URG^101^A", "in-progress", ["active", "completed"]),
        ("A03", "PV1|1|I|CARDIO^201^B" + "|" * 42 + "20261128120000", "finished", ["active"]),
        ("A04", "PV1|1|O|CONSULT", "planned", ["active"]),
        ("A28", "PV1||N", None, None),
        ("A31", "PV1||N", None, None),
    ],
)
def test_adt_events_set_the_encounter_as_the_ig_says(
    trigger: str, pv1: str, status: str | None, locations: list[str] | None
) -> None:
    message = v2(MSH.format(type=f"ADT^{trigger}^ADT_A01"), "EVN||20261128101500", PID, pv1)
    bundle = convert(message).bundle
    assert len(resources(bundle, "Patient")) == 1
    encounters = resources(bundle, "Encounter")
    if status is None:
        assert encounters == [], "a person update (A28/A31, PV1 class N) has no visit"
        return
    [encounter] = encounters
    assert encounter["status"] == status
    assert [loc["status"] for loc in encounter["location"]] == locations
