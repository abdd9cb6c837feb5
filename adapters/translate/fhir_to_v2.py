"""Translate FHIR R4 results and referrals into HL7 v2 messages, for v2 recipients.

What comes out, by what the FHIR content is (or what the caller asks for):

- results, DiagnosticReport + Observations -> ``ORU^R01``: PID, [PD1], [PV1],
  then per report ORC, OBR, [NTE], {OBX, [NTE]}, [SPM];
- referrals, ServiceRequest (+ Task) -> ``REF^I12``: RF1, PRD (RP referrer,
  RT referred-to), PID, [PD1], [NTE], and the supporting results as OBR/OBX;
- lab orders, ServiceRequest -> ``OML^O21``: PID, [PV1], {ORC, OBR, [TQ1],
  [NTE], [OBX], [SPM]}.

Each element goes back to the v2 field the v2-to-FHIR IG maps it from, so a
v2 -> FHIR -> v2 round trip keeps what routing and the clinician need
(identifiers with their authorities, names, birth date, sex, ordering and
copies-to doctors, codes, values, units, ranges, flags, statuses, times).

The recipient's version (MSH-12) decides the data types written (``CE``
before 2.5, ``CWE`` from 2.5; SPM only from 2.5) and how many fields a segment
may have. Its character set (MSH-18) decides the bytes: ER7 delimiters are
escaped by the writer; a character the charset cannot hold is transliterated
(``œ`` -> ``oe``, ``€`` -> ``EUR``) or, failing that, replaced by ``?`` and
reported in :attr:`V2Message.warnings`: never dropped silently.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.fhir.resources import Resources
from adapters.hl7v2 import charset as charsets
from adapters.hl7v2.er7 import DEFAULT_ENCODING, FieldValue, encode_segment
from adapters.translate import concept_maps as maps
from adapters.translate.datatypes import ORIGINAL_TEXT_URL, fhir_to_dtm, system_to_hd
from adapters.translate.v2_orders import PLN_SYSTEMS, RESULT_COPIES_TO_URL, VALUE_ATTACHMENT_URL
from adapters.translate.v2_patient import IDENTITY_RELIABILITY_URL
from adapters.translate.vocabulary import code_system_name, ed_type
from broker.errors import MessageError

Json = dict[str, Any]
V2_TYPES = {"R01": "ORU^R01^ORU_R01", "I12": "REF^I12^REF_I12", "O21": "OML^O21^OML_O21"}
_ALTERNATE_CODES = "http://hl7.org/fhir/StructureDefinition/alternate-codes"
PATIENT_NOTE_URL = "http://hl7.org/fhir/StructureDefinition/patient-note"
_LAB_CATEGORIES = frozenset({"108252007", "LAB", "laboratory"})


@dataclass
class V2Message:
    """A translated message: ER7 text (CR separators), its bytes in the target charset."""

    text: str
    data: bytes
    message_type: str
    warnings: list[str] = field(default_factory=list)


def _reverse(table: maps.ConceptMap) -> dict[str, str]:
    out: dict[str, str] = {}
    for v2_code, (fhir_code, _, _) in table.items():
        out.setdefault(fhir_code, v2_code)
    return out


_SEX = _reverse(maps.ADMINISTRATIVE_SEX)
_RESULT_STATUS = {**_reverse(maps.RESULT_STATUS), "registered": "O", "final": "F"}
_OBSERVATION_STATUS = {**_reverse(maps.OBSERVATION_STATUS), "final": "F", "unknown": ""}
_NAME_USE = {"official": "L", "usual": "D", "nickname": "N", "maiden": "M", "old": "BAD"}
_ADDRESS_USE = {"home": "H", "work": "O", "temp": "C", "old": "BA", "billing": "BI"}
_TELECOM_USE = {"home": "PRN", "work": "WPN", "mobile": "ORN", "temp": "VHN"}
_TELECOM_SYSTEM = {"phone": "PH", "fax": "FX", "email": "Internet", "pager": "BP", "url": "X.400"}
_PRIORITY = {"stat": "S", "asap": "A", "routine": "R", "urgent": "S"}
_ORDER_STATUS = {
    "active": "IP",
    "completed": "CM",
    "revoked": "CA",
    "on-hold": "HD",
    "entered-in-error": "ER",
    "draft": "SC",
}
_REFERRAL_STATUS = {"active": "P", "completed": "A", "revoked": "R", "on-hold": "P"}
_PATIENT_CLASS = _reverse(maps.PATIENT_CLASS)
_MAX_FIELDS = {"OBX": {"2.3": 17, "2.3.1": 17, "2.4": 19}, "OBR": {"2.3": 43, "2.3.1": 45}}
_TRANSLITERATION = {
    "œ": "oe",
    "Œ": "OE",
    "æ": "ae",
    "Æ": "AE",
    "€": "EUR",
    "’": "'",  # noqa: RUF001 - the character being transliterated
    "‘": "'",  # noqa: RUF001
    "“": '"',
    "”": '"',
    "–": "-",  # noqa: RUF001
    "—": "-",
    "…": "...",
    "ß": "ss",
}


class _Writer:
    """Accumulate ER7 segments for one recipient's version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.segments: list[str] = []
        self.warnings: list[str] = []

    @property
    def modern(self) -> bool:
        """Tell whether the version has CWE, SPM, OBX-23+ (v2.5 and later)."""
        parts = self.version.split(".")
        try:
            return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) >= (2, 5)
        except ValueError:
            return True

    def add(self, name: str, fields: dict[int, FieldValue]) -> None:
        """Add a segment from {field number: value}; fields past the version's end are cut."""
        limit = _MAX_FIELDS.get(name, {}).get(self.version)
        if limit is not None:
            cut = sorted(n for n, v in fields.items() if n > limit and v)
            if cut:
                self.warnings.append(f"{name}-{cut[0]}+ do not exist in v{self.version}; left out")
            fields = {n: v for n, v in fields.items() if n <= limit}
        if not fields:
            self.segments.append(name)
            return
        start = 3 if name == "MSH" else 1
        values = [fields.get(n) for n in range(start, max(fields) + 1)]
        self.segments.append(encode_segment(name, values, DEFAULT_ENCODING))


