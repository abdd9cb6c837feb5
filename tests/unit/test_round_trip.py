"""v2 -> FHIR -> v2 keeps what routing and the clinician need, for every ORU^R01 and REF^I12.

For each such message in ``tests/corpus`` and ``tests/data``, the facts below
are read from the original and from the message carebroker writes back after
a trip through FHIR, and must be equal: patient identifiers (with their
assigning authority), names, birth date, sex, addresses, telephone numbers
and e-mail addresses, identity reliability (PID-32), GP (PD1-4), patient
notes, the visit (PV1-2, PV1-19, PV1-44), ordering provider, copies-to,
referral parties, observation codes, values, units, reference ranges, flags,
result and observation statuses, responsible observers (OBX-16), methods
(OBX-17), notes (NTE), and times as written (precision, offset or none).

Where a corpus sample carries something that is not valid HL7 v2, the fact
is left out for that sample in ``EXCEPTIONS`` with the reason.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from adapters.hl7v2.er7 import Message, Segment
from adapters.hl7v2.extract import hd_authority
from adapters.translate import fhir_to_v2
from adapters.translate.datatypes import Clock, dtm
from adapters.translate.v2_to_fhir import convert
from adapters.translate.vocabulary import code_system_uri
from tests.conftest import CORPUS, REPO

Facts = dict[str, Any]

# Sample -> facts not compared, and why (the source is not valid v2 there).
_PRT = (
    "the PRT after its OBX (v2.7 participation) comes back in OBX-16, where v2.5.1 has the "
    "responsible observer"
)
EXCEPTIONS: dict[str, dict[str, str]] = {
    "REF-I12-01.hl7": {"observations": _PRT},
    "REF-I12-02.hl7": {"observations": _PRT},
    "sample_hl7.hl7": {
        "birth": "PID-7 '196203520' is not a date",
        "values": "OBX 2 has type 'FN', which HL7 v2 does not define",
    },
    "rep_sample_hl7.hl7": {"birth": "PID-7 is not a date in this repetition demo"},
    "ORU-R01-01.hl7": {
        "reports": "its first OBX sits in the patient group (a v2.7 structure with PRT); a "
        "v2.5.1 ORU^R01 has no place for it, so it comes back under an OBR of its own",
        "notes": "TQ1-11's text instruction comes back as an NTE of the order (FHIR -> v2 "
        "writes no TQ1; ServiceRequest.patientInstruction has no other place in ORU)",
        "observations": _PRT,
    },
}


def _messages() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    files = sorted(CORPUS.rglob("*.hl7")) + sorted(CORPUS.rglob("*.txt"))
    files += sorted((REPO / "tests" / "data").glob("*.hl7"))
    for path in files:
        raw = path.read_bytes().decode("utf-8-sig", errors="replace")
        lines = [line for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        chunks: list[list[str]] = []
        for line in lines:
            if line.startswith("MSH"):
                chunks.append([line])
            elif chunks and line[:3].isalnum() and line[:3].isupper() and len(line) > 3:
                chunks[-1].append(line)
        for index, chunk in enumerate(chunks):
            text = "\r".join(chunk) + "\r"
            try:
                message = Message(text)
            except Exception:
                continue
            if message.message_type in ("ORU^R01", "REF^I12"):
                name = path.name if len(chunks) == 1 else f"{path.name}#{index + 1}"
                found.append((name, text))
    return found


SAMPLES = _messages()


def _instant(value: str, clock: Clock | None = None) -> str:
    """A time as the sender wrote it: precision, offset and lack of one must all survive."""
    return value.strip() if dtm(value, clock) else ""


def _number(value: str) -> str:
    try:
        return format(Decimal(value).normalize(), "f")
    except InvalidOperation:
        return value


def _ids(segment: Segment, field: int, authority_component: int) -> list[tuple[str, str]]:
    return sorted(
        (segment.get(field, rep, 1), hd_authority(segment, field, rep, authority_component))
        for rep in range(1, len(segment.repetitions(field)) + 1)
        if segment.get(field, rep, 1)
    )


def _telecom(segment: Segment, field: int, rep: int) -> str:
    """An XTN as what reaches the person: the e-mail address, else the number's digits."""
    email = segment.get(field, rep, 4)
    if email:
        return email
    parts = (segment.get(field, rep, c) for c in (5, 6, 7))
    country, area, local = parts
    if not (area or local):  # a country code alone reaches no one
        return "".join(c for c in segment.get(field, rep, 1) if c.isdigit() or c == "+")
    number = (f"+{country}" if country else "") + area + local
    return "".join(c for c in number if c.isdigit() or c == "+")


