"""Read what routing needs from an HL7 v2 message, and build its envelope.

Only a handful of segments are read (MSH, PID, PD1, PV1, ORC, OBR, ROL, PRT,
PRD), each split into fields only when touched: this is the ingress hot path
and it never builds an object tree.

Where each routing hint comes from (HL7 v2.5.1 unless noted):

- OBR-16 / ORC-12 ordering provider (XCN), OBR-28 result copies-to (XCN,
  repeating), OBR-49 result handling (table 0507: CC, BCC, N, A);
- PV1-8 referring doctor, PD1-4 patient primary care provider (XCN);
- ROL-3 role / ROL-4 person (French PAM: ``ODRP`` = the declared GP);
- PRT-4 role / PRT-5 person / PRT-8 organisation / PRT-15 address (v2.9,
  pre-adopted by the French CI-SIS: ``SB`` sender, ``RCT`` result copies-to,
  ``REPLY`` reply-to);
- PRD-1 role (``RT`` referred-to, ``RP`` referring) / PRD-7 provider id;
- MSH-5/6 receiving application and facility.

Patient identity: every PID-3 repetition becomes a pseudonymous
:class:`PatientKey`. Whether the message carries the French national
identifier (INS) and asserts a *qualified* identity is decided by the rules
of ``adapters/hl7v2/ins.py`` (OIDs, NIR key, PID-32 per the sender's
policy); carebroker never infers or upgrades that status
(domain-requirements §3.1).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from adapters.hl7v2 import ins
from adapters.hl7v2.er7 import Message, Segment
from adapters.hl7v2.ins import INS_OIDS
from broker.envelope import Channel, Envelope, Identity, PatientKey, ProviderRef
from broker.pseudonym import Pseudonymizer

# XCN-typed provider fields read per segment: (segment, field).
_XCN_FIELDS = (("OBR", 16), ("ORC", 12), ("OBR", 28), ("PV1", 8), ("PD1", 4))


def hd_authority(segment: Segment, field: int, rep: int, component: int) -> str:
    """Return an HD's universal id (OID) when given, else its namespace id."""
    oid = segment.get(field, rep, component, 2)
    return oid or segment.get(field, rep, component, 1)


def patient_keys(message: Message, pseudonymizer: Pseudonymizer) -> list[PatientKey]:
    """Return every PID-3 identifier, pseudonymised (authority and type in clear)."""
    pid = message.segment("PID")
    if pid is None:
        return []
    keys = []
    for rep in range(1, len(pid.repetitions(3)) + 1):
        value = pid.get(3, rep, 1)
        if not value:
            continue
        authority = hd_authority(pid, 3, rep, 4)
        keys.append(
            PatientKey(
                authority=authority,
                id_type=pid.get(3, rep, 5),
                digest=pseudonymizer.digest(authority, value),
            )
        )
    return keys


def identity(message: Message, check: ins.Check | None = None) -> Identity:
    """Return what the message asserts about the patient's identity; never infer more.

    ``check`` is the INS check ingress made with the sender's policy; without
    it, the default policy (VALI or QUAL, not production) decides.
    """
    result = check if check is not None else ins.check(message)
    return Identity(
        ins_present=result.present,
        ins_qualified=result.qualified,
        reliability=result.reliability,
        issues=result.kinds,
    )


def providers(message: Message) -> list[ProviderRef]:
    """Return every professional or organisation the message names, with where."""
    found: list[ProviderRef] = []
    msh = message.msh
    if msh.get(6, comp=1):
        found.append(
            ProviderRef(source="MSH-6", id=msh.get(6, comp=1), authority=msh.get(6, comp=2))
        )
    for name, field in _XCN_FIELDS:
        for segment in message.all(name):
            for rep in range(1, len(segment.repetitions(field)) + 1):
                ident = segment.get(field, rep, 1)
                if ident:
                    found.append(
                        ProviderRef(
                            source=f"{name}-{field}",
                            id=ident,
                            authority=hd_authority(segment, field, rep, 9),
                        )
                    )
    for rol in message.all("ROL"):
        role = rol.get(3, comp=1)
        for rep in range(1, len(rol.repetitions(4)) + 1):
            if rol.get(4, rep, 1):
                found.append(
                    ProviderRef(
                        source="ROL",
                        role=role,
                        id=rol.get(4, rep, 1),
                        authority=hd_authority(rol, 4, rep, 9),
                    )
                )
    for prt in message.all("PRT"):
        role = prt.get(4, comp=1)
        address = prt.get(15, comp=4)
        if prt.get(5, comp=1):
            found.append(
                ProviderRef(
                    source="PRT",
                    role=role,
                    id=prt.get(5, comp=1),
                    authority=hd_authority(prt, 5, 1, 9),
                    address=address,
                )
            )
        organisation = prt.get(8, comp=10) or prt.get(8, comp=3)
        if organisation:
            found.append(
                ProviderRef(
                    source="PRT",
                    role=role,
                    id=organisation,
                    authority=hd_authority(prt, 8, 1, 6),
                    address=address,
                )
            )
        elif address and not prt.get(5, comp=1):
            found.append(ProviderRef(source="PRT", role=role, id="", address=address))
    for prd in message.all("PRD"):
        role = prd.get(1, comp=1)
        for rep in range(1, len(prd.repetitions(7)) + 1):
            if prd.get(7, rep, 1):
                found.append(
                    ProviderRef(
                        source="PRD", role=role, id=prd.get(7, rep, 1), authority=prd.get(7, rep, 2)
                    )
                )
    return found


def handling_codes(message: Message) -> list[str]:
    """Return the OBR-49 result handling codes (table 0507), each once."""
    codes: dict[str, None] = {}
    for obr in message.all("OBR"):
        for rep in range(1, len(obr.repetitions(49)) + 1):
            code = obr.get(49, rep, 1)
            if code:
                codes[code] = None
    return list(codes)


def ordering_key(keys: list[PatientKey], ident: Identity, fallback: str) -> str:
    """Return the lane key of the patient: the qualified INS, else the first local PID-3 id."""
    if ident.ins_qualified:
        for key in keys:
            if key.authority in INS_OIDS:
                return key.digest
    for key in keys:
        if not ins.is_claim(key.authority, key.id_type):
            return key.digest
    return fallback


def build_envelope(
    message: Message,
    *,
    payload: bytes,
    codec: str,
    sender: str,
    channel: Channel,
    message_id: uuid.UUID,
    received_at: datetime,
    pseudonymizer: Pseudonymizer,
    batch_id: str | None = None,
    trace: dict[str, str] | None = None,
    ins_check: ins.Check | None = None,
) -> Envelope:
    """Return the envelope of an accepted HL7 v2 message (``ins_check``: see :func:`identity`)."""
    keys = patient_keys(message, pseudonymizer)
    ident = identity(message, ins_check)
    return Envelope(
        message_id=message_id,
        received_at=received_at,
        channel=channel,
        format="hl7v2",
        sender=sender,
        control_id=message.control_id,
        message_type=message.message_type,
        structure=message.structure,
        version=message.version,
        processing_id=message.processing_id,
        sending_application=message.sending_application,
        sending_facility=message.sending_facility,
        receiving_application=message.receiving_application,
        receiving_facility=message.receiving_facility,
        accept_ack_type=message.accept_ack_type,
        application_ack_type=message.application_ack_type,
        charset=codec,
        batch_id=batch_id,
        patient_keys=keys,
        ordering_key=ordering_key(keys, ident, pseudonymizer.lane(str(message_id))),
        identity=ident,
        providers=providers(message),
        handling=handling_codes(message),
        trace=trace or {},
        payload=payload,
    )
