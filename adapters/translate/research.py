"""Pseudonymise a FHIR message Bundle for research (``care.fhir.research.v1``).

A regional data platform may link one patient's records without knowing who
the patient is (CNIL / GDPR pseudonymisation, not anonymisation: whoever holds
the research key, or enough outside knowledge, can still single a patient
out; ``docs/data-protection.md`` lists the risks that remain). What changes:

- identifiers (of patients, relatives, doctors, orders, specimens, visits,
  documents, the message itself) -> HMAC-SHA256 pseudonyms under the research
  key, which is not the routing key; the same identifier always gives the
  same pseudonym under one key, so records link, and another key gives
  others. Resource ids are re-derived from the research key, references
  follow them;
- names of people, addresses, telecoms, free text (notes, narratives,
  descriptions, text values, text-only concepts, comments), embedded or
  pointed-to documents and images, and the extensions carrying any of these
  (mother's maiden name, birth place, birth time, the v2 originals of times)
  -> removed, or masked where FHIR requires an element;
- dates and times -> shifted by a per-patient offset (a keyed draw in
  ``[-N, +N]`` days, never 0), the same for every date of that patient, so
  intervals between them are kept; precision is kept;
- birth dates -> the (shifted) year, or year and month;
- postal codes -> the patient's département (first two digits, three
  overseas), unless the code is listed as a large town's; a code that is not
  French is removed.

Pure: no I/O. Built once per process from the feed settings.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from datetime import date, timedelta
from typing import Any

Json = dict[str, Any]
PSEUDONYM_SYSTEM = "urn:carebroker:research:pseudonym"
_MASKED = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "masked",
            "display": "Masked",
        }
    ]
}
# Elements whose content is free text, a document, or a way to reach a person.
_REMOVED = frozenset(
    {
        "note",
        "comment",
        "description",
        "patientInstruction",
        "telecom",
        "photo",
        "presentedForm",
        "alias",
        "contact",
        "valueAttachment",
        "valueAddress",
        "valueHumanName",
        "valueContactPoint",
        "valueString",
        "valueMarkdown",
        "asNeededCodeableConcept",
        "title",
        "processNote",
        "div",
        "authorString",
        "onsetString",
        "occurrenceString",
        # Names of people, and of the places and organisations around them
        # (an employer, a relative's firm, a home-care location, the software
        # a small practice runs): linkable through pseudonymised identifiers.
        "name",
        "deviceName",
    }
)
# Resources about a person, whose address is a home.
_PEOPLE = frozenset({"Patient", "RelatedPerson", "Practitioner", "Person", "Account"})
_VALUE_TYPES = (
    "valueString",
    "valueAttachment",
    "valueAddress",
    "valueHumanName",
    "valueContactPoint",
)
_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?P<rest>T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
# A string shaped like a date to the month at least, wherever it is (Timing.event,
# MedicationDispense.whenHandedOver ...): shifted too.
_DATED = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?(?:T|$)")
_DATE_KEYS = frozenset(
    {
        "start",
        "end",
        "date",
        "issued",
        "authoredOn",
        "recorded",
        "timestamp",
        "created",
        "lastUpdated",
        "time",
        "occurrence",
    }
)
_CACHE_MAX = 100_000
_IDENTIFIERS = frozenset(
    {
        "identifier",
        "masterIdentifier",
        "accessionIdentifier",
        "requisition",
        "preAdmissionIdentifier",
    }
)
# Keys ``element`` treats apart; any other is copied through ``value``.
_SPECIAL = _REMOVED | _IDENTIFIERS | {"display", "extension", "text"}
_REFERENCE = re.compile(r"^urn:uuid:([0-9a-f-]{36})$")


class ResearchPseudonymizer:
    """Turn FHIR message Bundles into research records under one key and one policy."""

    def __init__(
        self,
        key: bytes,
        *,
        shift_days: int = 30,
        birth_precision: str = "year",
        postal_codes_kept: frozenset[str] = frozenset(),
    ) -> None:
        if len(key) < 16:
            raise ValueError("the research key must be at least 16 bytes")
        if shift_days < 1:
            raise ValueError("the date shift must be at least one day")
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        # Pseudonyms and resource ids recur (the same doctors, organisations,
        # patients): computed once per process, within a bound.
        self._cache: dict[tuple[str, ...], str] = {}
        self.shift_days = shift_days
        self.birth_precision = birth_precision
        self.postal_codes_kept = postal_codes_kept

    def __repr__(self) -> str:
        return "<ResearchPseudonymizer>"

    def _mac(self, *parts: str) -> str:
        found = self._cache.get(parts)
        if found is None:
            mac = self._base.copy()
            mac.update("\x1f".join(parts).encode())
            found = mac.hexdigest()
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[parts] = found
        return found

    def pseudonym(self, system: str, value: str) -> str:
        """Return the research pseudonym of one identifier (32 hex characters)."""
        return self._mac("id", system.strip(), value.strip())[:32]

    def patient(self, patient_key: str) -> str:
        """Return the research pseudonym of a patient (the routing key's ordering key in)."""
        return self._mac("patient", patient_key)[:32]

    def shift(self, patient_key: str) -> int:
        """Return the patient's date shift in days: a keyed draw in [-N, +N], never 0."""
        draw = int(self._mac("shift", patient_key)[:8], 16)
        days = draw % (2 * self.shift_days + 1) - self.shift_days
        return days or self.shift_days

    def _new_id(self, old: str) -> str:
        digest = bytearray(bytes.fromhex(self._mac("resource", old)[:32]))
        digest[6] = (digest[6] & 0x0F) | 0x40
        digest[8] = (digest[8] & 0x3F) | 0x80
        text = digest.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def transform(self, bundle: Json, patient_key: str) -> Json:
        """Return the research record of a message Bundle about the patient ``patient_key``.

        ``patient_key`` is the message's patient pseudonym under the routing key
        (the envelope's ordering key): it seeds the patient's research
        pseudonym and date shift, never appears itself.
        """
        days = self.shift(patient_key)
        ids = {
            e["resource"]["id"]: self._new_id(e["resource"]["id"])
            for e in bundle.get("entry", [])
            if isinstance(e.get("resource"), dict) and e["resource"].get("id")
        }
        work = _Walk(self, days, ids)
        out: Json = {
            "resourceType": "Bundle",
            "id": self._new_id(str(bundle.get("id", ""))),
            "type": bundle.get("type", "message"),
            "meta": {
                "tag": [
                    {
                        "system": "urn:carebroker:research",
                        "code": "pseudonymised",
                        "display": "pseudonymised for research (GDPR art. 4(5))",
                    }
                ]
            },
            "identifier": {"system": PSEUDONYM_SYSTEM, "value": self.patient(patient_key)},
        }
        if bundle.get("timestamp"):
            out["timestamp"] = work.date(str(bundle["timestamp"]))
        entries = []
        for entry in bundle.get("entry", []):
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            cleaned = work.resource(resource)
            old_id = str(resource.get("id", ""))
            new_id = ids.get(old_id) or self._new_id(old_id)
            cleaned["id"] = new_id
            entries.append({"fullUrl": f"urn:uuid:{new_id}", "resource": cleaned})
        out["entry"] = entries
        return out


class _Walk:
    """One Bundle's transformation: its patient's shift and its id mapping."""

    def __init__(self, owner: ResearchPseudonymizer, days: int, ids: dict[str, str]) -> None:
        self.owner = owner
        self.days = days
        self.ids = ids

    def resource(self, resource: Json) -> Json:
        kind = str(resource.get("resourceType", ""))
        out = self.element(resource, kind)
        if kind in _PEOPLE:
            out.pop("address", None)
        if "birthDate" in out:  # a relative's too: the year (or month) only
            out["birthDate"] = self.birth_date(str(resource["birthDate"]))
        if kind == "Patient":
            self.patient(resource, out)
        elif kind == "DocumentReference":
            out["content"] = [
                {
                    "attachment": {
                        k: v for k, v in (c.get("attachment") or {}).items() if k == "contentType"
                    }
                }
                for c in resource.get("content", []) or []
            ] or [{"attachment": {"contentType": "application/octet-stream"}}]
            for item in out["content"]:
                if not item["attachment"]:
                    item["attachment"] = {"contentType": "application/octet-stream"}
        elif kind == "Observation" and "valueString" in resource:
            out["dataAbsentReason"] = _MASKED
        if kind != "Patient":
            out.pop("address", None)
        return out

    def patient(self, original: Json, out: Json) -> None:
        out.pop("_birthDate", None)
        kept = []
        for place in original.get("address", []) or []:
            code = _generalise(str(place.get("postalCode", "")), self.owner.postal_codes_kept)
            if code:
                kept.append(
                    {
                        "postalCode": code,
                        **({"country": place["country"]} if place.get("country") else {}),
                    }
                )
        if kept:
            out["address"] = kept

    def value(self, node: Any, kind: str, key: str) -> Any:
        if type(node) is str:
            if key == "reference":
                match = _REFERENCE.match(node)
                return f"urn:uuid:{self.ids.get(match[1], match[1])}" if match else None
            if key == "endpoint":  # a partner's id or URL: a small practice's may name its doctor
                return f"urn:carebroker:research:endpoint:{self.owner.pseudonym('', node)}"
            if node[:4].isdigit() and (_is_date_key(key) or _DATED.match(node)):
                return self.date(node)
            return node
        if type(node) is dict:
            return self.element(node, kind)
        if type(node) is list:
            found = [self.value(item, kind, key) for item in node]
            return [f for f in found if f not in (None, {}, [])]
        return node

    def element(self, node: Json, kind: str) -> Json:
        out: Json = {}
        for key, item in node.items():
            if key not in _SPECIAL:
                cleaned = self.value(item, kind, key)
                if cleaned not in (None, "", [], {}):
                    out[key] = cleaned
                continue
            if key in _REMOVED:
                continue
            if key == "display" and "code" not in node:  # a Reference's display: a name, often
                if "reference" not in node:
                    out[key] = "masked"  # a Reference of a display alone still needs one
                continue
            if key == "extension":
                kept = [
                    self.element(e, kind)
                    for e in item
                    if isinstance(e, dict) and _kept_extension(e)
                ]
                kept = [e for e in kept if e.get("url") and len(e) > 1]
                if kept:
                    out[key] = kept
                continue
            if key in _IDENTIFIERS:
                if isinstance(item, list):
                    out[key] = [self.identifier(i, kind) for i in item if isinstance(i, dict)]
                elif isinstance(item, dict):
                    out[key] = self.identifier(item, kind)
                elif isinstance(item, str):  # MessageHeader.response.identifier: a control id
                    out[key] = self.owner.pseudonym("", item)
                continue
            if key == "text" and isinstance(item, str):
                # A CodeableConcept's text: kept when codes say the same, else masked.
                if not node.get("coding"):
                    out[key] = "masked"
                continue
            if key == "text" and isinstance(item, dict):  # a narrative
                continue
            cleaned = self.value(item, kind, key)
            if cleaned in (None, "", [], {}):
                continue
            out[key] = cleaned
        return out

    def identifier(self, node: Json, kind: str) -> Json:
        value = str(node.get("value", ""))
        system = str(node.get("system", ""))
        out: Json = {"system": PSEUDONYM_SYSTEM}
        if value:
            out["value"] = self.owner.pseudonym(system, value)
        if node.get("type"):
            kept_type = self.element(node["type"], kind)
            if kept_type:
                out["type"] = kept_type
        return out

    def birth_date(self, value: str) -> str:
        """Return a birth date shifted like the patient's other dates, to the year or month."""
        shifted = self.date(value)
        return shifted[:4] if self.owner.birth_precision == "year" else shifted[:7]

    def date(self, value: str) -> str:
        """Shift a FHIR date/dateTime/instant by the patient's days, keeping its precision."""
        match = _DATE.match(value)
        if match is None:
            return value
        year, month, day, rest = match["y"], match["m"], match["d"], match["rest"]
        try:
            start = date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return value
        moved = start + timedelta(days=self.days)
        if day is not None:
            return f"{moved:%Y-%m-%d}{rest or ''}"
        if month is not None:
            return f"{moved:%Y-%m}"
        return f"{moved:%Y}"


@functools.cache
def _is_date_key(key: str) -> bool:
    return key in _DATE_KEYS or key.endswith(("DateTime", "Date", "Time", "Instant", "Period"))


def _kept_extension(extension: Json) -> bool:
    """Keep coded or numeric extensions; drop those carrying text, places, people, documents."""
    if any(k in extension for k in _VALUE_TYPES):
        return False
    url = str(extension.get("url", ""))
    return not url.endswith(
        ("originalText", "patient-birthTime", "humanname-own-name", "humanname-partner-name")
    )


def _generalise(code: str, kept: frozenset[str]) -> str:
    """Return a French postal code generalised to its département, unless kept as is."""
    code = code.strip()
    if code in kept:
        return code
    if not re.fullmatch(r"\d{5}", code):
        return ""
    if code.startswith(("97", "98")):
        return code[:3]
    if code.startswith("20"):  # Corsica: 2A/2B share the 20xxx codes
        return "20"
    return code[:2]