# --- data types -------------------------------------------------------------------


def _first_coding(concept: Json | None) -> Json:
    codings = (concept or {}).get("coding") or []
    return codings[0] if codings else {}


def cwe(concept: Json | None, modern: bool = True) -> FieldValue:
    """CodeableConcept -> CWE (CE before v2.5): first two codings and the text."""
    if not concept:
        return None
    codings = concept.get("coding") or []
    parts: list[str] = []
    oid = ""
    for coding in codings[:2]:
        name, coding_oid = code_system_name(coding.get("system", ""))
        oid = oid or coding_oid
        parts += [coding.get("code", ""), coding.get("display", ""), name]
    while len(parts) < 6:
        parts.append("")
    if not modern:
        if not any(parts):
            parts[1] = concept.get("text", "")
        return _trim(tuple(parts))
    versions = [c.get("version", "") for c in codings[:2]] + ["", ""]
    result = [*parts, versions[0], versions[1], concept.get("text", "")]
    if oid:
        result += ["", "", "", "", oid]
    return _trim(tuple(result))


def _trim(value: tuple[FieldValue, ...]) -> FieldValue:
    items = list(value)
    while items and not items[-1]:
        items.pop()
    return tuple(items) if items else None


def _hd(system: str, display: str = "") -> FieldValue:
    return _trim(system_to_hd(system, display))


def cx(identifier: Json) -> FieldValue:
    """Identifier -> CX: value, assigning authority (HD), identifier type."""
    system = identifier.get("system", "")
    authority = _hd(system, (identifier.get("assigner") or {}).get("display", ""))
    return _trim(
        (
            identifier.get("value", ""),
            "",
            "",
            authority,
            _first_coding(identifier.get("type")).get("code", ""),
        )
    )


def ei(identifier: Json | None) -> FieldValue:
    """Identifier -> EI: entity id, namespace, universal id, type."""
    if not identifier or not identifier.get("value"):
        return None
    namespace, universal, kind = system_to_hd(
        identifier.get("system", ""), (identifier.get("assigner") or {}).get("display", "")
    )
    return _trim((identifier["value"], namespace, universal, kind))


def xpn(name: Json) -> FieldValue:
    """HumanName -> XPN: family, given, further given, suffix, prefix, degree, name type."""
    given = name.get("given") or []
    suffix = name.get("suffix") or []
    prefix = name.get("prefix") or []
    family = name.get("family", "") or (name.get("text", "") if not given else "")
    return _trim(
        (
            family,
            given[0] if given else "",
            " ".join(given[1:]),
            suffix[0] if suffix else "",
            prefix[0] if prefix else "",
            " ".join(suffix[1:]),
            _NAME_USE.get(name.get("use", ""), ""),
        )
    )


def xcn(person: Json | None) -> FieldValue:
    """Practitioner (or Organization) -> XCN: id, name parts, assigning authority, id type."""
    if not person:
        return None
    identifiers = person.get("identifier") or []
    ident = identifiers[0] if identifiers else {}
    names = person.get("name") or []
    if isinstance(names, str):  # an Organization's name
        name: Json = {"family": names}
    else:
        name = names[0] if names else {}
    given = name.get("given") or []
    suffix = name.get("suffix") or []
    prefix = name.get("prefix") or []
    authority = _hd(ident.get("system", ""), (ident.get("assigner") or {}).get("display", ""))
    return _trim(
        (
            ident.get("value", ""),
            name.get("family", "") or name.get("text", ""),
            given[0] if given else "",
            " ".join(given[1:]),
            suffix[0] if suffix else "",
            prefix[0] if prefix else "",
            " ".join(suffix[1:]),
            "",
            authority,
            _NAME_USE.get(name.get("use", ""), ""),
            "",
            "",
            _first_coding(ident.get("type")).get("code", ""),
        )
    )


def xad(address: Json) -> FieldValue:
    """Address -> XAD."""
    lines = address.get("line") or []
    return _trim(
        (
            lines[0] if lines else "",
            " ".join(lines[1:]),
            address.get("city", ""),
            address.get("state", ""),
            address.get("postalCode", ""),
            address.get("country", ""),
            _ADDRESS_USE.get(address.get("use", ""), ""),
            "",
            address.get("district", ""),
        )
    )


