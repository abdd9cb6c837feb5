"""Build test messages from the synthetic samples in tests/data, and their envelopes.

The samples match tests/data/partners.yaml. ``variant`` rewrites a sample's
control id and patient id so a test can send many distinct messages about
chosen patients, as a lab would.
"""

from __future__ import annotations

import zlib

from adapters.hl7v2 import charset
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from adapters.hl7v2.ins import nir_key
from broker.envelope import Envelope
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer
from tests.conftest import REPO

DATA = REPO / "tests" / "data"
ORU = (DATA / "oru_labo_sud.hl7").read_bytes()
REF = (DATA / "ref_cabinet_dupont.hl7").read_bytes()
PSEUDO = Pseudonymizer(b"p" * 32)


def variant(raw: bytes, control_id: str, patient: str | None = None) -> bytes:
    """Return ``raw`` with MSH-10 = ``control_id`` and, if given, another patient."""
    text = raw.decode()
    original = Message(text).control_id
    text = text.replace(f"|{original}|", f"|{control_id}|", 1)
    if patient is not None:
        # The patient's local id and INS both change: the INS (qualified here) is what
        # orders a patient's messages, so distinct patients need distinct ones.
        text = text.replace("LS-PAT-42", patient).replace("A-998", patient)
        text = text.replace("277076322082910", patient_ins(patient))
    return text.encode()


def patient_ins(patient: str) -> str:
    """Return the INS ``variant`` gives ``patient``: a well-formed NIR, its key computed."""
    number = f"1{zlib.crc32(patient.encode()) % 10**12:012d}"
    return f"{number}{nir_key(number):02d}"


def envelope(
    raw: bytes, sender: str = "labo-sud", pseudonymizer: Pseudonymizer = PSEUDO
) -> Envelope:
    """Return the envelope ingress would build for ``raw`` from ``sender``."""
    text, codec = charset.decode(raw)
    message_id, at = new_id_at()
    return build_envelope(
        Message(text),
        payload=raw,
        codec=codec,
        sender=sender,
        channel="mllp",
        message_id=message_id,
        received_at=at,
        pseudonymizer=pseudonymizer,
    )
