"""HPRIM Santé result files: read one into patients, requests and results; write one back (pure).

Record layouts used (field numbers as HPRIM numbers them, the record type
being field 1 — see ``records.py``; the sources are in
tests/data/hprim/README.md). HPRIM's OBR and OBX follow HL7 v2's, one
position further: HPRIM ``OBR-17`` is HL7's OBR-16.

=====  ======================================================================
H      H-2 delimiters, H-3 file name, H-5 sender (id~name), H-7 message type
       (``ORU``: results), H-10 receiver (id~name), H-12 processing id
       (P/T/D), H-13 version (``H2.2~C``), H-14 date and time
P      P-2 sequence, P-3 patient id at the requester, P-4 patient id at the
       lab, P-5 a third id, P-6 name (family~given), P-7 birth name, P-8 birth
       date, P-9 sex, P-11 address (street~street 2~city~state~postal code)
OBR    OBR-2 sequence, OBR-3 sample / request id, OBR-4 lab's request id,
       OBR-5 tests asked (code~label~system, repeating), OBR-6 priority,
       OBR-8 collection date, OBR-15 received date, OBR-17 ordering doctor
       (id~name~system~unit id~unit name), OBR-26 status, OBR-29 copies to
OBX    OBX-2 sequence, OBX-3 value type (NM, ST, TX, CE, FIC ...), OBX-4 test
       (code~label~system), OBX-6 value, OBX-7 units, OBX-8 reference range,
       OBX-9 abnormal flags, OBX-12 status, OBX-15 date and time
C      C-2 sequence, C-3 source, C-4 text: a comment on the record before it
L      the end of the file: nothing may follow it
=====  ======================================================================

A file holds one H, then per patient a P, its requests (OBR) and their
results (OBX), comments (C) anywhere after a P, and one L last. A file that
breaks this is refused whole, with the record and field at fault; only
results (``H-7 = ORU``) are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.hl7v2.er7 import FieldValue, encode_field
from adapters.hprim.records import Delimiters, HprimError, Record, read_records

VALUE_TYPES = frozenset(
    {"NM", "SN", "ST", "TX", "FT", "CE", "CWE", "CNE", "DT", "TM", "TS", "DTM", "ED", "RP", "FIC"}
)
CRLF = "\r\n"
_COMPOSITE = frozenset({"CE", "CWE", "CNE", "FIC", "RP"})  # values read by component


@dataclass
class Coded:
    """A coded element: code~label~coding system (``L``: the lab's own codes)."""

    code: str = ""
    label: str = ""
    system: str = ""


@dataclass
class Doctor:
    """A doctor or unit as HPRIM names it: id~name~system~unit id~unit name."""

    id: str = ""
    name: str = field(default="", repr=False)
    system: str = ""
    unit: str = ""
    unit_name: str = field(default="", repr=False)


@dataclass
class Result:
    """One OBX: a result with its unit, reference range, flags and comments."""

    sequence: str
    value_type: str
    test: Coded
    value: str = field(default="", repr=False)
    # A coded value (CE) or a file reference (FIC: application~file~type), by component.
    parts: list[str] = field(default_factory=list, repr=False)
    units: str = ""
    reference_range: str = ""
    flags: str = ""
    status: str = ""
    observed_at: str = ""
    sub_id: str = ""
    comments: list[str] = field(default_factory=list, repr=False)


@dataclass
class Request:
    """One OBR: the tests asked, who asked, when sampled, and its results."""

    sequence: str
    sample_id: str = ""
    lab_id: str = ""
    tests: list[Coded] = field(default_factory=list)
    priority: str = ""
    collected_at: str = ""
    received_at: str = ""
    ordering: Doctor = field(default_factory=Doctor)
    copies_to: list[Doctor] = field(default_factory=list)
    status: str = ""
    results: list[Result] = field(default_factory=list)
    comments: list[str] = field(default_factory=list, repr=False)


@dataclass
class Patient:
    """One P record and what follows it up to the next P."""

    sequence: str
    requester_id: str = ""
    lab_id: str = ""
    third_id: str = ""
    family: str = field(default="", repr=False)
    given: str = field(default="", repr=False)
    birth_name: str = field(default="", repr=False)
    birth_date: str = field(default="", repr=False)
    sex: str = ""
    address: list[str] = field(default_factory=list, repr=False)
    requests: list[Request] = field(default_factory=list)
    comments: list[str] = field(default_factory=list, repr=False)
    record: int = 0  # where it starts in the file, for errors


@dataclass
class Header:
    """The H record."""

    file_name: str = ""
    sender_id: str = ""
    sender_name: str = ""
    message_type: str = "ORU"
    receiver_id: str = ""
    receiver_name: str = ""
    processing_id: str = "P"
    version: str = "H2.2"
    version_kind: str = "C"
    timestamp: str = ""


@dataclass
class HprimFile:
    """A whole HPRIM Santé result file."""

    header: Header
    patients: list[Patient]
    delimiters: Delimiters = field(default_factory=Delimiters)


# --- reading ----------------------------------------------------------------------


def parse(text: str) -> HprimFile:
    """Read a result file; raise HprimError naming the record and field at fault."""
    delimiters, records = read_records(text)
    header = _header(records[0])
    patients: list[Patient] = []
    last: Patient | Request | Result | None = None
    end: Record | None = None
    for record in records[1:]:
        if end is not None:
            raise record.error("", "a record after the L (end) record", 100)
        match record.type:
            case "P":
                _check_done(patients)
                last = _patient(record)
                patients.append(last)
            case "OBR":
                if not patients:
                    raise record.error("", "a request (OBR) before any patient (P)", 100)
                last = _request(record)
                patients[-1].requests.append(last)
            case "OBX":
                if not patients or not patients[-1].requests:
                    raise record.error("", "a result (OBX) before any request (OBR)", 100)
                last = _result(record)
                patients[-1].requests[-1].results.append(last)
            case "C":
                if last is None:
                    raise record.error("", "a comment (C) before any patient (P)", 100)
                last.comments.append(record.get(4))
            case "L":
                end = record
            case _:
                raise record.error(
                    f"{record.type or 'record'}-1",
                    "not a record of an HPRIM result file (H, P, OBR, OBX, C, A, L)",
                    100,
                )
    if end is None:
        last_record = records[-1]
        raise HprimError(
            "no L (end) record: the file is truncated",
            record=last_record.number,
            kind=last_record.type,
            code=100,
        )
    if not patients:
        raise end.error("", "the file holds no patient (P)", 100)
    _check_done(patients)
    return HprimFile(header, patients, delimiters)


def _header(record: Record) -> Header:
    message_type = record.get(7).upper()
    if message_type != "ORU":
        raise record.error(
            "H-7", f"message type {message_type or '(empty)'} is not read: results (ORU) only", 200
        )
    sender = record.components(5)
    if not sender or not sender[0]:
        raise record.error("H-5", "sender id missing", 101)
    receiver = record.components(10)
    version = record.components(13)
    return Header(
        file_name=record.get(3),
        sender_id=sender[0],
        sender_name=_nth(sender, 2),
        message_type=message_type,
        receiver_id=_nth(receiver, 1),
        receiver_name=_nth(receiver, 2),
        processing_id=record.get(12).upper() or "P",
        version=_nth(version, 1),
        version_kind=_nth(version, 2),
        timestamp=record.get(14),
    )


def _patient(record: Record) -> Patient:
    name = record.components(6)
    patient = Patient(
        sequence=record.get(2),
        requester_id=record.get(3, comp=1),
        lab_id=record.get(4, comp=1),
        third_id=record.get(5, comp=1),
        family=_nth(name, 1),
        given=_nth(name, 2),
        birth_name=record.get(7, comp=1),
        birth_date=record.get(8),
        sex=record.get(9).upper(),
        address=record.components(11),
        record=record.number,
    )
    if not (patient.requester_id or patient.lab_id):
        raise record.error("P-4", "no patient id (P-3 and P-4 are both empty)", 101)
    if not patient.family:
        raise record.error("P-6", "patient name missing", 101)
    return patient


def _check_done(patients: list[Patient]) -> None:
    """Refuse a patient left without any request: an ORU^R01 needs an OBR."""
    if patients and not patients[-1].requests:
        raise HprimError(
            "no request (OBR) follows this patient", record=patients[-1].record, kind="P", code=100
        )


def _request(record: Record) -> Request:
    tests = []
    for rep in range(1, len(record.repetitions(5)) + 1):
        parts = record.components(5, rep)
        if any(parts):
            tests.append(Coded(_nth(parts, 1), _nth(parts, 2), _nth(parts, 3)))
    return Request(
        sequence=record.get(2),
        sample_id=_first(record.components(3)),
        lab_id=_first(record.components(4)),
        tests=tests,
        priority=record.get(6),
        collected_at=record.get(8),
        received_at=record.get(15),
        ordering=_doctor(record.components(17)),
        copies_to=[
            _doctor(record.components(29, rep))
            for rep in range(1, len(record.repetitions(29)) + 1)
            if record.get(29, rep, 1)
        ],
        status=record.get(26).upper(),
    )


def _result(record: Record) -> Result:
    test = record.components(4)
    if not (_nth(test, 1) or _nth(test, 2)):
        raise record.error("OBX-4", "result without a test code", 101)
    value_type = record.get(3).upper()
    value = record.field(6).strip()
    if value_type and value_type not in VALUE_TYPES:
        raise record.error("OBX-3", f"value type {value_type} is not an HPRIM/HL7 type", 103)
    return Result(
        sequence=record.get(2),
        value_type=value_type or ("ST" if value else ""),
        test=Coded(_nth(test, 1), _nth(test, 2), _nth(test, 3)),
        value="" if value_type in _COMPOSITE else record.get(6),
        parts=record.components(6) if value_type in _COMPOSITE else [],
        units=record.get(7, comp=1),
        reference_range=_range(record.components(8)),
        flags=record.get(9).upper(),
        status=record.get(12).upper(),
        observed_at=record.get(15),
        sub_id=record.get(5),
    )


def _range(parts: list[str]) -> str:
    """Return a reference range as HL7 OBX-7 writes it: ``low~high`` becomes ``low-high``.

    A range written as one text (``10 - 40``, ``vr : 4 a 10000``) is kept as
    sent; components with one bound become ``<high`` or ``>low``.
    """
    if len(parts) < 2:
        return parts[0] if parts else ""
    low, high = parts[0], parts[1]
    if low and high:
        return f"{low}-{high}"
    return f"<{high}" if high else (f">{low}" if low else "")


def _doctor(parts: list[str]) -> Doctor:
    return Doctor(*(_nth(parts, i) for i in (1, 2, 3, 4, 5)))


def _nth(parts: list[str], n: int) -> str:
    return parts[n - 1] if len(parts) >= n else ""


def _first(parts: list[str]) -> str:
    return next((p for p in parts if p), "")


# --- writing ----------------------------------------------------------------------


def write(hprim: HprimFile) -> str:
    """Return the file as text: records in the standard delimiters, CRLF line ends, L last."""
    d = hprim.delimiters
    h = hprim.header
    lines = [
        _record(
            "H",
            [
                None,  # H-2, written by _record
                h.file_name,
                None,
                (h.sender_id, h.sender_name),
                None,
                h.message_type,
                None,
                None,
                (h.receiver_id, h.receiver_name),
                None,
                h.processing_id,
                (h.version, h.version_kind),
                h.timestamp,
            ],
            d,
        )
    ]
    for n, patient in enumerate(hprim.patients, 1):
        lines.append(
            _record(
                "P",
                [
                    str(n),
                    patient.requester_id,
                    patient.lab_id,
                    patient.third_id,
                    (patient.family, patient.given),
                    patient.birth_name,
                    patient.birth_date,
                    patient.sex,
                    None,
                    tuple(patient.address) if any(patient.address) else None,
                ],
                d,
            )
        )
        lines += [_comment(i, text, d) for i, text in enumerate(patient.comments, 1)]
        for m, request in enumerate(patient.requests, 1):
            lines.append(_request_record(m, request, d))
            lines += [_comment(i, text, d) for i, text in enumerate(request.comments, 1)]
            for k, result in enumerate(request.results, 1):
                lines.append(_result_record(k, result, d))
                lines += [_comment(i, text, d) for i, text in enumerate(result.comments, 1)]
    lines.append(_record("L", ["1"], d))
    return CRLF.join(lines) + CRLF


def _request_record(n: int, request: Request, d: Delimiters) -> str:
    fields: list[FieldValue] = [None] * 28
    fields[0] = str(n)  # OBR-2
    fields[1] = request.sample_id
    fields[2] = request.lab_id
    fields[3] = [(t.code, t.label, t.system) for t in request.tests] or None
    fields[4] = request.priority
    fields[6] = request.collected_at  # OBR-8
    fields[13] = request.received_at  # OBR-15
    o = request.ordering
    fields[15] = (o.id, o.name, o.system, o.unit, o.unit_name) if o.id or o.name else None
    fields[24] = request.status  # OBR-26
    fields[27] = [(c.id, c.name, c.system) for c in request.copies_to] or None  # OBR-29
    return _record("OBR", fields, d)


def _result_record(n: int, result: Result, d: Delimiters) -> str:
    value: FieldValue = tuple(result.parts) if result.parts else result.value
    fields: list[FieldValue] = [
        str(n),  # OBX-2
        result.value_type,
        (result.test.code, result.test.label, result.test.system),
        result.sub_id,
        value,  # OBX-6
        result.units,
        result.reference_range,
        result.flags,
        None,
        None,
        result.status,  # OBX-12
        None,
        None,
        result.observed_at,  # OBX-15
    ]
    return _record("OBX", fields, d)


def _comment(n: int, text: str, d: Delimiters) -> str:
    return _record("C", [str(n), "L", text], d)


def _record(kind: str, fields: list[FieldValue], d: Delimiters) -> str:
    """Encode a record; ``fields`` starts at field 2 (H-2 is the delimiters)."""
    enc = d.encoding
    body = [encode_field(_trimmed(f), enc) for f in fields]
    if kind == "H":
        body[0] = d.h2
    while body and body[-1] == "":
        body.pop()
    return d.field.join([kind, *body])


def _trimmed(value: FieldValue) -> FieldValue:
    """Return ``value`` without trailing empty components (``id~name``, not ``id~name~~~``)."""
    if isinstance(value, list):
        return [_trimmed(v) for v in value]
    if isinstance(value, tuple):
        parts = list(value)
        while parts and not parts[-1]:
            parts.pop()
        return tuple(parts) if len(parts) > 1 else (parts[0] if parts else None)
    return value
