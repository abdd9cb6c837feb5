"""What may be logged about a message: ids and codes, never content."""

from __future__ import annotations

import pytest

from broker import redact
from broker.envelope import Envelope, PatientKey
from broker.ids import new_id_at


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ORU^R01", "ORU^R01"),
        ("labo-sud", "labo-sud"),
        ("2.5.1", "2.5.1"),
        ("", "unknown"),
        (None, "unknown"),
        ("DUPONT^JEAN", "DUPONT^JEAN"),  # code-shaped: message types go through message_type
        ("DUPONT JEAN", "other"),
        ("ORU^R01\rPID|1", "other"),
        ("x" * 65, "other"),
    ],
)
def test_label_lets_only_code_shaped_text_through(value: object, expected: str) -> None:
    assert redact.label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ORU^R01", "ORU^R01"),
        ("ORU^R01^ORU_R01", "ORU^R01^ORU_R01"),
        ("ADT", "ADT"),
        ("referral-request", "referral-request"),
        ("", "unknown"),
        ("DUPONT^JEAN", "other"),
        ("MARTIN^PAUL^A", "other"),
        ("ORU^R01 DUPONT", "other"),
    ],
)
def test_message_types_must_look_like_one(value: str, expected: str) -> None:
    assert redact.message_type(value) == expected


def test_metadata_and_span_attributes_hold_ids_and_codes_only() -> None:
    message_id, at = new_id_at()
    env = Envelope(
        message_id=message_id,
        received_at=at,
        channel="mllp",
        format="hl7v2",
        sender="labo-sud",
        control_id="MSG0001",
        message_type="ORU^R01",
        version="2.5",
        ordering_key="0123abcd",
        patient_keys=[PatientKey(authority="1.2.250.1.213.1.4.8", digest="deadbeef" * 4)],
        payload=b"MSH|^~\\&|LIS|LABO-SUD\rPID|||277076322082910^^^ASIP&1.2.250.1.213.1.4.8&ISO||"
        b"DUPONT^JEAN||19700101",
    )
    facts = redact.metadata(env)
    assert facts == {
        "message_id": str(message_id),
        "control_id": "MSG0001",
        "sender": "labo-sud",
        "message_type": "ORU^R01",
        "channel": "mllp",
        "format": "hl7v2",
        "size": len(env.payload),
        "version": "2.5",
    }
    attributes = redact.span_attributes(env)
    text = repr(facts) + repr(attributes)
    for secret in ("DUPONT", "277076322082910", "19700101", "deadbeef", "0123abcd"):
        assert secret not in text
    assert attributes["messaging.message.id"] == str(message_id)
