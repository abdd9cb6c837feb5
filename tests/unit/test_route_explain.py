"""``carebroker route explain`` on HL7 v2 and FHIR files: recipients, reasons, what they get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.hl7v2.er7 import Message
from adapters.translate.bundle import dumps
from adapters.translate.v2_to_fhir import convert
from broker.cli import main
from tests.messages import DATA, ORU, REF

PARTNERS = str(DATA / "partners.yaml")


def explain(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = main(["route", "explain", str(path), "--config", PARTNERS, *extra])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_a_v2_result_names_each_recipient_its_rules_and_what_it_receives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = explain(DATA / "oru_labo_sud.hl7", capsys)
    assert status == 0, out
    assert "ORU^R01 LS-0001 from labo-sud (result, hl7v2)" in out
    dupont = out[out.index("  cabinet-dupont") : out.index("  maison-sante-nord")]
    assert "ordering-provider via OBR-16=10001234567" in dupont
    assert "patient-gp via PD1-4=10003456789" in dupont
    assert "receives: HL7 v2 (utf-8)" in dupont
    nord = out[out.index("  maison-sante-nord") :]
    assert "copies-to via OBR-28=10007777777" in nord
    assert "receives: FHIR message Bundle, translated from HL7 v2" in nord
    assert "chu-montpellier" not in out


def test_a_fhir_message_routes_like_its_v2_equivalent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "oru.json"
    bundle.write_text(dumps(convert(Message(ORU.decode())).bundle))
    status, out = explain(bundle, capsys)
    assert status == 0, out
    assert "ORU^R01" in out and "from labo-sud (result, fhir)" in out
    assert "ordering-provider via ORC-12=10001234567 (Bundle.entry[" in out
    assert "copies-to via OBR-28=10007777777" in out
    dupont = out[out.index("  cabinet-dupont") : out.index("  maison-sante-nord")]
    assert "receives: HL7 v2 (utf-8), translated from FHIR" in dupont
    nord = out[out.index("  maison-sante-nord") :]
    assert "receives: FHIR message Bundle" in nord and "translated" not in nord


def test_a_fhir_service_request_is_a_referral_to_its_performer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converted = convert(Message(REF.decode())).bundle
    request = next(
        e["resource"]
        for e in converted["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
    )
    parties = {
        e["fullUrl"]: e["resource"]
        for e in converted["entry"]
        if e["resource"]["resourceType"] in ("Practitioner", "Patient")
    }
    request["contained"] = [
        {**parties[r["reference"]], "id": f"c{i}"}
        for i, r in enumerate([request["requester"], *request["performer"]])
    ]
    request["requester"] = {"reference": "#c0"}
    request["performer"] = [{"reference": "#c1"}]
    request["subject"] = {"display": "a patient"}
    alone = tmp_path / "servicerequest.json"
    alone.write_text(json.dumps(request))
    status, out = explain(alone, capsys, "--sender", "cabinet-dupont")
    assert status == 0, out
    assert "REF^I12" in out and "(referral, fhir)" in out
    assert "referred-to via PRD(RT)=10009999999" in out
    assert "chu-montpellier" in out and "receives: HL7 v2 (utf-8), translated from FHIR" in out


def test_an_unroutable_message_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = tmp_path / "unknown.hl7"
    unknown.write_bytes(
        ORU.replace(b"10001234567", b"19999999999")
        .replace(b"10007777777", b"19999999998")
        .replace(b"10003456789", b"19999999997")
    )
    status, out = explain(unknown, capsys)
    assert status == 1
    assert "unroutable: no recipient resolved" in out and "OBR-16=19999999999" in out


def test_fhir_without_a_known_sender_asks_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"resourceType": "DiagnosticReport", "status": "final",
                                  "code": {"text": "x"}}))  # fmt: skip
    status, out = explain(report, capsys)
    assert status == 2 and "give --sender ID" in out
    status, out = explain(report, capsys, "--sender", "labo-sud")
    assert status == 1 and "unroutable: no rule applies to this result message" in out


def test_invalid_fhir_names_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "ServiceRequest", "status": 12}')
    status, out = explain(bad, capsys, "--sender", "labo-sud")
    assert status == 1 and "ServiceRequest" in out
