"""Write HPRIM Médecins: the text report GP software reads, with structured results (pure).

HPRIM Médecins 3.0 (1997; members-only like HPRIM Santé) is a text file per
report: a 12-line header, free text, then — what lets GP software file each
result — a ``****LAB****`` block of ``RES`` lines, the report ending with
``****FIN****`` and the file with ``****FINFICHIER****``. What is written
here, and where it was read (tests/data/hprim/README.md):

- header lines (bluegyn.com "Norme HPRIM", "Entête conforme pour Médycs";
  MedShakeEHR ``msHprim::getHprimHeaderData``): 1 patient code, 2 name,
  3 given name, 4-5 address, 6 postal code then town, 7 birth date
  (DD/MM/YYYY), 8 the INS (only when the identity is qualified; the line is
  the social-security number in the norm), 9 the lab's reference, 10 the date
  of the sample, 11 sender code (10 characters) and name, 12 recipient code
  and name;
- ``RES|label|code|type|value|unit|low|high|flag|status|value 2|unit 2|low 2|
  high 2|`` (Mediboard ``CHprim21::formatHPRIMBiologie``, MedShakeEHR
  ``parseSourceHprim``): type ``N`` for a number, ``A`` otherwise; flag ``L``,
  ``H``, ``LL``, ``HH`` or ``N`` (HL7 table 0078 shares them); the bounds come
  from the reference range when it reads ``low-high`` (a range given as text
  stays in the report's text);
- CRLF line ends; ISO-8859-1 unless the recipient says otherwise.

One file may hold several reports (one per patient), each with its header
and ``****FIN****``.
"""

from __future__ import annotations

import re

from adapters.hprim.sante import HprimFile, Patient, Request, Result

LAB = "****LAB****"
END = "****FIN****"
END_OF_FILE = "****FINFICHIER****"
CRLF = "\r\n"
_RANGE = re.compile(r"\s*([+-]?\d+(?:[.,]\d+)?)\s*-\s*([+-]?\d+(?:[.,]\d+)?)\s*")
_NUMBER = re.compile(r"[<>]?=?\s*[+-]?\d+([.,]\d+)?")


def write(hprim: HprimFile, *, ins: str = "", recipient: tuple[str, str] = ("", "")) -> str:
    """Return the HPRIM Médecins text of every patient of ``hprim``.

    ``ins`` is the matricule INS to write on line 8 (given only for a
    qualified identity); ``recipient`` is (code, name) of line 12.
    """
    header = hprim.header
    sender = _party(header.sender_id, header.sender_name)
    lines: list[str] = []
    for patient in hprim.patients:
        lines += _report(patient, sender, _party(*recipient), ins)
    lines.append(END_OF_FILE)
    return CRLF.join(_one_line(line) for line in lines) + CRLF


def _report(patient: Patient, sender: str, recipient: str, ins: str) -> list[str]:
    first = patient.requests[0] if patient.requests else Request("")
    address = [*patient.address, "", "", "", "", ""]
    lines = [
        (patient.requester_id or patient.lab_id)[:10],
        patient.family.upper(),
        patient.given,
        address[0],
        address[1],
        " ".join(p for p in (address[4], address[2]) if p),
        _date(patient.birth_date),
        ins,
        first.lab_id or first.sample_id,
        _date(first.collected_at),
        sender,
        recipient,
    ]
    lines += _text(patient)
    lines.append(LAB)
    lines += [_res(result) for request in patient.requests for result in request.results]
    lines.append(END)
    return lines


def _text(patient: Patient) -> list[str]:
    """Return the report's readable text: each request, its results, every comment."""
    text = [""]
    text += [f"Note : {c}" for c in patient.comments]
    for request in patient.requests:
        asked = ", ".join(t.label or t.code for t in request.tests)
        when = _date(request.collected_at)
        text.append(f"{asked}{f' (prélevé le {when})' if when else ''}".strip())
        text += [f"  Note : {c}" for c in request.comments]
        for result in request.results:
            text.append("  " + _result_line(result))
            text += [f"    Note : {c}" for c in result.comments]
        text.append("")
    return text


def _result_line(result: Result) -> str:
    label = result.test.label or result.test.code
    value = _value(result) or ("en cours" if result.status in ("I", "P") else "")
    parts = [f"{label:<32} {value} {result.units}".rstrip()]
    if result.reference_range:
        parts.append(f"({result.reference_range})")
    if result.flags and result.flags != "N":
        parts.append(f"[{result.flags}]")
    return " ".join(parts)


def _res(result: Result) -> str:
    value = _value(result)
    low, high = _bounds(result.reference_range)
    numeric = bool(value) and bool(_NUMBER.fullmatch(value))
    fields = [
        "RES",
        result.test.label or result.test.code,
        result.test.code,
        "N" if numeric else "A",
        value,
        result.units,
        low,
        high,
        result.flags,
        result.status or "F",
        "",
        "",
        "",
        "",
    ]
    return "|".join(f.replace("|", "/") for f in fields) + "|"


def _value(result: Result) -> str:
    if result.parts:
        if result.value_type == "FIC":
            return f"[fichier {result.parts[1] if len(result.parts) > 1 else ''}]".strip()
        return result.parts[1] if len(result.parts) > 1 and result.parts[1] else result.parts[0]
    return result.value


def _bounds(reference_range: str) -> tuple[str, str]:
    match = _RANGE.fullmatch(reference_range)
    if match:
        return match[1], match[2]
    if reference_range.startswith("<"):
        return "", reference_range[1:].strip()
    if reference_range.startswith(">"):
        return reference_range[1:].strip(), ""
    return "", ""


def _date(value: str) -> str:
    """Return DD/MM/YYYY from an HL7/HPRIM date (YYYYMMDD...), or "" when it is not one."""
    if len(value) >= 8 and value[:8].isdigit():
        return f"{value[6:8]}/{value[4:6]}/{value[:4]}"
    return ""


def _party(code: str, name: str) -> str:
    return f"{code[:10]:<10} {name}".rstrip()


def _one_line(text: str) -> str:
    """Keep a value on its line: the header is positional, a line break would shift it."""
    return " ".join(text.splitlines())
