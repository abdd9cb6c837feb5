"""What ingress reads for routing, on the synthetic French ORU and REF and on corpus files."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope, handling_codes, providers
from broker.errors import MessageError
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from tests.conftest import CORPUS, REPO
from tests.messages import envelope

DATA = REPO / "tests" / "data"
PSEUDO = Pseudonymizer(b"0" * 32)


def envelope_of(path: str, sender: str = "labo-sud"):  # type: ignore[no-untyped-def]
    return envelope((DATA / path).read_bytes(), sender, PSEUDO)


def test_oru_routing_hints_name_every_provider_and_where() -> None:
    env = envelope_of("oru_labo_sud.hl7")
    assert (env.message_type, env.structure, env.version, env.control_id) == (
        "ORU^R01",
        "ORU_R01",
        "2.5",
        "LS-0001",
    )
    found = {(p.source, p.id, p.authority) for p in env.providers}
    rpps = "1.2.250.1.71.4.2.1"
    assert ("OBR-16", "10001234567", rpps) in found
    assert ("ORC-12", "10001234567", rpps) in found
    assert ("OBR-28", "10007777777", rpps) in found
    assert ("PD1-4", "10003456789", rpps) in found
    assert env.charset == "utf-8"


def test_patient_keys_are_pseudonymous_and_ins_qualification_is_read_not_inferred() -> None:
    env = envelope_of("oru_labo_sud.hl7")
    assert [(k.authority, k.id_type) for k in env.patient_keys] == [
        ("1.2.250.1.999.1", "PI"),
        ("1.2.250.1.213.1.4.8", "INS"),
    ]
    dumped = env.model_dump_json(exclude={"payload"})
    assert "277076322082910" not in dumped and "LS-PAT-42" not in dumped
    assert env.identity.ins_present and env.identity.ins_qualified
    assert env.ordering_key == PSEUDO.digest("1.2.250.1.213.1.4.8", "277076322082910")

    raw = (DATA / "oru_labo_sud.hl7").read_bytes().replace(b"|VALI\r", b"|PROV\r")
    message_id, at = new_id_at()
    env2 = build_envelope(
        Message(raw.decode()),
        payload=raw,
        codec="utf-8",
        sender="labo-sud",
        channel="mllp",
        message_id=message_id,
        received_at=at,
        pseudonymizer=PSEUDO,
    )
    assert env2.identity.ins_present and not env2.identity.ins_qualified
    assert env2.ordering_key == PSEUDO.digest("1.2.250.1.999.1", "LS-PAT-42")


def test_referral_hints_carry_prd_roles() -> None:
    env = envelope_of("ref_cabinet_dupont.hl7", sender="cabinet-dupont")
    roles = {(p.source, p.role, p.id) for p in env.providers}
    assert ("PRD", "RT", "10009999999") in roles
    assert ("PRD", "RP", "10001234567") in roles


def test_prt_and_rol_and_handling_codes_on_a_corpus_referral() -> None:
    text = (CORPUS / "fhir-converter" / "REF_I12" / "REF-I12-01.hl7").read_text()
    message = Message(text)
    found = providers(message)
    assert any(p.source == "PRT" and p.role == "AD" and p.id == "112233421" for p in found)
    assert any(p.source == "PRD" and p.role == "RT" and p.id == "PLN5010" for p in found)
    assert handling_codes(message) == []


def test_charsets_decode_by_msh18_and_override() -> None:
    latin = "MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5|||||FRA|8859/1\rPID|1||5||HÉLÈNE\r"
    raw = latin.encode("iso-8859-1")
    assert charset.read_msh18(raw) == "8859/1"
    assert charset.decode(raw) == (latin, "iso-8859-1")
    cp1252 = raw.replace(b"H\xc9", b"\x96")  # en dash: not a character in ISO-8859-1 text
    assert charset.decode(cp1252, override="cp1252")[0].count("\u2013") == 1
    with pytest.raises(MessageError) as info:
        charset.decode("MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5\rPID|||é\r".encode("latin-1"))
    assert info.value.location == "MSH-18"
    with pytest.raises(MessageError, match="not allowed"):
        charset.codec_for("UNICODE UTF-16")
    assert charset.encode("Œuvre €", "8859/1") == (b"?uvre ?", 2)
    assert charset.encode("Œuvre €", "8859/15") == ("Œuvre €".encode("iso-8859-15"), 0)