def _code(segment: Segment, field: int) -> tuple[str, str]:
    code = segment.get(field, comp=1)
    system = segment.get(field, comp=3)
    return code, code_system_uri(system) if system else ""


def facts(message: Message) -> Facts:
    """Read what must survive the round trip."""
    pid = message.segment("PID")
    assert pid is not None
    msh7 = message.msh.get(7)
    # Times without an offset are in the sender's zone, which MSH-7's offset gives.
    clock = Clock(None, msh7[-5:] if len(msh7) > 5 and msh7[-5] in "+-" else "")
    result: Facts = {
        # PID-2 and PID-4 (deprecated) come back in PID-3, the list they belong to.
        "patient_ids": sorted(
            (value, authority, pid.get(field, rep, 5))
            for field in (2, 3, 4)
            for rep in range(1, len(pid.repetitions(field)) + 1)
            for value, authority in [(pid.get(field, rep, 1), hd_authority(pid, field, rep, 4))]
            if value.strip()
        ),
        "names": [
            (pid.get(field, rep, 1), pid.get(field, rep, 2))
            for field in (5, 9)
            for rep in range(1, len(pid.repetitions(field)) + 1)
        ],
        "birth": (dtm(pid.get(7)) or "")[:10],
        "sex": pid.get(8),
        "orderers": sorted(
            {i for s in message.all("ORC") for i in _ids(s, 12, 9)}
            | {i for s in message.all("OBR") for i in _ids(s, 16, 9)}
        ),
        "copies_to": sorted({i for s in message.all("OBR") for i in _ids(s, 28, 9)}),
        "referral": [
            (s.get(1, comp=1), s.get(6, comp=1), _instant(s.get(7), clock))
            for s in message.all("RF1")
        ],
        "providers": sorted(
            (s.get(1, comp=1), s.get(7, rep, 1), s.get(7, rep, 2))
            for s in message.all("PRD")
            for rep in range(1, len(s.repetitions(7)) + 1)
        ),
        "reports": [
            (_code(s, 4), s.get(25), _instant(s.get(7), clock)) for s in message.all("OBR")
        ],
        "addresses": [
            (
                " ".join(p for p in pid.get(11, rep, 1).split(pid.enc.subcomponent) if p),
                *(pid.get(11, rep, c) for c in (3, 4, 5, 6)),
            )
            for rep in range(1, len(pid.repetitions(11)) + 1)
        ],
        # Home and business numbers (PID-13, PID-14) are both Patient.telecom: compared
        # together, as the number dialled (XTN-1, or area code and local number).
        "telecoms": sorted(
            _telecom(pid, field, rep)
            for field in (13, 14, 40)
            for rep in range(1, len(pid.repetitions(field)) + 1)
            if _telecom(pid, field, rep)
        ),
        "identity_status": pid.get(32),
        "gp": sorted({i for s in message.all("PD1") for i in _ids(s, 4, 9)}),
        "visit": [
            (s.get(2), s.get(19, comp=1), _instant(s.get(44), clock)) for s in message.all("PV1")
        ],
        "notes": sorted(
            n.get(3, rep) for n in message.all("NTE") for rep in range(1, len(n.repetitions(3)) + 1)
        ),
        "values": [],
        "observations": [],
    }
    for obx in message.all("OBX"):
        kind = obx.get(2)
        values = [
            obx.get(5, rep) if kind not in ("NM",) else _number(obx.get(5, rep))
            for rep in range(1, len(obx.repetitions(5)) + 1)
        ]
        if kind in ("CWE", "CE", "CNE"):
            values = [
                f"{obx.get(5, rep, 1)}|{obx.get(5, rep, 2)}"
                for rep in range(1, len(obx.repetitions(5)) + 1)
            ]
        if kind in ("TX", "FT", "ST"):
            values = ["\n".join(values)]
        if kind in ("RP", "ED"):  # the pointer or the data, not how the media type was spelt
            values = [obx.get(5, 1, 1 if kind == "RP" else 5)]
        if kind == "SN":
            values = [
                " ".join(
                    c
                    for c in (
                        obx.get(5, 1, 1),
                        _number(obx.get(5, 1, 2)),
                        obx.get(5, 1, 3),
                        _number(obx.get(5, 1, 4)) if obx.get(5, 1, 4) else "",
                    )
                    if c
                )
            ]
        values = [v for v in values if v]
        # Units belong to quantities; FHIR has nowhere for units on a coded or text value.
        unit = obx.get(6, comp=1) if values and kind in ("NM", "SN", "NR", "") else ""
        result["values"].append((values, unit))
        result["observations"].append(
            (
                _code(obx, 3),
                obx.get(7),
                sorted(obx.get(8, rep, 1) for rep in range(1, len(obx.repetitions(8)) + 1)),
                obx.get(11),
                _instant(obx.get(14), clock),
                sorted(i for i in _ids(obx, 16, 9)),
                obx.get(17, comp=1),
            )
        )
    return result


