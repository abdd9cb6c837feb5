"""Routing of CI-SIS document requests: each PRT RCT, within the flags, named in route explain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from broker.cli import main
from broker.directory import parse_directory
from broker.pseudonym import Pseudonymizer
from routing import render
from routing.rules import route
from tests.cisis import example
from tests.integration.mssante.conftest import partners_yaml
from tests.messages import envelope

HODA = "adam.hoda@test-ci-sis.mssante.fr"
APPLI = "appliExemple@hopitalB.mssante.fr"
RADIO = "radiologie@hopitalA.mssante.fr"
DIRECTORY = parse_directory(yaml.safe_load(partners_yaml(7001, 7002, 7003, 7004)))
KEYS = Pseudonymizer(b"k" * 32)


def decide(data: bytes, sender: str = "ris-y"):  # type: ignore[no-untyped-def]
    return route(envelope(data, sender, KEYS), DIRECTORY)


def test_route_explain_names_the_prt_that_chose_each_recipient() -> None:
    decision = decide(example("mdm_ex0"))
    chosen = {r.partner: [str(x) for x in r.reasons] for r in decision.recipients}
    assert chosen == {
        f"mssante:{HODA}": [f"mssante-rct via PRT(2)-15.4={HODA}"],
        "hopital-b-appli": [f"mssante-rct via PRT(3)-15.4={APPLI}"],
        f"mssante:{RADIO}": [f"mssante-rct via PRT(4)-15.4={RADIO}"],
        "mssante:patient": ["mssante-rct via PRT(5)-15.4=(patient)@patient.mssante.fr"],
    }
    # The result rules (OBR-16, OBR-28, PD1-4) do not apply: the creator chose.
    assert all(r.rules == ["mssante-rct"] for r in decision.recipients)


def test_a_directory_partner_named_by_its_rpps_gets_it_over_its_own_endpoint() -> None:
    data = example("mdm_ex2", replace={"101234567897^Hoda": "109999999999^Martin"})
    decision = decide(data)
    assert [r.partner for r in decision.recipients] == ["cabinet-martin"]
    assert str(decision.recipients[0].reasons[0]) == "mssante-rct via PRT(2)-5.1=109999999999"
    rendered = render.render_for(
        envelope(data, "ris-y", KEYS), DIRECTORY.partners["cabinet-martin"]
    )
    assert rendered.payload.startswith(b"MSH|")  # the HL7 v2 message, not a mail


def test_recipients_the_flags_exclude_are_skipped_with_why() -> None:
    decision = decide(example("mdm_ex2"))  # DESTMSSANTEPAT=N, no patient RCT
    assert [r.partner for r in decision.recipients] == [f"mssante:{HODA}"]
    data = example("mdm_ex0", flags={"INVISIBLE_PATIENT": "Y", "DESTMSSANTEPAT": "N"})
    decision = decide(data)
    assert "mssante:patient" not in {r.partner for r in decision.recipients}
    assert any(
        "PRT(5)-15.4=(patient)@patient.mssante.fr skipped: DESTMSSANTEPAT is N" in str(s)
        for s in decision.skipped
    )
    decision = decide(
        example("oru_ex1", flags={"DESTMSSANTEPAT": "N", "DESTMSSANTEPS": "N"}), "sil-y"
    )
    assert not decision.recipients


def test_a_patient_address_is_never_rendered_for_an_invisible_document() -> None:
    data = example("mdm_ex0", flags={"INVISIBLE_PATIENT": "Y", "DESTMSSANTEPAT": "N"})
    patient = DIRECTORY.partner("mssante:patient")
    assert patient is not None
    with pytest.raises(render.RenderError) as caught:
        render.render_for(envelope(data, "ris-y", KEYS), patient)
    assert "never mailed to a patient address" in str(caught.value)
    assert "146026322000196" not in str(caught.value)


def test_route_explain_command_shows_the_mssante_recipients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partners = tmp_path / "partners.yaml"
    partners.write_text(partners_yaml(7001, 7002, 7003, 7004))
    request = tmp_path / "mdm_ex1.hl7"
    request.write_bytes(example("mdm_ex1"))
    status = main(["route", "explain", str(request), "--config", str(partners)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "  mssante:patient  (mssante (the patient address of the message))" in out
    assert "    mssante-rct via PRT(2)-15.4=(patient)@patient.mssante.fr" in out
    assert "receives: an MSSanté mail of " in out
    assert "146026322000196" not in out
