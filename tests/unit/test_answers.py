"""How partners' answers decide a delivery: MLLP ACKs (MSA/ERR) and FHIR HTTP responses."""

from __future__ import annotations

import json

import pytest

from routing.transports.fhir import read_response
from routing.transports.mllp import read_ack


def ack(code: str, control_id: str = "C1", err: str = "") -> bytes:
    text = f"MSH|^~\\&|GP|CAB|CB|REGION|20261128||ACK^R01^ACK|A1|P|2.5\rMSA|{code}|{control_id}\r"
    return (text + err).encode()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AA", "delivered"),
        ("CA", "delivered"),
        ("AE", "failed"),
        ("CE", "failed"),
        ("AR", "retry"),
        ("CR", "retry"),
    ],
)
def test_msa1_decides(code: str, status: str) -> None:
    outcome = read_ack(ack(code), "C1")
    assert (outcome.status, outcome.ack_code) == (status, code)
    assert outcome.response == ack(code)


def test_ae_keeps_the_err_codes_not_their_text() -> None:
    err = "ERR||PID^1^5|101^Required field missing^HL70357|E||||Nom MARTIN manquant\r"
    outcome = read_ack(ack("AE", err=err), "C1")
    assert outcome.status == "failed"
    assert outcome.error == "AE: ERR 101 at PID-5"
    assert "MARTIN" not in (outcome.error or "")
    old_style = read_ack(ack("AE", err="ERR|PID^1^3^204&Unknown key\r"), "C1")
    assert old_style.error == "AE: ERR 204 at PID-3"


def test_an_ack_for_another_message_or_no_ack_is_retried() -> None:
    assert read_ack(ack("AA", control_id="OTHER"), "C1").ack_code == "mismatch"
    assert read_ack(b"garbage", "C1").status == "retry"
    assert read_ack(b"MSH|^~\\&|A|B\rPID|1\r", "C1").ack_code == "not-an-ack"


def outcome_issue(code: str) -> bytes:
    return json.dumps(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}
    ).encode()


def test_http_status_decides() -> None:
    assert read_response(200, b"").status == "delivered"
    assert read_response(202, b"{}").status == "delivered"
    assert read_response(503, b"").status == "retry"
    assert read_response(429, b"").status == "retry"
    bad = read_response(422, outcome_issue("invalid"))
    assert (bad.status, bad.error) == ("failed", "HTTP 422: OperationOutcome invalid")
    assert bad.response == outcome_issue("invalid")
    assert read_response(409, outcome_issue("duplicate")).status == "delivered"
    assert read_response(409, outcome_issue("conflict")).status == "failed"


def test_response_message_code_is_honoured() -> None:
    def message(code: str) -> bytes:
        return json.dumps(
            {
                "resourceType": "Bundle",
                "type": "message",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "MessageHeader",
                            "response": {"identifier": "x", "code": code},
                        }
                    }
                ],
            }
        ).encode()

    assert read_response(200, message("ok")).status == "delivered"
    assert read_response(200, message("transient-error")).status == "retry"
    assert read_response(200, message("fatal-error")).status == "failed"
