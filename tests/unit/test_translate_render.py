"""What the router hands each recipient: FHIR message Bundles and HL7 v2, either way in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message
from adapters.translate.render import render_for, to_fhir_message, to_hl7v2
from broker.envelope import Envelope
from broker.ids import new_id
from routing.directory import parse_directory
from tests.conftest import CORPUS, REPO
from tests.integration.test_fhir_gateway import directory as gateway_directory

ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes()


def envelope(payload: bytes, fmt: str, charset: str = "utf-8") -> Envelope:
    return Envelope(
        message_id=new_id(),
        received_at=datetime(2026, 11, 28, 10, 15, tzinfo=UTC),
        channel="fhir" if fmt == "fhir" else "mllp",
        format=fmt,  # type: ignore[arg-type]
        sender="labo-sud",
        control_id="LS-0001",
        message_type="ORU^R01",
        ordering_key="k",
        charset=charset,
        payload=payload,
    )


def partner(partner_id: str):  # type: ignore[no-untyped-def]
    found = gateway_directory().partner(partner_id)
    assert found is not None
    return found


def test_v2_in_fhir_out_is_a_message_addressed_to_the_recipient() -> None:
    data = to_fhir_message(envelope(ORU, "hl7v2"), partner("maison-sante-nord"))
    bundle = json.loads(data)
    Bundle.model_validate(bundle)
    header = bundle["entry"][0]["resource"]
    assert header["destination"] == [
        {"name": "maison-sante-nord", "endpoint": "http://127.0.0.1:7003/fhir"}
    ]
    assert header["eventCoding"]["code"] == "R01"
    assert header["focus"]


def test_fhir_resource_in_fhir_out_is_wrapped_in_a_message() -> None:
    report = (CORPUS / "fhir-r4-examples" / "DiagnosticReport-pap.json").read_bytes()
    bundle = json.loads(to_fhir_message(envelope(report, "fhir"), partner("maison-sante-nord")))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "message"
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["focus"] == [{"reference": bundle["entry"][1]["fullUrl"]}]
    assert bundle["entry"][1]["resource"]["resourceType"] == "DiagnosticReport"


def test_fhir_in_v2_out_in_the_recipient_version_and_charset() -> None:
    from adapters.translate.bundle import dumps
    from adapters.translate.v2_to_fhir import convert

    fhir = dumps(convert(Message(ORU.decode())).bundle).encode()
    data = render_for(envelope(fhir, "fhir"), partner("chu-montpellier"))
    message = Message(data.decode("utf-8"))
    assert message.message_type == "ORU^R01"
    assert (message.version, message.charset) == ("2.5", "UNICODE UTF-8")
    assert message.get("OBX-3.1") == "2345-7"


def test_v2_in_v2_out_is_passed_through_or_re_encoded() -> None:
    same = to_hl7v2(envelope(ORU, "hl7v2"), "2.5", "UNICODE UTF-8")
    assert same == ORU, "nothing to change: the original bytes"
    latin = ORU.replace(b"MARTIN^JEANNE", "MÉNARD^JEANNE".encode())
    converted = to_hl7v2(envelope(latin, "hl7v2"), "2.4", "8859/1")
    message = Message(converted.decode("iso-8859-1"))
    assert (message.version, message.charset) == ("2.4", "8859/1")
    assert message.get("PID-5.1") == "MÉNARD"


def test_a_directory_partner_without_fhir_gets_v2() -> None:
    found = parse_directory(
        {
            "partners": [
                {
                    "id": "gp",
                    "name": "GP",
                    "kind": "gp",
                    "endpoint": {"type": "mllp", "host": "127.0.0.1", "port": 7002},
                    "accepts": {"format": "hl7v2", "version": "2.3", "charset": "8859/15"},
                }
            ]
        }
    ).partner("gp")
    assert found is not None
    out = render_for(envelope(ORU, "hl7v2"), found)
    assert Message(out.decode("iso-8859-15")).version == "2.3"
