"""CI-SIS CDA-in-HL7v2 requests: every example of the guide reads, refusals name the ERR."""

from __future__ import annotations

import pytest

from adapters.hl7v2 import cisis
from adapters.hl7v2.ack import AckError
from adapters.hl7v2.er7 import Message
from tests.cisis import EXAMPLES, example


def read(data: bytes) -> cisis.Request:
    return cisis.read(Message(data.decode("utf-8")))


def refusal(data: bytes) -> tuple[AckError, str]:
    with pytest.raises(cisis.CisisError) as caught:
        read(data)
    return caught.value.error, caught.value.outcome


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_of_the_guide_is_a_valid_request(name: str) -> None:
    request = read(example(name))
    assert request.documents
    assert all(d.cda.header.code.code == d.code for d in request.documents)
    assert request.recipients
    assert request.sender is not None and request.sender.person_id == "801234567866"


def test_oru_example_0_reads_documents_recipients_flags_and_body() -> None:
    request = read(example("oru_ex0"))
    assert [d.cda.header.level for d in request.documents] == [3, 1]
    assert [p.address for p in request.recipients] == [
        "adam.hoda@test-ci-sis.mssante.fr",
        "appliExemple@hopitalB.mssante.fr",
        "146026322000196@patient.mssante.fr",
    ]
    assert [p.is_patient for p in request.recipients] == [False, False, True]
    assert request.recipients[1].device_id == "12"
    assert request.reply_to == "adam.hoda@test-ci-sis.mssante.fr"
    # The guide's example spells ACK_LECTURE: read as ACK_LECTURE_MSS.
    assert request.ack_reception and request.ack_reading
    assert request.to_professionals and request.to_patient
    assert request.bodies["ps"].startswith("Cher confrère")
    assert request.status == "F" and request.order_control == "NW"


def test_nte_fin_after_the_patient_flag_forbids_the_patient_to_answer() -> None:
    assert read(example("oru_ex1")).no_reply
    assert not read(example("mdm_ex1")).no_reply


def test_a_document_hidden_from_the_patient_addressed_to_the_patient_is_refused() -> None:
    error, outcome = refusal(example("oru_ex0", flags={"INVISIBLE_PATIENT": "Y"}))
    assert (error.code, error.location, outcome) == (207, "OBX(10)-5", "error")
    assert "INVISIBLE_PATIENT=Y" in error.text


def test_a_document_hidden_from_professionals_mailed_to_them_is_refused() -> None:
    error, _ = refusal(example("mdm_ex0", flags={"MASQUE_PS": "Y"}))
    assert (error.code, error.location) == (207, "OBX(8)-5")


def test_secret_connection_for_a_patient_only_exchange_is_refused() -> None:
    error, _ = refusal(example("mdm_ex1", flags={"CONNEXION_SECRETE": "Y"}))
    assert (error.code, error.location) == (207, "OBX(5)-5")


def test_a_missing_flag_is_a_missing_segment() -> None:
    data = example("mdm_ex2").replace(b"MODIF_CONF_CODE", b"SOMETHING_ELSE")
    error, _ = refusal(data)
    assert error.code == 100 and "MODIF_CONF_CODE" in error.text


def test_a_flag_that_is_not_y_or_n_is_a_table_value_error() -> None:
    data = example("mdm_ex2").replace(
        b"||Y^^expandedYes-NoIndicator", b"||O^^expandedYes-NoIndicator", 1
    )
    error, _ = refusal(data)
    assert (error.code, error.location) == (103, "OBX(7)-5")


def test_undecodable_and_non_cda_documents_are_data_type_errors() -> None:
    error, _ = refusal(example("mdm_ex0", replace={"^Base64^PD94": "^Base64^@@@"}))
    assert (error.code, error.location) == (102, "OBX(1)-5.5")
    not_cda = "PD94bWwgdmVyc2lvbj0iMS4wIj8+PGE+PC9hPg=="  # <?xml version="1.0"?><a></a>
    data = example("mdm_ex0")
    start = data.index(b"^Base64^") + len(b"^Base64^")
    end = data.index(b"|", start)
    error, _ = refusal(data[:start] + not_cda.encode() + data[end:])
    assert (error.code, error.location) == (102, "OBX(1)-5.5")
    assert "ClinicalDocument" in error.text


def test_order_control_must_match_the_document_status() -> None:
    error, _ = refusal(example("oru_ex2", replace={"ORC|CA|": "ORC|NW|"}))
    assert (error.code, error.location) == (207, "ORC-1")
    error, _ = refusal(example("mdm_ex3", replace={"MDM^T10^": "MDM^T02^"}))
    assert error.code == 207


def test_unsupported_type_version_and_profile_are_rejected_ar() -> None:
    error, outcome = refusal(example("mdm_ex0", replace={"|2.6|": "|2.5|"}))
    assert (error.code, error.location, outcome) == (203, "MSH-12", "reject")
    error, outcome = refusal(example("mdm_ex0", replace={"2.1^CISIS": "2.0^CISIS"}))
    assert (error.code, outcome) == (203, "reject")
    error, outcome = refusal(example("mdm_ex0", replace={"MDM^T02^": "MDM^T06^"}))
    assert (error.code, outcome) == (201, "reject")


def test_a_patient_exchange_without_the_patient_address_is_refused() -> None:
    data = example(
        "oru_ex1", replace={"146026322000196@patient.mssante.fr": "dr.x@test.mssante.fr"}
    )
    error, _ = refusal(data)
    assert (error.code, error.location) == (100, "PRT")


def test_a_message_without_the_profile_is_not_checked() -> None:
    data = example("mdm_ex0", replace={"|||2.1^CISIS_CDA_HL7_V2": ""})
    assert cisis.refusal_of(Message(data.decode())) is None
    assert not cisis.is_cisis_bytes(data)
    assert cisis.is_cisis_bytes(example("mdm_ex0"))
