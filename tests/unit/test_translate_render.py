"""What each recipient receives: its format, version and charset, whichever format came in.

One rendering module (``routing/render.py``) for the router and
replay: HL7 v2 recipients get the message re-addressed and re-encoded (or
translated from FHIR), FHIR recipients a FHIR message Bundle (translated from
HL7 v2, or the sender's resources re-addressed); INS and blind copies are
handled on the way, and a translation says what it produced and left out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message, unescape
from adapters.translate.bundle import dumps
from adapters.translate.sampling import should_validate
from adapters.translate.v2_to_fhir import convert
from broker.directory import Partner, parse_directory
from broker.envelope import Envelope, Identity
from broker.ids import new_id
from routing.render import RenderError, render_for, to_fhir_message, to_hl7v2
from tests.conftest import CORPUS
from tests.integration.test_fhir_gateway import directory as gateway_directory
from tests.messages import ORU, envelope

DIRECTORY = gateway_directory()
DUPONT = DIRECTORY.partners["cabinet-dupont"]
CHU = DIRECTORY.partners["chu-montpellier"]
NORD = DIRECTORY.partners["maison-sante-nord"]
LAB = DIRECTORY.partners["labo-sud"]
INS = b"277076322082910"


def fhir_envelope(payload: bytes, **changes: object) -> Envelope:
    return Envelope(
        message_id=new_id(),
        received_at=datetime(2026, 11, 28, 10, 15, tzinfo=UTC),
        channel="fhir",
        format="fhir",
        sender="labo-sud",
        control_id="LS-0001",
        message_type="ORU^R01",
        ordering_key="k",
        payload=payload,
    ).model_copy(update=changes)


def translated_oru() -> bytes:
    return dumps(convert(Message(ORU.decode())).bundle).encode()


# --- HL7 v2 in, HL7 v2 out -------------------------------------------------------------


def test_v2_recipient_gets_msh5_6_version_and_charset_of_its_own() -> None:
    out = render_for(envelope(ORU), DUPONT)
    message = Message(out.payload.decode())
    assert (message.receiving_application, message.receiving_facility) == (
        "CABINET-DUPONT",
        "CAB-DUPONT",
    )
    assert (message.sending_application, message.sending_facility) == ("LIS", "LABO-SUD")
    assert message.control_id == "LS-0001"  # a resend keeps it: the partner can de-duplicate
    assert message.version == "2.5"
    assert out.content_type == "x-application/hl7-v2+er7; charset=utf-8"
    assert out.flags == () and out.translation is None
    # Everything after MSH is untouched.
    assert out.payload.split(b"\r")[1:] == ORU.replace(b"\n", b"\r").split(b"\r")[1:]


def test_characters_the_target_charset_lacks_are_escaped_never_dropped() -> None:
    raw = ORU.replace(b"MARTIN^JEANNE", "MARTIN^JEANNE-ŒLLA €".encode())
    latin1 = CHU.model_copy(
        update={"accepts": CHU.accepts.model_copy(update={"charset": "8859/1"})}  # type: ignore[union-attr]
    )
    out = render_for(envelope(raw), latin1)
    assert "chars_escaped:2" in out.flags
    text = out.payload.decode("iso-8859-1")
    message = Message(text)
    assert message.charset == "8859/1"
    assert unescape(message.get("PID-5.2")) == "JEANNE-ŒLLA €"
    assert "JEANNE-\\XC592\\LLA \\XE282AC\\" in text


def test_another_version_and_charset_re_encode_the_same_content() -> None:
    gp = parse_directory(
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
    ).partners["gp"]
    raw = ORU.replace(b"MARTIN^JEANNE", "MÉNARD^JEANNE".encode())
    out = render_for(envelope(raw), gp)
    message = Message(out.payload.decode("iso-8859-15"))
    assert (message.version, message.charset) == ("2.3", "8859/15")
    assert message.get("PID-5.1") == "MÉNARD"


def test_unqualified_ins_is_stripped_and_flagged() -> None:
    env = envelope(ORU.replace(b"|VALI\r", b"|PROV\r"))
    out = render_for(env, DUPONT, strip_ins=True)
    assert "ins_stripped" in out.flags
    pid = Message(out.payload.decode()).segment("PID")
    assert pid is not None
    assert INS not in out.payload
    assert pid.get(3, 1, 1) == "LS-PAT-42" and len(pid.repetitions(3)) == 1
    assert pid.get(32) == "PROV"  # never upgraded


def test_bcc_hides_the_copies_to_list_from_every_recipient() -> None:
    raw = ORU.replace(
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO\r",
        b"Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO" + b"|" * 21 + b"BCC\r",
    )
    for partner in (DUPONT, NORD):
        out = render_for(envelope(raw), partner)
        assert "obr28_hidden" in out.flags, partner.id
        assert b"10007777777" not in out.payload, partner.id
    assert Message(render_for(envelope(raw), DUPONT).payload.decode()).get("OBR-49") == "BCC"


# --- HL7 v2 in, FHIR out ---------------------------------------------------------------


def test_fhir_recipient_gets_a_translated_message_bundle_addressed_to_it() -> None:
    env = envelope(ORU)
    out = render_for(env, NORD)
    assert out.content_type == "application/fhir+json"
    assert "translated" in out.flags
    bundle = json.loads(out.payload)
    validated = Bundle.model_validate(bundle)
    assert validated.type == "message"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "MessageHeader" and {"DiagnosticReport", "Observation"} <= set(kinds)
    assert "Binary" not in kinds  # no longer the interim v2-in-a-Binary rendering
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "R01"
    assert header["destination"] == [
        {"name": "maison-sante-nord", "endpoint": "http://127.0.0.1:7003/fhir"}
    ]
    assert header["source"]["endpoint"]
    focus = {r["reference"] for r in header["focus"]}
    report = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    assert report["fullUrl"] in focus
    assert bundle["identifier"] == {
        "system": "urn:ietf:rfc:3986",
        "value": f"urn:uuid:{env.message_id}",
    }
    observation = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observation["resource"]["code"]["coding"][0]["code"] == "2345-7"
    assert render_for(env, NORD).payload == out.payload  # stable: a resend is recognisable
    assert out.translation is not None
    assert out.translation.detail()["produced"]["DiagnosticReport"] == 1
    assert (out.translation.source, out.translation.target) == ("hl7v2", "fhir")


def test_a_translation_reports_unmapped_parts_by_location_only() -> None:
    raw = ORU.replace(b"\rPD1|", b"\rZXY|1|SECRET-VALUE\rPD1|")
    out = render_for(envelope(raw), NORD)
    assert out.translation is not None
    assert "ZXY segment not mapped" in out.translation.unmapped
    assert "SECRET-VALUE" not in json.dumps(out.translation.detail())


def test_the_ins_never_reaches_a_fhir_recipient_when_it_must_be_stripped() -> None:
    env = envelope(ORU.replace(b"|VALI\r", b"|PROV\r"))
    out = render_for(env, NORD, strip_ins=True)
    assert INS not in out.payload and b"LS-PAT-42" in out.payload
    assert "ins_stripped" in out.flags


# --- FHIR in ---------------------------------------------------------------------------


def test_fhir_resource_in_fhir_out_is_wrapped_in_a_message() -> None:
    report = (CORPUS / "fhir-r4-examples" / "DiagnosticReport-pap.json").read_bytes()
    out = to_fhir_message(fhir_envelope(report), NORD)
    bundle = json.loads(out.payload)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "message"
    header = bundle["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader"
    assert header["focus"] == [{"reference": bundle["entry"][1]["fullUrl"]}]
    assert header["destination"][0]["name"] == "maison-sante-nord"
    assert bundle["entry"][1]["resource"]["resourceType"] == "DiagnosticReport"
    assert out.translation is None  # FHIR to FHIR: re-addressed, not translated


def test_a_fhir_message_in_keeps_its_resources_and_is_re_addressed() -> None:
    sent = translated_oru()  # once: its Provenance records the time of translation
    out = render_for(fhir_envelope(sent), NORD)
    bundle = json.loads(out.payload)
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["destination"][0]["name"] == "maison-sante-nord"
    assert json.loads(sent)["entry"][1:] == bundle["entry"][1:]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: translated_oru(), id="a-message-bundle"),
        pytest.param(
            lambda: (CORPUS / "fhir-r4-examples" / "DiagnosticReport-pap.json").read_bytes(),
            id="a-resource-alone",
        ),
        pytest.param(None, id="hl7v2-translated"),
    ],
)
def test_a_delivered_copy_comes_from_carebroker_on_behalf_of_its_sender(payload: object) -> None:
    env = envelope(ORU) if payload is None else fhir_envelope(payload())  # type: ignore[operator]
    bundle = json.loads(render_for(env, NORD).payload)
    Bundle.model_validate(bundle)
    header = bundle["entry"][0]["resource"]
    # Never the sender's system as if the copy came from there (issue 13).
    assert header["source"] == {
        "name": "carebroker",
        "software": "carebroker",
        "endpoint": "urn:carebroker:broker",
    }
    sender = header["sender"]
    if "reference" in sender:  # the sender's own Organization, kept in the Bundle
        [organisation] = [
            e["resource"] for e in bundle["entry"] if e["fullUrl"] == sender["reference"]
        ]
        assert {"value": "LABO-SUD"} in organisation["identifier"]
    else:
        assert sender == {"identifier": {"system": "urn:carebroker:partner", "value": "labo-sud"}}


def test_fhir_in_v2_out_in_the_recipient_version_charset_and_address() -> None:
    env = fhir_envelope(translated_oru())
    out = render_for(env, CHU, sender=LAB)
    message = Message(out.payload.decode("utf-8"))
    assert message.message_type == "ORU^R01"
    assert (message.version, message.charset) == ("2.5", "UNICODE UTF-8")
    assert (message.receiving_application, message.receiving_facility) == (
        "CHU-MONTPELLIER",
        "CHU-MTP",
    )
    assert message.sending_facility == "LABO-SUD"
    assert message.get("OBX-3.1") == "2345-7"
    assert message.control_id == env.message_id.hex[:20].upper()  # stable across resends
    assert out.translation is not None and out.translation.target == "hl7v2"
    assert out.translation.produced["segments"]["OBX"] == 1
    assert render_for(env, CHU, sender=LAB).payload == out.payload


def test_fhir_in_with_an_unqualified_ins_loses_it_in_either_format() -> None:
    document = json.loads(translated_oru())
    for entry in document["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource.pop("extension", None)  # no identity reliability: not qualified
    env = fhir_envelope(
        json.dumps(document).encode(),
        identity=Identity(ins_present=True, ins_qualified=False),
    )
    for partner in (DUPONT, NORD):
        out = render_for(env, partner, strip_ins=True)
        assert INS not in out.payload, partner.id
        assert "ins_stripped" in out.flags


def test_translations_are_validated_by_sample_and_for_partners_that_ask() -> None:
    env = envelope(ORU)
    assert "validated" not in render_for(env, NORD).flags, "no sample, no validation"
    assert "validated" in render_for(env, NORD, validation_sample=1.0).flags
    asking = NORD.model_copy(update={"validate_fhir": True})
    assert "validated" in render_for(env, asking).flags
    assert "validated" not in render_for(env, DUPONT, validation_sample=1.0).flags, "v2 out"


def test_the_validation_sample_is_drawn_by_message_id() -> None:
    ids = [str(new_id()) for _ in range(2000)]
    drawn = [i for i in ids if should_validate(i, 0.05)]
    assert 50 <= len(drawn) <= 150, "about one in twenty"
    assert drawn == [i for i in ids if should_validate(i, 0.05)], "a re-render chooses alike"
    assert not any(should_validate(i, 0.0) for i in ids)
    assert all(should_validate(i, 1.0) for i in ids)


def test_content_that_cannot_be_translated_is_a_render_error_naming_where() -> None:
    document = {"resourceType": "Patient", "id": "p1"}
    env = fhir_envelope(json.dumps(document).encode(), message_type="Patient")
    with pytest.raises(RenderError, match=r"cannot be rendered for cabinet-dupont"):
        render_for(env, DUPONT)


def test_a_recipient_without_accepts_is_refused() -> None:
    with pytest.raises(RenderError, match="declares no `accepts`"):
        render_for(envelope(ORU), Partner(id="x", name="X", kind="gp"))


def test_v2_out_names_the_partner_even_without_translation() -> None:
    out = to_hl7v2(envelope(ORU), CHU)
    assert Message(out.payload.decode()).receiving_facility == "CHU-MTP"