@pytest.mark.parametrize(("name", "text"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_round_trip_keeps_what_routing_and_clinicians_need(name: str, text: str) -> None:
    original = Message(text)
    bundle = convert(original).bundle
    written = fhir_to_v2.convert(bundle, version=original.version or "2.5")
    assert written.message_type.startswith(original.message_type)
    back = Message(written.text)
    expected, actual = facts(original), facts(back)
    for listed in ("values", "observations"):  # the same results, in any group order
        expected[listed] = sorted(expected[listed], key=repr)
        actual[listed] = sorted(actual[listed], key=repr)
    for fact in expected:
        if fact in EXCEPTIONS.get(name, {}):
            continue
        assert actual[fact] == expected[fact], f"{name}: {fact} changed on the round trip"


def test_the_corpus_has_round_trip_material() -> None:
    names = {name for name, _ in SAMPLES}
    assert len(SAMPLES) >= 20
    assert {"oru_labo_sud.hl7", "ref_cabinet_dupont.hl7", "REF-I12-01.hl7"} <= names


def test_written_message_uses_the_recipient_charset_and_escapes() -> None:
    text = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_text()
    text = text.replace("MARTIN^JEANNE", "CŒUR|DE^LÉON").replace(
        "Glucose^LN||5.4", "Glucose^LN||5.4"
    )
    text = text.replace("MARTIN^JEANNE", "X")
    message = Message(text.replace("^MARTIN^Paul^", "^BŒUF^Zoë^"))
    bundle = convert(message).bundle
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Observation":
            resource["valueString"] = "a|b^c~d\\e & 中"
            resource.pop("valueQuantity")
    written = fhir_to_v2.convert(bundle, version="2.5", charset="8859/1")
    assert b"|8859/1" in written.data.split(b"\r")[0]
    obx = next(line for line in written.data.split(b"\r") if line.startswith(b"OBX"))
    assert b"a\\F\\b\\S\\c\\R\\d\\E\\e \\T\\ ?" in obx
    assert any("replaced by '?'" in w for w in written.warnings), "a lost character is reported"
    pd1 = next(line for line in written.data.split(b"\r") if line.startswith(b"PD1"))
    assert "BOEUF^Zoë".encode("iso-8859-1") in pd1, "Œ is not in 8859/1: transliterated"
    back = Message(written.data.decode("iso-8859-1"))
    assert back.get("OBX-5") == "a|b^c~d\\e & ?"


def test_an_older_version_gets_older_types() -> None:
    message = Message((REPO / "tests" / "data" / "oru_labo_sud.hl7").read_text())
    bundle = convert(message).bundle
    written = fhir_to_v2.convert(bundle, version="2.3")
    back = Message(written.text)
    assert back.version == "2.3"
    assert back.segment("SPM") is None
    assert len(back.segment("OBX").fields) - 1 <= 17  # type: ignore[union-attr]