def xtn(point: Json) -> FieldValue:
    """ContactPoint -> XTN: the value in XTN.1 (phones) or XTN.4 (email)."""
    system = point.get("system", "")
    value = point.get("value", "")
    use = _TELECOM_USE.get(point.get("use", ""), "")
    equipment = _TELECOM_SYSTEM.get(system, "")
    if system == "email":
        return _trim(("", use or "NET", equipment, value))
    return _trim((value, use, equipment))


def dtm(value: Any) -> str:
    """FHIR date/dateTime/instant -> DTM, keeping precision and offset."""
    return fhir_to_dtm(str(value)) if value else ""


def original_text(element: Any) -> str:
    """Return the v2 form an ``_element`` kept (originalText extension), or ""."""
    if not isinstance(element, dict):
        return ""
    for extension in element.get("extension", []) or []:
        if extension.get("url") == ORIGINAL_TEXT_URL:
            return str(extension.get("valueString", ""))
    return ""


def dtm_at(parent: Json | None, name: str) -> str:
    """The DTM for ``parent[name]``: as the v2 sender wrote it when carebroker kept that form.

    A v2 time without an offset, or without seconds, gains both in FHIR; its
    v2 form is kept beside it, so the round trip gives back what was sent.
    """
    if not parent or not parent.get(name):
        return ""
    return fhir_to_dtm(str(parent[name]), original_text(parent.get("_" + name)))


def _effective(resource: Json, prefix: str = "effective") -> str:
    """The DTM of ``effectiveDateTime`` or ``effectivePeriod.start``."""
    if resource.get(prefix + "DateTime"):
        return dtm_at(resource, prefix + "DateTime")
    return dtm_at(resource.get(prefix + "Period"), "start")


