"""Results rendered for GPs that read HPRIM (routing/render.py): from HL7 v2 or FHIR input."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.hprim import records, sante
from broker.directory import Partner
from routing.render import RenderError, render_for
from tests.messages import ORU, REF, envelope
from tests.unit.test_translate_render import fhir_envelope, translated_oru

INS = "277076322082910"


def gp(fmt: str, **accepts: Any) -> Partner:
    return Partner.model_validate(
        {
            "id": "cabinet-hprim",
            "name": "Cabinet Leroux",
            "kind": "gp",
            "facilities": ["CAB-HPRIM"],
            "endpoint": {"type": "directory", "path": "/srv/gp/inbox"},
            "accepts": {"format": fmt, **accepts},
        }
    )


def res_lines(data: bytes) -> list[list[str]]:
    lines = data.decode("iso-8859-1").split("\r\n")
    lab = lines[lines.index("****LAB****") + 1 : lines.index("****FIN****")]
    return [line.split("|") for line in lab]


def test_an_hl7_v2_result_becomes_hprim_medecins_with_the_qualified_ins() -> None:
    out = render_for(envelope(ORU), gp("hprim-medecins"))
    assert out.content_type == "text/x-hprim-medecins; charset=iso-8859-1"
    lines = out.payload.decode("iso-8859-1").split("\r\n")
    assert lines[1:3] == ["MARTIN", "JEANNE"] and lines[7] == INS  # VALI: qualified
    assert lines[11].startswith("CAB-HPRIM  Cabinet Leroux")
    assert res_lines(out.payload) == [
        ["RES", "Glucose", "2345-7", "N", "5.4", "mmol/L", "3.9", "5.8", "N", "F", *[""] * 5]
    ]
    assert out.translation is not None and out.translation.target == "hprim-medecins"
    assert out.translation.produced == {"patients": 1, "results": 1}


def test_an_ins_that_may_not_travel_is_not_written_anywhere() -> None:
    raw = ORU.replace(b"|VALI\r", b"|PROV\r")
    out = render_for(envelope(raw), gp("hprim-medecins"), strip_ins=True)
    assert INS.encode() not in out.payload
    assert out.payload.decode("iso-8859-1").split("\r\n")[7] == ""
    assert "ins_stripped" in out.flags


def test_hprim_sante_readers_get_records_they_read_back() -> None:
    out = render_for(envelope(ORU), gp("hprim-sante"))
    assert out.content_type == "text/x-hprim-sante; charset=iso-8859-1"
    hprim = sante.parse(records.decode(out.payload)[0])
    assert (hprim.header.sender_id, hprim.header.receiver_id) == ("LABO-SUD", "CAB-HPRIM")
    [result] = [r for p in hprim.patients for q in p.requests for r in q.results]
    assert (result.test.code, result.value, result.units, result.reference_range) == (
        "2345-7",
        "5.4",
        "mmol/L",
        "3.9-5.8",
    )
    assert hprim.patients[0].requests[0].ordering.id == "10001234567"


def test_a_fhir_result_is_translated_then_written_as_hprim() -> None:
    out = render_for(fhir_envelope(translated_oru()), gp("hprim-medecins"))
    [res] = res_lines(out.payload)
    assert res[2:6] == ["2345-7", "N", "5.4", "mmol/L"]


def test_characters_the_charset_lacks_are_counted_and_another_charset_can_be_asked() -> None:
    raw = ORU.replace(b"^Glucose^", "^Glucose œuf^".encode())
    latin = render_for(envelope(raw), gp("hprim-medecins"))
    # The label in the title, the result line and the RES line: each œ becomes ?, counted.
    assert "chars_replaced:3" in latin.flags
    utf8 = render_for(envelope(raw), gp("hprim-medecins", charset="UNICODE UTF-8"))
    assert utf8.content_type.endswith("charset=utf-8") and "œuf" in utf8.payload.decode()


def test_only_results_are_written_as_hprim() -> None:
    with pytest.raises(RenderError, match="REF\\^I12: hprim-medecins carries lab results"):
        render_for(envelope(REF, "cabinet-dupont"), gp("hprim-medecins"))
