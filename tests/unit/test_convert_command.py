"""``carebroker convert`` as a user runs it: output on stdout, warnings and errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.hl7v2.er7 import Message
from broker.cli import main
from tests.conftest import CORPUS, REPO

ORU = REPO / "tests" / "data" / "oru_labo_sud.hl7"


def test_to_fhir_prints_a_valid_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["convert", "--to", "fhir", str(CORPUS / "fhir-converter/ADT_A01/ADT-A01-02.hl7")])
        == 0
    )
    captured = capsys.readouterr()
    Bundle.model_validate(json.loads(captured.out))
    assert "carebroker: warning:" in captured.err and "not mapped" in captured.err


def test_to_hl7v2_prints_er7_with_cr(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["convert", "--to", "fhir", str(ORU)]) == 0
    bundle = tmp_path / "oru.json"
    bundle.write_bytes(capsysbinary.readouterr().out)
    assert main(["convert", "--to", "hl7v2", "--version", "2.4", str(bundle)]) == 0
    out = capsysbinary.readouterr().out
    assert b"\n" not in out and out.endswith(b"\r")
    message = Message(out.decode())
    assert (message.message_type, message.version) == ("ORU^R01", "2.4")


@pytest.mark.parametrize(
    ("name", "content", "to", "expected"),
    [
        ("bad.json", b'{"resourceType": ', "hl7v2", "invalid JSON"),
        (
            "sr.json",
            b'{"resourceType": "ServiceRequest", "status": "active", "intent": "order"}',
            "hl7v2",
            "ServiceRequest.subject",
        ),
        ("patient.json", b'{"resourceType": "Patient"}', "hl7v2", "at Bundle.entry"),
        ("bad.hl7", b"PID|1||X\r", "fhir", "(at MSH)"),
        ("missing.hl7", None, "fhir", "cannot read"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    to: str,
    expected: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["convert", "--to", to, str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"carebroker: error: {path}") and expected in line
