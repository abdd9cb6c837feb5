"""HPRIM Santé results <-> HL7 v2.5 ORU^R01: one message per patient of a file, and back (pure).

An HPRIM result file becomes, for each patient (P), the ORU^R01 the same lab
would send over MLLP, so routing, rendering and the console treat both alike:

=====================================  =========================================
HPRIM Santé                            HL7 v2.5 ORU^R01
=====================================  =========================================
H-5 sender id / H-10 receiver id       MSH-4 / MSH-6 (MSH-3 ``HPRIM``)
H-12 processing id, H-14 date          MSH-11, MSH-7
P-3 id at the requester                PID-2
P-4 id at the lab (else P-3)           PID-3 (``PI``, assigned by the lab, H-5)
P-6 name, P-7 birth name               PID-5 (``D`` usage, ``L`` birth name)
P-8, P-9, P-11                         PID-7, PID-8, PID-11
OBR-3 / OBR-4 ids, OBR-5 first test    ORC/OBR-2, ORC/OBR-3, OBR-4
OBR-8 / OBR-15 dates                   OBR-7 / OBR-14
OBR-17 ordering doctor (id~name)       OBR-16 and ORC-12 (XCN id^name)
OBR-26 status, OBR-29 copies to        OBR-25, OBR-28
OBX-3 type, OBX-4 test, OBX-6 value    OBX-2, OBX-3, OBX-5
OBX-7 units, OBX-8 range, OBX-9 flags  OBX-6, OBX-7, OBX-8
OBX-12 status, OBX-15 date             OBX-11, OBX-14
C comments                             NTE after the segment they follow
=====================================  =========================================

Values the HL7 types cannot hold as sent are carried without loss: a number
with a comparator (``<0.5``) becomes SN (``<^0.5``), a number written with a
decimal comma gets a point, any other non-number in an NM result becomes ST,
and a file reference (FIC) becomes RP. Every test asked (OBR-5 repeats) keeps
its results in the OBX; HL7's OBR-4 holds the first.

:func:`to_hprim` reads an ORU^R01 (from any lab, HL7 v2 or translated) back
into the same model, for recipients that read HPRIM.
"""

from __future__ import annotations

import re
from datetime import datetime

from adapters.hl7v2.er7 import FieldValue, Message, Segment, encode_message, encode_segment
from adapters.hprim.sante import Coded, Doctor, Header, HprimFile, Patient, Request, Result

APPLICATION = "HPRIM"
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
_COMPARED = re.compile(r"(<=|>=|<>|<|>|=)\s*([+-]?(\d+([.,]\d*)?|[.,]\d+))")
_TIMESTAMP = re.compile(r"\d{8,14}")


def to_oru(hprim: HprimFile, control_ids: list[str], *, now: datetime) -> list[str]:
    """Return one ORU^R01 text (segments ending in CR) per patient, with the given MSH-10s."""
    if len(control_ids) != len(hprim.patients):
        raise ValueError("one control id per patient")
    return [
        _message(hprim.header, patient, control_id, now)
        for patient, control_id in zip(hprim.patients, control_ids, strict=True)
    ]


def _message(header: Header, patient: Patient, control_id: str, now: datetime) -> str:
    stamp = (
        header.timestamp if _TIMESTAMP.fullmatch(header.timestamp) else now.strftime("%Y%m%d%H%M%S")
    )
    segments = [
        encode_segment(
            "MSH",
            [
                APPLICATION,
                header.sender_id,
                "",
                header.receiver_id,
                stamp,
                None,
                ("ORU", "R01", "ORU_R01"),
                control_id,
                header.processing_id if header.processing_id in ("P", "T", "D") else "P",
                "2.5",
                None,
                None,
                None,
                None,
                "FRA",
                "UNICODE UTF-8",
            ],
        ),
        _pid(header, patient),
        *_notes(patient.comments),
    ]
    for n, request in enumerate(patient.requests, 1):
        ordering = _xcn(request.ordering)
        segments.append(
            encode_segment(
                "ORC",
                ["RE", request.sample_id, request.lab_id, *[None] * 8, ordering],
            )
        )
        segments.append(_obr(n, request, ordering))
        segments += _notes(request.comments)
        for m, result in enumerate(request.results, 1):
            segments.append(_obx(m, result))
            segments += _notes(result.comments)
    return encode_message(segments)


def _pid(header: Header, patient: Patient) -> str:
    if patient.lab_id:
        identifiers: FieldValue = [(patient.lab_id, None, None, header.sender_id, "PI")]
    else:
        identifiers = [(patient.requester_id, None, None, header.sender_id, "PT")]
    names: list[FieldValue] = []
    if patient.birth_name:
        names.append((patient.family, patient.given, None, None, None, None, "D"))
        names.append((patient.birth_name, patient.given, None, None, None, None, "L"))
    else:
        names.append((patient.family, patient.given, None, None, None, None, "L"))
    address = tuple(patient.address[:5]) if any(patient.address) else None
    return encode_segment(
        "PID",
        [
            "1",
            patient.requester_id if patient.lab_id else None,
            identifiers,
            None,
            names,
            None,
            patient.birth_date,
            patient.sex if patient.sex in ("M", "F", "U", "O", "A", "N") else None,
            None,
            None,
            address,
        ],
    )


def _obr(n: int, request: Request, ordering: FieldValue) -> str:
    fields: list[FieldValue] = [None] * 28
    fields[0] = str(n)  # OBR-1
    fields[1] = request.sample_id
    fields[2] = request.lab_id
    first = request.tests[0] if request.tests else Coded()
    fields[3] = (first.code, first.label, first.system) if first.code or first.label else None
    fields[4] = request.priority
    fields[6] = request.collected_at  # OBR-7
    fields[13] = request.received_at  # OBR-14
    fields[15] = ordering  # OBR-16
    fields[24] = request.status or "F"  # OBR-25
    fields[27] = [_xcn(c) for c in request.copies_to] or None  # OBR-28
    return encode_segment("OBR", fields)