def number(value: Any) -> str:
    """A FHIR decimal -> NM, keeping its digits."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value) if value is not None else ""


def units(quantity: Json) -> FieldValue:
    """Quantity units -> CWE (UCUM named when the system is UCUM)."""
    code = str(quantity.get("code", ""))
    unit = str(quantity.get("unit", ""))
    if not code and not unit:
        return None
    system = quantity.get("system", "")
    name = "UCUM" if system == "http://unitsofmeasure.org" else code_system_name(system)[0]
    if code and unit == code and not name:
        return code
    return _trim((code or unit, unit if unit != code else "", name))


# --- the translation ------------------------------------------------------------------


def convert(
    document: Json,
    *,
    version: str = "2.5",
    charset: str = "UNICODE UTF-8",
    message_type: str | None = None,
    sending_application: str = "CAREBROKER",
    sending_facility: str = "",
    receiving_application: str = "",
    receiving_facility: str = "",
    control_id: str | None = None,
    timestamp: datetime | None = None,
) -> V2Message:
    """Translate a FHIR Bundle or resource into one HL7 v2 message for a v2 recipient.

    Raise MessageError (naming the FHIRPath) when the content has nothing to
    translate into the requested message.
    """
    resources = Resources(document)
    kind = message_type or _choose_type(resources)
    code = kind.split("^")[0:2]
    full_type = V2_TYPES.get(code[1] if len(code) > 1 else "", kind)
    writer = _Writer(version)
    header = next(iter(resources.of_type("MessageHeader")), None)
    # Bundle.identifier is one Identifier; a resource sent alone has a list of them.
    identifier = document.get("identifier")
    bundle_id = (
        (identifier.get("value") if isinstance(identifier, dict) else None)
        or document.get("id")
        or ""
    )
    writer.add(
        "MSH",
        {
            3: sending_application,
            4: sending_facility,
            5: receiving_application,
            6: receiving_facility,
            7: dtm((timestamp or datetime.now(UTC)).isoformat(timespec="seconds")),
            9: tuple(full_type.split("^")),
            10: control_id or bundle_id[:199] or "1",
            11: _processing_id(header),
            12: version,
            18: charset if charset else None,
        },
    )
    if full_type.startswith("ORU"):
        _results(writer, resources)
    elif full_type.startswith("REF"):
        _referral(writer, resources)
    elif full_type.startswith("OML"):
        _lab_order(writer, resources)
    else:
        raise MessageError(
            f"carebroker cannot write {kind} from FHIR (ORU^R01, REF^I12, OML^O21)",
            location="MessageHeader.eventCoding",
        )
    text = "\r".join(writer.segments) + "\r"
    data, substituted = encode(text, charset)
    if substituted:
        writer.warnings.append(
            f"{substituted} character(s) outside {charset or 'ASCII'} replaced by '?'"
        )
    return V2Message(text=text, data=data, message_type=full_type, warnings=writer.warnings)


def _processing_id(header: Json | None) -> str:
    for tag in ((header or {}).get("meta") or {}).get("tag", []) or []:
        if tag.get("system") == "http://terminology.hl7.org/CodeSystem/v2-0103":
            return str(tag.get("code", "P"))
    return "P"


def _choose_type(resources: Resources) -> str:
    header = next(iter(resources.of_type("MessageHeader")), None)
    if header is not None:
        event = header.get("eventCoding") or {}
        display = str(event.get("display", ""))
        if event.get("code") in V2_TYPES:
            return V2_TYPES[event["code"]]
        if display.count("^") >= 1 and display.split("^")[1] in V2_TYPES:
            return V2_TYPES[display.split("^")[1]]
    if resources.of_type("DiagnosticReport") or (
        resources.of_type("Observation") and not resources.of_type("ServiceRequest")
    ):
        return "ORU^R01"
    requests = resources.of_type("ServiceRequest")
    if requests:
        categories = {
            c.get("code")
            for request in requests
            for concept in request.get("category") or []
            for c in concept.get("coding") or []
        }
        if categories & _LAB_CATEGORIES and not resources.of_type("Task"):
            return "OML^O21"
        return "REF^I12"
    if resources.of_type("Task"):
        return "REF^I12"
    raise MessageError(
        "nothing to translate to HL7 v2: no DiagnosticReport, Observation, ServiceRequest or Task",
        location="Bundle.entry",
    )


def _patient_of(
    resources: Resources, subjects: list[Json | None], warnings: list[str] | None = None
) -> Json:
    """Return the Patient the content is about; a reference alone gives a PID-3-only stub."""
    for reference in subjects:
        found = resources.resolve(reference)
        if found is not None and found.get("resourceType", "Patient") == "Patient":
            return found
    patients = resources.of_type("Patient")
    if patients:
        return patients[0]
    for reference in subjects:
        target = str((reference or {}).get("reference", ""))
        if target.startswith("Patient/") or "/Patient/" in target:
            if warnings is not None:
                warnings.append("the Patient is not in the content; PID-3 holds its FHIR id only")
            return {"resourceType": "Patient", "identifier": [{"value": target.split("/")[-1]}]}
    raise MessageError("no Patient to write PID from", location="DiagnosticReport.subject")


def _patient(writer: _Writer, resources: Resources, patient: Json) -> None:
    """Patient -> PID, generalPractitioner -> PD1-4."""
    birth = dtm_at(patient, "birthDate")
    for extension in (patient.get("_birthDate") or {}).get("extension", []) or []:
        if extension.get("url", "").endswith("patient-birthTime"):
            birth = fhir_to_dtm(
                str(extension.get("valueDateTime", "")), original_text(patient.get("_birthDate"))
            )
    statuses = [
        inner.get("valueCoding", {}).get("code", "")
        for extension in patient.get("extension", []) or []
        if extension.get("url") == IDENTITY_RELIABILITY_URL
        for inner in extension.get("extension", []) or []
        if inner.get("url") == "identityStatus"
    ]
    identifiers = [i for i in patient.get("identifier", []) or [] if i.get("value")]
    # A social beneficiary number without a system is what PID-19 carried (v2-to-FHIR IG).
    ssn = [
        i
        for i in identifiers
        if not i.get("system") and _first_coding(i.get("type")).get("code") in ("SB", "SS")
    ]
    licences = [i for i in identifiers if _first_coding(i.get("type")).get("code") == "DL"]
    fields: dict[int, FieldValue] = {
        1: "1",
        3: [cx(i) for i in identifiers if i not in ssn and i not in licences] or None,
        19: ssn[0]["value"] if ssn else None,
        20: _trim((licences[0]["value"], "", dtm((licences[0].get("period") or {}).get("end"))))
        if licences
        else None,
        5: [xpn(n) for n in patient.get("name", []) or [] if n.get("use") != "nickname"] or None,
        9: [xpn(n) for n in patient.get("name", []) or [] if n.get("use") == "nickname"] or None,
        7: birth,
        8: _SEX.get(patient.get("gender", ""), ""),
        11: [xad(a) for a in patient.get("address", []) or []] or None,
        13: [xtn(t) for t in patient.get("telecom", []) or []] or None,
        29: dtm_at(patient, "deceasedDateTime"),
        30: "Y"
        if patient.get("deceasedBoolean") is True or patient.get("deceasedDateTime")
        else ("N" if patient.get("deceasedBoolean") is False else None),
        32: [s for s in statuses if s] or None,
    }
    writer.add("PID", fields)
    doctors = [xcn(resources.person(r)) for r in patient.get("generalPractitioner", []) or []]
    doctors = [d for d in doctors if d]
    if doctors:
        writer.add("PD1", {4: doctors})
    # NTE after PID (the patient group's notes) became the patient-note extension.
    _notes(
        writer,
        [
            {"text": extension["valueString"]}
            for extension in patient.get("extension", []) or []
            if extension.get("url") == PATIENT_NOTE_URL and extension.get("valueString")
        ],
    )


def _visit(writer: _Writer, resources: Resources, encounter: Json | None) -> None:
    """Encounter -> PV1 (class, visit number, doctors, period)."""
    if encounter is None:
        return
    klass = encounter.get("class") or {}
    by_type: dict[str, list[FieldValue]] = {}
    for participant in encounter.get("participant", []) or []:
        code = _first_coding((participant.get("type") or [{}])[0]).get("code", "")
        person = xcn(resources.person(participant.get("individual")))
        if person:
            by_type.setdefault(code, []).append(person)
    visit = next(iter(encounter.get("identifier", []) or []), None)
    period = encounter.get("period") or {}
    writer.add(
        "PV1",
        {
            1: "1",
            2: _PATIENT_CLASS.get(klass.get("code", ""), "U"),
            7: by_type.get("ATND") or None,
            8: by_type.get("REF") or None,
            9: by_type.get("CON") or None,
            17: by_type.get("ADM") or None,
            19: cx(visit) if visit else None,
            44: dtm_at(period, "start"),
            45: dtm_at(period, "end"),
        },
    )


def _status_code(resource: Json, table: dict[str, str], v2_table: str) -> str:
    """The v2 status: the alternate code carebroker kept, else the reverse concept map."""
    for extension in (resource.get("_status") or {}).get("extension", []) or []:
        if extension.get("url") == _ALTERNATE_CODES:
            for coding in (extension.get("valueCodeableConcept") or {}).get("coding", []) or []:
                if coding.get("system", "").endswith(v2_table[3:]) or not coding.get("system"):
                    return str(coding.get("code", ""))
    return table.get(resource.get("status", ""), "")


def _identifier_of_type(resource: Json, code: str) -> Json | None:
    for ident in resource.get("identifier", []) or []:
        if _first_coding(ident.get("type")).get("code") == code:
            return dict(ident)
    return None


def _notes(writer: _Writer, notes: list[Json] | None) -> None:
    for index, note in enumerate(notes or [], 1):
        text = note.get("text", "")
        if text:
            writer.add("NTE", {1: str(index), 3: text.split("\n")})


def _restated(resources: Resources, report: Json) -> bool:
    """Tell whether a report only presents the document an Observation carries (an OBX ED/RP)."""
    if report.get("result") or not report.get("presentedForm"):
        return False
    carried = {
        (e.get("valueAttachment") or {}).get("data") or (e.get("valueAttachment") or {}).get("url")
        for o in resources.of_type("Observation")
        for e in o.get("extension", []) or []
        if e.get("url") == VALUE_ATTACHMENT_URL
    }
    return all((a.get("data") or a.get("url")) in carried for a in report["presentedForm"])


def _results(writer: _Writer, resources: Resources) -> None:
    reports = [r for r in resources.of_type("DiagnosticReport") if not _restated(resources, r)]
    loose = resources.of_type("Observation")
    subjects = [r.get("subject") for r in reports] + [o.get("subject") for o in loose]
    patient = _patient_of(resources, subjects, writer.warnings)
    _patient(writer, resources, patient)
    encounter = resources.resolve((reports or loose or [{}])[0].get("encounter"))
    _visit(writer, resources, encounter)
    grouped: set[int] = set()
    for index, report in enumerate(reports, 1):
        members = [m for r in report.get("result", []) or [] if (m := resources.resolve(r))]
        grouped |= {id(m) for m in members}
        _order_group(writer, resources, report, members, index)
    rest = [o for o in loose if id(o) not in grouped]
    if rest:  # Observations outside any report: one more OBR groups them, none is dropped
        if reports:
            writer.warnings.append("Observations outside a DiagnosticReport got their own OBR")
        _order_group(writer, resources, None, rest, index=len(reports) + 1)


def _order_group(
    writer: _Writer,
    resources: Resources,
    report: Json | None,
    observations: list[Json],
    index: int,
    control: str = "RE",
) -> None:
    """One ORDER_OBSERVATION group: ORC, OBR, NTE, OBX..., SPM."""
    report = report or {}
    request = resources.resolve(next(iter(report.get("basedOn", []) or []), None)) or {}
    placer = _identifier_of_type(report, "PLAC") or _identifier_of_type(request, "PLAC")
    filler = _identifier_of_type(report, "FILL") or _identifier_of_type(request, "FILL")
    orderer = xcn(resources.practitioner(request.get("requester")))
    writer.add(
        "ORC",
        {
            1: control,
            2: ei(placer),
            3: ei(filler),
            5: _ORDER_STATUS.get(request.get("status", ""), ""),
            9: dtm_at(request, "authoredOn"),
            12: orderer,
        },
    )
    copies = [
        xcn(resources.person(e.get("valueReference")))
        for e in report.get("extension", []) or []
        if e.get("url") == RESULT_COPIES_TO_URL
    ]
    interpreters = [_ndl(resources.person(r)) for r in report.get("resultsInterpreter", []) or []]
    code = report.get("code") or request.get("code")
    if not code and observations:
        code = observations[0].get("code")
    effective = report.get("effectiveDateTime") or (report.get("effectivePeriod") or {}).get(
        "start"
    )
    category = _first_coding(next(iter(report.get("category", []) or []), None)).get("code", "")
    writer.add(
        "OBR",
        {
            1: str(index),
            2: ei(placer),
            3: ei(filler),
            4: cwe(code, writer.modern),
            7: _effective(report) or dtm(effective),
            8: dtm_at(report.get("effectivePeriod"), "end"),
            16: orderer,
            22: dtm_at(report, "issued"),
            24: category,
            25: _status_code(report, _RESULT_STATUS, "HL70123") if report else "",
            28: [c for c in copies if c] or None,
            32: [i for i in interpreters if i] or None,
        },
    )
    _notes(writer, request.get("note"))
    documents = [a for a in report.get("presentedForm", []) or [] if a.get("data")]
    set_id = 0
    for observation in observations:
        set_id = _observation(writer, resources, observation, set_id)
    embedded = {
        e.get("valueAttachment", {}).get("data")
        for o in observations
        for e in o.get("extension", []) or []
        if e.get("url") == VALUE_ATTACHMENT_URL
    }
    for document in documents:
        if document["data"] in embedded:
            continue
        set_id += 1
        writer.add(
            "OBX",
            {1: str(set_id), 2: "ED", 3: cwe(code, writer.modern), 5: _ed(document), 11: "F"},
        )
    for number_, reference in enumerate(report.get("specimen", []) or [], 1):
        _specimen(writer, resources.resolve(reference), number_)


def _ndl(person: Json | None) -> FieldValue:
    """Practitioner -> NDL (OBR-32): the CNN person in subcomponents of NDL.1."""
    if not person:
        return None
    ident: Json = next(iter(person.get("identifier", []) or []), {})
    names = person.get("name") or [{}]
    name = names[0] if isinstance(names, list) else {"family": names}
    given = name.get("given") or []
    namespace, universal, kind = system_to_hd(ident.get("system", ""))
    cnn = _trim(
        (
            ident.get("value", ""),
            name.get("family", ""),
            given[0] if given else "",
            " ".join(given[1:]),
            "",
            "",
            "",
            "",
            namespace,
            universal,
            kind,
        )
    )
    return (cnn,) if cnn else None


def _ed(attachment: Json) -> FieldValue:
    kind, subtype = ed_type(attachment.get("contentType", "application/octet-stream"))
    return ("", kind, subtype, "Base64", attachment.get("data", ""))


def _observation(writer: _Writer, resources: Resources, observation: Json, set_id: int) -> int:
    """Observation -> OBX (repeating OBX-5 for components of the same code), NTE."""
    code = observation.get("code")
    value_type, value, unit = _value(observation)
    components = observation.get("component", []) or []
    if value is None and components:
        same = [c for c in components if c.get("code") == code]
        converted = [_value(c) for c in same]
        if converted and all(c[0] == converted[0][0] for c in converted):
            value_type = converted[0][0]
            value = [c[1] for c in converted]
            unit = converted[0][2]
        for component in (c for c in components if c.get("code") != code):
            set_id = _observation(
                writer, resources, {**observation, **component, "component": []}, set_id
            )
    set_id += 1
    directors: list[FieldValue] = []  # OBX-25: the performing organisation's medical director
    performers = []
    for reference in observation.get("performer", []) or []:
        role = resources.resolve(reference)
        if (
            role is not None
            and role.get("resourceType") == "PractitionerRole"
            and any(
                _first_coding(code).get("code") == "MDIR" for code in role.get("code", []) or []
            )
        ):
            directors.append(xcn(resources.person(reference)))
            continue
        performers.append(resources.person(reference))
    people = [xcn(p) for p in performers if p and p.get("resourceType") != "Organization"]
    labs = [p for p in performers if p and p.get("resourceType") == "Organization"]
    ranges = []
    for item in observation.get("referenceRange", []) or []:
        text = item.get("text") or "-".join(
            number((item.get(side) or {}).get("value")) for side in ("low", "high")
        )
        ranges.append(text)
    effective = observation.get("effectiveDateTime") or (
        observation.get("effectivePeriod") or {}
    ).get("start")
    fields: dict[int, FieldValue] = {
        1: str(set_id),
        2: value_type if value is not None else None,
        3: cwe(code, writer.modern),
        5: value,
        6: unit,
        7: ranges[0] if ranges else None,
        8: [_first_coding(i).get("code", "") for i in observation.get("interpretation", []) or []]
        or None,
        11: _status_code(observation, _OBSERVATION_STATUS, "HL70085"),
        14: _effective(observation) or dtm(effective),
        16: [p for p in people if p] or None,
        17: cwe(observation.get("method"), writer.modern),
        21: ei(next(iter(observation.get("identifier", []) or []), None))
        if writer.modern
        else None,
    }
    if writer.modern:
        fields[20] = cwe(observation.get("bodySite"), writer.modern)
        fields[25] = [d for d in directors if d] or None
        if labs:
            lab = labs[0]
            ident: Json = next(iter(lab.get("identifier", []) or []), {})
            fields[23] = _trim(
                (
                    lab.get("name", ""),
                    "",
                    "",
                    "",
                    "",
                    _hd(ident.get("system", "")),
                    _first_coding(ident.get("type")).get("code", ""),
                    "",
                    "",
                    ident.get("value", ""),
                )
            )
    writer.add("OBX", fields)
    _notes(writer, observation.get("note"))
    return set_id


def _value(observation: Json) -> tuple[str, FieldValue, FieldValue]:
    """Observation value[x] -> (OBX-2, OBX-5, OBX-6)."""
    if "valueQuantity" in observation:
        quantity = observation["valueQuantity"]
        comparator = quantity.get("comparator", "")
        if comparator:
            return "SN", (comparator, number(quantity.get("value"))), units(quantity)
        return "NM", number(quantity.get("value")), units(quantity)
    if "valueString" in observation:
        text = str(observation["valueString"])
        lines: list[FieldValue] = list(text.split("\n"))
        if len(lines) > 1:
            return "TX", lines, None
        return "ST", text, None
    if "valueCodeableConcept" in observation:
        return "CWE", cwe(observation["valueCodeableConcept"]), None
    if "valueRange" in observation:
        low = observation["valueRange"].get("low") or {}
        high = observation["valueRange"].get("high") or {}
        return (
            "SN",
            ("", number(low.get("value")), "-", number(high.get("value"))),
            units(low or high),
        )
    if "valueRatio" in observation:
        numerator = observation["valueRatio"].get("numerator") or {}
        denominator = observation["valueRatio"].get("denominator") or {}
        return (
            "SN",
            ("", number(numerator.get("value")), ":", number(denominator.get("value"))),
            units(numerator),
        )
    if "valueDateTime" in observation:
        return "DTM", dtm(observation["valueDateTime"]), None
    if "valuePeriod" in observation:
        period = observation["valuePeriod"]
        return "DR", _trim((dtm(period.get("start")), dtm(period.get("end")))), None
    if "valueTime" in observation:
        return "TM", str(observation["valueTime"]).replace(":", ""), None
    if "valueBoolean" in observation:
        return "ST", "true" if observation["valueBoolean"] else "false", None
    if "valueInteger" in observation:
        return "NM", str(observation["valueInteger"]), None
    for extension in observation.get("extension", []) or []:
        if extension.get("url") == VALUE_ATTACHMENT_URL:
            attachment = extension.get("valueAttachment") or {}
            if attachment.get("data"):
                return "ED", _ed(attachment), None
            if attachment.get("url"):
                kind, subtype = ed_type(attachment.get("contentType", ""))
                return "RP", (attachment["url"], "", kind, subtype), None
    return "", None, None


def _specimen(writer: _Writer, specimen: Json | None, index: int) -> None:
    """Specimen -> SPM (v2.5+)."""
    if not specimen:
        return
    if not writer.modern:
        writer.warnings.append(f"Specimen has no SPM segment in v{writer.version}; left out")
        return
    placer = _identifier_of_type(specimen, "PGN") or next(
        iter(specimen.get("identifier", []) or []), None
    )
    filler = _identifier_of_type(specimen, "FGN")
    collection = specimen.get("collection") or {}
    collected = collection.get("collectedDateTime") or (
        collection.get("collectedPeriod") or {}
    ).get("start")
    ids = _trim(((placer or {}).get("value", ""), (filler or {}).get("value", "")))
    writer.add(
        "SPM",
        {
            1: str(index),
            2: ids,
            4: cwe(specimen.get("type")),
            17: (
                dtm_at(collection, "collectedDateTime")
                or dtm_at(collection.get("collectedPeriod"), "start")
            )
            or dtm(collected),
            18: dtm_at(specimen, "receivedTime"),
        },
    )


def _referral(writer: _Writer, resources: Resources) -> None:
    """ServiceRequest (+ Task) -> REF^I12: RF1, PRD RP/RT, PID, PD1, NTE, OBR/OBX."""
    tasks = resources.of_type("Task")
    task = tasks[0] if tasks else {}
    request = resources.resolve(task.get("focus")) or next(
        iter(resources.of_type("ServiceRequest")), None
    )
    if request is None:
        raise MessageError("a referral needs a ServiceRequest", location="Task.focus")
    status = _status_code(request, _REFERRAL_STATUS, "HL70283")
    business = _first_coding(task.get("businessStatus")).get("code", "")
    categories = [
        c for c in request.get("category", []) or [] if _first_coding(c).get("code") != "3457005"
    ]
    placer = _identifier_of_type(request, "PLAC") or next(
        iter(request.get("identifier", []) or []), None
    )
    writer.add(
        "RF1",
        {
            1: business or status or "P",
            2: _PRIORITY.get(request.get("priority", "") or task.get("priority", ""), ""),
            3: cwe(categories[0], writer.modern) if categories else None,
            6: ei(placer),
            7: dtm_at(request, "authoredOn") or dtm_at(task, "authoredOn"),
            8: dtm_at(request.get("occurrencePeriod"), "end"),
            10: [cwe(r, writer.modern) for r in request.get("reasonCode", []) or []] or None,
            11: ei(_identifier_of_type(request, "FILL")),
        },
    )
    referrer = resources.person(request.get("requester") or task.get("requester"))
    if referrer is not None:
        writer.add("PRD", _prd("RP", "Referring Provider", referrer))
    referred = [resources.person(p) for p in request.get("performer", []) or []]
    if not referred and task.get("owner"):
        referred = [resources.person(task["owner"])]
    for person in referred:
        if person is not None:
            writer.add("PRD", _prd("RT", "Referred to Provider", person))
    patient = _patient_of(resources, [request.get("subject"), task.get("for")], writer.warnings)
    _patient(writer, resources, patient)
    supporting = [resources.resolve(r) for r in request.get("supportingInfo", []) or []]
    index = 0
    for item in supporting:
        if item is None:
            continue
        if item.get("resourceType") == "DiagnosticReport":
            index += 1
            members = [resources.resolve(r) for r in item.get("result", []) or []]
            _order_group_ref(writer, resources, item, [m for m in members if m], index)
        elif item.get("resourceType") == "ServiceRequest":
            continue
        elif item.get("resourceType") == "Observation":
            index += 1
            _order_group_ref(writer, resources, None, [item], index)
    _visit(writer, resources, resources.resolve(request.get("encounter")))
    _notes(writer, request.get("note"))


def _order_group_ref(
    writer: _Writer, resources: Resources, report: Json | None, observations: list[Json], index: int
) -> None:
    """REF's OBSERVATION group: OBR, NTE, OBX (no ORC in REF^I12)."""
    before = len(writer.segments)
    _order_group(writer, resources, report, observations, index)
    # REF^I12 has no ORC: drop the one the shared writer put first.
    if writer.segments[before].startswith("ORC"):
        del writer.segments[before]


