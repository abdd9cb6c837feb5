"""What each recipient receives: re-addressed, re-encoded, INS and blind copies handled."""

from __future__ import annotations

import base64
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message, unescape
from routing.directory import load_directory
from routing.render import RenderError, render
from tests.messages import DATA, ORU, envelope

DIRECTORY = load_directory(DATA / "partners.yaml")
DUPONT = DIRECTORY.partners["cabinet-dupont"]
CHU = DIRECTORY.partners["chu-montpellier"]
NORD = DIRECTORY.partners["maison-sante-nord"]


def test_v2_recipient_gets_msh5_6_version_and_charset_of_its_own() -> None:
    env = envelope(ORU)
    out = render(env, DUPONT)
    message = Message(out.payload.decode())
    assert (message.receiving_application, message.receiving_facility) == (
        "CABINET-DUPONT",
        "CAB-DUPONT",
    )
    assert (message.sending_application, message.sending_facility) == ("LIS", "LABO-SUD")
    assert message.control_id == "LS-0001"  # a resend keeps it: the partner can de-duplicate
    assert message.version == "2.5"
    assert out.content_type == "x-application/hl7-v2+er7; charset=utf-8"
    assert out.flags == ()
    # Everything after MSH is untouched.
    assert out.payload.split(b"\r")[1:] == ORU.replace(b"\n", b"\r").split(b"\r")[1:]


def test_characters_the_target_charset_lacks_are_escaped_never_dropped() -> None:
    raw = ORU.replace(b"MARTIN^JEANNE", "MARTIN^JEANNE-ŒLLA €".encode())
    latin1 = CHU.model_copy(
        update={"accepts": CHU.accepts.model_copy(update={"charset": "8859/1"})}  # type: ignore[union-attr]
    )
    out = render(envelope(raw), latin1)
    assert "chars_escaped:2" in out.flags
    text = out.payload.decode("iso-8859-1")
    message = Message(text)
    assert message.charset == "8859/1"
    assert unescape(message.get("PID-5.2")) == "JEANNE-ŒLLA €"
    assert "JEANNE-\\XC592\\LLA \\XE282AC\\" in text


def test_unqualified_ins_is_stripped_and_flagged() -> None:
    env = envelope(ORU.replace(b"|VALI\r", b"|PROV\r"))
    out = render(env, DUPONT, strip_ins=True)
    assert "ins_stripped" in out.flags
    pid = Message(out.payload.decode()).segment("PID")
    assert pid is not None
    assert b"277076322082910" not in out.payload
    assert pid.get(3, 1, 1) == "LS-PAT-42" and len(pid.repetitions(3)) == 1
    assert pid.get(32) == "PROV"  # never upgraded


def test_bcc_hides_the_copies_to_list_from_every_recipient() -> None:
    raw = ORU.replace(
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO\r",
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO" + b"|" * 21 + b"BCC\r",
    )
    out = render(envelope(raw), DUPONT)
    assert "obr28_hidden" in out.flags
    assert b"10007777777" not in out.payload
    assert Message(out.payload.decode()).get("OBR-49") == "BCC"


def test_fhir_recipient_gets_a_valid_interim_message_bundle_with_the_v2_inside() -> None:
    env = envelope(ORU)
    out = render(env, NORD)
    assert out.content_type == "application/fhir+json"
    assert "interim_fhir_rendering" in out.flags
    data = json.loads(out.payload)
    bundle = Bundle.model_validate(data)
    assert bundle.type == "message"
    header, binary = (e.resource for e in bundle.entry)  # type: ignore[union-attr]
    assert header.get_resource_type() == "MessageHeader"
    assert header.eventCoding.code == "R01"
    assert header.focus[0].reference == bundle.entry[1].fullUrl  # type: ignore[index]
    assert binary.contentType == "x-application/hl7-v2+er7"
    inner = Message(base64.b64decode(data["entry"][1]["resource"]["data"]).decode())
    assert inner.receiving_facility == "MSP-NORD" and inner.charset == "UNICODE UTF-8"
    assert data["identifier"]["value"] == f"urn:uuid:{env.message_id}"
    assert render(env, NORD).payload == out.payload  # stable: a resend is recognisable


def test_fhir_input_for_a_v2_recipient_waits_for_translation() -> None:
    env = envelope(ORU).model_copy(update={"format": "fhir", "payload": b"{}"})
    with pytest.raises(RenderError, match="translation is not available yet"):
        render(env, DUPONT)