def _obx(n: int, result: Result) -> str:
    value_type, value = _value(result)
    return encode_segment(
        "OBX",
        [
            str(n),
            value_type,
            (result.test.code, result.test.label, result.test.system),
            result.sub_id,
            value,
            result.units,
            result.reference_range,
            result.flags,
            None,
            None,
            result.status or "F",
            None,
            None,
            result.observed_at,
        ],
    )


def _value(result: Result) -> tuple[str, FieldValue]:
    """Return OBX-2 and OBX-5 for an HPRIM result, its value kept whole."""
    kind, text = result.value_type, result.value
    if kind == "FIC":
        application, name, data = [*result.parts, "", "", ""][:3]
        return "RP", (name, application, "AP", data)
    if result.parts:
        return ("CE" if kind == "CE" else kind), tuple(result.parts)
    if kind == "NM" and text:
        compared = _COMPARED.fullmatch(text.strip())
        if compared:
            return "SN", (compared[1], compared[2].replace(",", "."))
        if _NUMBER.fullmatch(text.strip()):
            return "NM", text.strip().replace(",", ".")
        return "ST", text
    return kind, text


def _xcn(doctor: Doctor) -> FieldValue:
    if not (doctor.id or doctor.name):
        return None
    return (doctor.id, doctor.name)


def _notes(comments: list[str]) -> list[str]:
    return [encode_segment("NTE", [str(n), "L", text]) for n, text in enumerate(comments, 1)]


# --- back to HPRIM ----------------------------------------------------------------


def to_hprim(message: Message, *, sender_name: str = "", receiver: tuple[str, str]) -> HprimFile:
    """Return an ORU^R01's patients, requests and results as an HPRIM result file.

    ``receiver`` is (id, name) of the recipient (H-10). Values HPRIM has no
    type for (an ED document, for one) keep their type and an empty value.
    """
    msh = message.msh
    header = Header(
        file_name="",
        sender_id=msh.get(4, comp=1),
        sender_name=sender_name,
        receiver_id=receiver[0],
        receiver_name=receiver[1],
        processing_id=msh.get(11, comp=1) or "P",
        timestamp=msh.get(7)[:12],
    )
    patients: list[Patient] = []
    last: Patient | Request | Result | None = None
    for segment in message.segments[1:]:
        if segment.name == "PID":
            last = _patient_of(segment)
            patients.append(last)
        elif segment.name == "OBR" and patients:
            last = _request_of(segment)
            patients[-1].requests.append(last)
        elif segment.name == "OBX" and patients and patients[-1].requests:
            last = _result_of(segment)
            patients[-1].requests[-1].results.append(last)
        elif segment.name == "NTE" and last is not None:
            last.comments.append(segment.get(3))
    return HprimFile(header, patients)


def _patient_of(pid: Segment) -> Patient:
    names = [pid.components(5, rep) for rep in range(1, len(pid.repetitions(5)) + 1)]
    usage = next((n for n in names if _at(n, 7) == "D"), names[0] if names else [])
    birth = next((n for n in names if _at(n, 7) == "L" and n is not usage), [])
    return Patient(
        sequence=pid.get(1),
        requester_id=pid.get(2, comp=1),
        lab_id=pid.get(3, 1, 1),
        family=_at(usage, 1),
        given=_at(usage, 2),
        birth_name=_at(birth, 1),
        birth_date=pid.get(7)[:8],
        sex=pid.get(8),
        address=pid.components(11)[:5],
    )


def _request_of(obr: Segment) -> Request:
    test = obr.components(4)
    ordering = obr.components(16)
    return Request(
        sequence=obr.get(1),
        sample_id=obr.get(2, comp=1),
        lab_id=obr.get(3, comp=1),
        tests=[Coded(_at(test, 1), _at(test, 2), _at(test, 3))] if any(test) else [],
        priority=obr.get(5),
        collected_at=obr.get(7)[:12],
        received_at=obr.get(14)[:12],
        ordering=Doctor(_at(ordering, 1), " ".join(p for p in ordering[1:3] if p)),
        copies_to=[
            Doctor(obr.get(28, rep, 1), " ".join(p for p in obr.components(28, rep)[1:3] if p))
            for rep in range(1, len(obr.repetitions(28)) + 1)
            if obr.get(28, rep, 1)
        ],
        status=obr.get(25),
    )


def _result_of(obx: Segment) -> Result:
    kind = obx.get(2).upper()
    test = obx.components(3)
    value, parts = obx.get(5), []
    if kind == "SN":
        sn = obx.components(5)
        value, kind = "".join(sn[:2]), "NM"
    elif kind in ("CE", "CWE", "CNE"):
        parts, value = obx.components(5)[:3], ""
        kind = "CE"
    elif kind == "RP":
        rp = obx.components(5)
        parts, value, kind = [_at(rp, 2), _at(rp, 1), _at(rp, 4) or _at(rp, 3)], "", "FIC"
    elif kind == "ED":
        value = ""  # a document (base64): no HPRIM type carries it
    return Result(
        sequence=obx.get(1),
        value_type=kind,
        test=Coded(_at(test, 1), _at(test, 2), _at(test, 3)),
        value=value,
        parts=parts,
        units=obx.get(6, comp=1),
        reference_range=obx.get(7),
        flags=obx.get(8),
        status=obx.get(11),
        observed_at=obx.get(14)[:12],
        sub_id=obx.get(4),
    )


def _at(parts: list[str], n: int) -> str:
    return parts[n - 1] if len(parts) >= n else ""