def _prd(role: str, label: str, person: Json) -> dict[int, FieldValue]:
    """Practitioner -> PRD: role, name, address, telecom, provider ids (PLN)."""
    ids = []
    for ident in person.get("identifier", []) or []:
        code = _first_coding(ident.get("type")).get("code", "")
        if not code:
            code = next((k for k, v in PLN_SYSTEMS.items() if v == ident.get("system")), "")
        ids.append(_trim((ident.get("value", ""), code)))
    names = person.get("name") or []
    if isinstance(names, str):
        names = [{"family": names}]
    return {
        1: (role, label, "HL70286"),
        2: [xpn(n) for n in names] or None,
        3: [xad(a) for a in person.get("address", []) or []] or None,
        5: [xtn(t) for t in person.get("telecom", []) or []] or None,
        7: [i for i in ids if i] or None,
    }


def _lab_order(writer: _Writer, resources: Resources) -> None:
    """ServiceRequest(s) -> OML^O21: PID, PV1, {ORC, OBR, TQ1, NTE, OBX, SPM}."""
    requests = resources.of_type("ServiceRequest")
    if not requests:
        raise MessageError("a lab order needs a ServiceRequest", location="Bundle.entry")
    patient = _patient_of(resources, [r.get("subject") for r in requests], writer.warnings)
    _patient(writer, resources, patient)
    _visit(writer, resources, resources.resolve(requests[0].get("encounter")))
    for index, request in enumerate(requests, 1):
        placer = _identifier_of_type(request, "PLAC") or next(
            iter(request.get("identifier", []) or []), None
        )
        orderer = xcn(resources.practitioner(request.get("requester")))
        writer.add(
            "ORC",
            {
                1: "NW",
                2: ei(placer),
                3: ei(_identifier_of_type(request, "FILL")),
                5: _ORDER_STATUS.get(request.get("status", ""), ""),
                9: dtm_at(request, "authoredOn"),
                12: orderer,
            },
        )
        writer.add(
            "OBR",
            {
                1: str(index),
                2: ei(placer),
                3: ei(_identifier_of_type(request, "FILL")),
                4: cwe(request.get("code"), writer.modern),
                16: orderer,
                31: [cwe(r, writer.modern) for r in request.get("reasonCode", []) or []] or None,
            },
        )
        period = request.get("occurrencePeriod") or {}
        start = period.get("start") or request.get("occurrenceDateTime")
        if writer.modern and (start or request.get("priority")):
            writer.add(
                "TQ1",
                {
                    1: "1",
                    7: dtm_at(period, "start")
                    or dtm_at(request, "occurrenceDateTime")
                    or dtm(start),
                    8: dtm_at(period, "end"),
                    9: _PRIORITY.get(request.get("priority", ""), ""),
                },
            )
        _notes(writer, request.get("note"))
        set_id = 0
        for reference in request.get("supportingInfo", []) or []:
            item = resources.resolve(reference)
            if item and item.get("resourceType") == "Observation":
                set_id = _observation(writer, resources, item, set_id)
        for number_, reference in enumerate(request.get("specimen", []) or [], 1):
            _specimen(writer, resources.resolve(reference), number_)


# --- bytes ----------------------------------------------------------------------------


def encode(text: str, label: str) -> tuple[bytes, int]:
    """Encode for the recipient's MSH-18, transliterating what the charset lacks."""
    codec = charsets.codec_for(label or "")
    try:
        return text.encode(codec), 0
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    for char in text:
        try:
            char.encode(codec)
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        replacement = _TRANSLITERATION.get(char)
        if replacement is None:
            stripped = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            replacement = stripped if stripped and stripped != char else None
        if replacement is not None:
            try:
                replacement.encode(codec)
                out.append(replacement)
                continue
            except UnicodeEncodeError:
                pass
        out.append(char)
    return charsets.encode("".join(out), label)
