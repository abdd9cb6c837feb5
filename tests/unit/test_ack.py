"""ACKs per HL7 v2.5.1 §2.9, read back with python-hl7 (a reader carebroker did not write)."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest

from adapters.hl7v2.ack import AckError, Header, build_ack, build_batch_ack, code_for, is_due
from adapters.hl7v2.er7 import Message
from tests.conftest import CORPUS

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
SAMPLE = (CORPUS / "python-hl7" / "sample_hl7.hl7").read_text().replace("\n", "\r")


def header_of(text: str) -> Header:
    return Header.of(Message(text).msh)


def test_original_mode_ack_swaps_addresses_and_echoes_the_control_id() -> None:
    ack = hl7.parse(build_ack(header_of(SAMPLE), "AA", control_id="ACK-1", now=NOW))
    sent = hl7.parse(SAMPLE)
    msh, original = ack.segment("MSH"), sent.segment("MSH")
    assert [str(msh[n]) for n in (3, 4, 5, 6)] == [str(original[n]) for n in (5, 6, 3, 4)]
    assert str(msh[7]) == "20261128170000+0000"
    assert str(msh[9]) == "ACK^R01^ACK"
    assert str(msh[10]) == "ACK-1"
    assert (str(msh[11]), str(msh[12])) == (str(original[11]), str(original[12]))
    assert (str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])) == ("AA", "CNTRL-3456")
    assert len(ack) == 2  # MSH, MSA: no ERR on success


def test_v25_error_carries_err2_err3_err4_and_the_text_in_err8() -> None:
    text = SAMPLE.replace("|2.4", "|2.5.1", 1)
    error = AckError(101, "PID-3 patient id missing", "PID-3[2].4")
    ack = hl7.parse(build_ack(header_of(text), "AE", control_id="A", now=NOW, errors=[error]))
    err = ack.segment("ERR")
    assert str(err[2]) == "PID^1^3^2^4"
    assert str(err[3]) == "101^Required field missing^HL70357"
    assert str(err[4]) == "E"
    assert str(err[8]) == "PID-3 patient id missing"
    assert str(err[1]) == ""  # ERR-1 is withdrawn from v2.5


def test_older_versions_get_the_err1_form_and_the_text_in_msa3() -> None:
    error = AckError(203, "MSH-12 version not HL7 v2.x", "MSH-12")
    text = SAMPLE.replace("|2.4", "|2.3.1", 1)
    ack = hl7.parse(build_ack(header_of(text), "AR", control_id="A", now=NOW, errors=[error]))
    assert str(ack.segment("ERR")[1]) == "MSH^1^12^203&Unsupported version id&HL70357"
    assert str(ack.segment("MSA")[3]) == "MSH-12 version not HL7 v2.x"
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK"
    older = SAMPLE.replace("|2.4", "|2.2", 1)
    assert "|ACK^R01|" in build_ack(header_of(older), "AA", control_id="A", now=NOW)


def test_ack_uses_the_delimiters_of_the_message() -> None:
    text = (CORPUS / "hl7apy" / "custom_delimiters_rsp.hl7").read_text()
    ack_text = build_ack(
        header_of(text), "AE", control_id="A", now=NOW, errors=[AckError(101, "x", "MSH-9.2")]
    )
    assert ack_text.startswith("MSH!$r?@!LB!LB!LIP!LIP!")
    ack = Message(ack_text)
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AE", "430102")
    assert ack.get("ERR-2.1") == "MSH" and ack.get("ERR-2.3") == "9"


@pytest.mark.parametrize(
    ("msh15", "msh16", "outcome", "code", "due"),
    [
        ("", "", "accept", "AA", True),
        ("", "", "error", "AE", True),
        ("", "", "reject", "AR", True),
        ("AL", "NE", "accept", "CA", True),
        ("NE", "AL", "accept", "CA", False),
        ("NE", "AL", "reject", "CR", False),
        ("ER", "AL", "accept", "CA", False),
        ("ER", "AL", "error", "CE", True),
        ("SU", "AL", "accept", "CA", True),
        ("SU", "AL", "reject", "CR", False),
        ("", "AL", "accept", "CA", True),  # empty MSH-15 in enhanced mode: answer
    ],
)
def test_enhanced_mode_codes_and_msh15(
    msh15: str, msh16: str, outcome: str, code: str, due: bool
) -> None:
    header = Header(accept_ack_type=msh15, application_ack_type=msh16)
    assert code_for(header, outcome) == code  # type: ignore[arg-type]
    assert is_due(header, code) is due


def test_header_of_a_malformed_message_still_names_it() -> None:
    text = (CORPUS / "hl7apy" / "malformed_msh_bad_encoding_chars.hl7").read_text()
    header = Header.read(text)
    assert header.version == "2.7"
    ack = Message(
        build_ack(header, "AE", control_id="A", now=NOW, errors=[AckError(102, "x", "MSH-2")])
    )
    assert ack.get("MSA-1") == "AE"
    assert Header.read("garbage") == Header()
    assert Header.read("\ufeffMSH|^~\\&|A|B|C|D|1||ADT^A01|42|P|2.5").control_id == "42"


def test_batch_ack_refers_to_the_senders_batch() -> None:
    batch = Header.read("BHS|^~\\&|LIS|LAB|CB|REGION|20260101||||SENDER-BATCH-9")
    one = build_ack(header_of(SAMPLE), "AA", control_id="A1", now=NOW)
    parsed = hl7.parse_hl7(build_batch_ack([one], batch=batch, control_id="OURS-1", now=NOW))
    assert isinstance(parsed, hl7.Batch)
    assert str(parsed.header[3]) == "CB" and str(parsed.header[4]) == "REGION"
    assert str(parsed.header[11]) == "OURS-1" and str(parsed.header[12]) == "SENDER-BATCH-9"
    assert str(parsed.trailer[1]) == "1" and len(parsed) == 1
