"""Turn one HPRIM Santé file into the accepted ORU^R01 messages of its patients (pure).

The sender is the partner H-5 names (its ``facilities`` or identifiers, as
MSH-4 for HL7 v2); a partner's ``inbound_charset`` overrides the charset
guessed. Each patient's message gets MSH-10 = the first 16 hex characters of
the file's SHA-256 and its position in the file: the same file read again
(dropped twice, or re-read after a crash before it was moved) makes the same
control ids, which the message store recognises as duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.extract import build_envelope
from adapters.hprim import oru, records, sante
from adapters.hprim.records import HprimError
from broker.directory import Directory, Partner
from broker.envelope import Envelope
from broker.ids import new_id_at
from broker.pseudonym import Pseudonymizer

FORMAT = "hprim-sante"


@dataclass(frozen=True)
class Read:
    """A file read: who sent it, and one envelope per patient."""

    sender: Partner
    envelopes: list[Envelope]


def control_id(digest: str, position: int) -> str:
    """Return MSH-10 of the ``position``-th patient (from 0) of a file: 20 characters."""
    return f"{digest[:16].upper()}{position:04d}"


def sender_of(data: bytes, directory: Directory) -> Partner | None:
    """Return the partner H-5 names, or None (for a refusal's record: never raises)."""
    try:
        text, _ = records.decode(data)
        _, found = records.read_records(text)
    except HprimError:
        return None
    return directory.by_facility(found[0].get(5, comp=1)) if found else None


def read(data: bytes, digest: str, *, directory: Directory, pseudonymizer: Pseudonymizer) -> Read:
    """Read a complete file into envelopes; raise HprimError naming the record and field."""
    text, _ = records.decode(data)
    hprim = sante.parse(text)
    partner = directory.by_facility(hprim.header.sender_id)
    if partner is None:
        raise HprimError(
            "the sender id names no partner", record=1, kind="H", field="H-5", code=103
        )
    if partner.inbound_charset:
        hprim = sante.parse(records.decode(data, partner.inbound_charset)[0])
    ids = [control_id(digest, n) for n in range(len(hprim.patients))]
    now = datetime.now(UTC)
    envelopes = []
    for text_of_one in oru.to_oru(hprim, ids, now=now):
        message_id, received_at = new_id_at()
        envelopes.append(
            build_envelope(
                Message(text_of_one),
                payload=text_of_one.encode("utf-8"),
                codec="utf-8",
                sender=partner.id,
                channel="file",
                message_id=message_id,
                received_at=received_at,
                pseudonymizer=pseudonymizer,
                batch_id=f"file:{digest[:16]}",
            )
        )
    return Read(partner, envelopes)
