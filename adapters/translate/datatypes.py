"""HL7 v2 data types as FHIR R4 elements, per the v2-to-FHIR IG data type maps.

Each function reads one v2 value (a field repetition, already split by the
lazy ER7 reader) and returns a FHIR JSON element, or None when the value is
empty. Maps followed (../shared/corpus/mappings/v2-to-fhir/datatypes/):
CWE/CE[CodeableConcept], CX[Identifier], EI[Identifier], HD[uri],
XPN[HumanName], XCN[Practitioner], XON[Organization], XAD[Address],
XTN[ContactPoint], DTM[dateTime], NM/CWE[Quantity], SN[Quantity|Range|Ratio],
ED[Attachment].

Decisions where the IG leaves a choice:

- An assigning authority (CX.4, XCN.9, EI.2-4) becomes ``Identifier.system``:
  ``urn:oid:`` + its universal id when that is an ISO OID (so INS, RPPS and
  FINESS keep their national OIDs), ``urn:uuid:`` for a UUID, else the
  namespace id itself (HD[uri]: ``$value = HD.1``, spaces percent-encoded so
  the value stays a FHIR ``uri``). When both namespace and OID are given, the
  namespace is kept in ``assigner.display`` so FHIR -> v2 can write it back.
- A coding system name (CWE.3) maps to its FHIR URI (``LN`` -> LOINC ...);
  a system carebroker does not know becomes ``urn:carebroker:v2-0396:<name>``,
  which is reversible, rather than being dropped.
- Decimals are kept as :class:`decimal.Decimal` so ``4.10`` stays ``4.10``
  (significant figures are clinical information); ``dumps`` in
  :mod:`adapters.translate.bundle` writes them as JSON numbers verbatim.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, overload
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from adapters.hl7v2.er7 import NULL, Encoding, Segment, unescape
from adapters.translate import concept_maps as maps
from adapters.translate.vocabulary import (
    LOCAL_SYSTEM_PREFIX,
    V2_0203,
    V2_0301,
    code_system_uri,
    mime_type,
)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Value:
    """One field repetition: components and subcomponents decoded on demand (1-based)."""

    raw: str
    enc: Encoding

    def __bool__(self) -> bool:
        return bool(self.raw) and self.raw != NULL

    def c(self, n: int) -> str:
        """Return component ``n`` decoded (a composite component reads as its first part)."""
        parts = self.raw.split(self.enc.component)
        if not 0 < n <= len(parts):
            return ""
        part = parts[n - 1]
        if self.enc.subcomponent in part:
            part = part.split(self.enc.subcomponent, 1)[0]
        return unescape(part, self.enc).strip()

    def s(self, n: int, m: int) -> str:
        """Return subcomponent ``m`` of component ``n``, decoded."""
        parts = self.raw.split(self.enc.component)
        if not 0 < n <= len(parts):
            return ""
        subs = parts[n - 1].split(self.enc.subcomponent)
        return unescape(subs[m - 1], self.enc).strip() if 0 < m <= len(subs) else ""

    def has(self, n: int) -> bool:
        """Tell whether component ``n`` holds anything."""
        parts = self.raw.split(self.enc.component)
        return 0 < n <= len(parts) and bool(parts[n - 1].strip())

    def text(self) -> str:
        """Return the whole repetition decoded, delimiters included (for free text)."""
        return unescape(self.raw, self.enc)


def values(segment: Segment | None, n: int) -> list[Value]:
    """Return the non-empty repetitions of field ``n``."""
    if segment is None:
        return []
    out = []
    for raw in segment.repetitions(n):
        value = Value(raw, segment.enc)
        if value:
            out.append(value)
    return out


def first(segment: Segment | None, n: int) -> Value | None:
    """Return the first non-empty repetition of field ``n``, or None."""
    found = values(segment, n)
    return found[0] if found else None


def text(segment: Segment | None, n: int) -> str:
    """Return field ``n`` (first repetition, first component) decoded and stripped."""
    value = first(segment, n)
    return value.c(1) if value else ""


# --- codes ---------------------------------------------------------------------


def coding(code: str, display: str = "", system_name: str = "", version: str = "") -> Json:
    """Return a Coding; ``system_name`` is a v2 coding system name (table 0396)."""
    return prune(
        {
            "system": code_system_uri(system_name) if system_name else None,
            "version": version,
            "code": clean_code(code),
            "display": display,
        }
    )


def codeable(value: Value | None, table: str = "") -> Json | None:
    """Return a CodeableConcept from a CWE/CE/CNE/IS/ID value (CWE[CodeableConcept]).

    ``table`` names the HL7 table (``HL70078``) used when CWE.3 is empty.
    """
    if not value:
        return None
    codings = []
    oid = value.c(14)
    for code, display, system, version in ((1, 2, 3, 7), (4, 5, 6, 8), (10, 11, 12, 13)):
        if value.c(code) or value.c(display):
            name = value.c(system) or (table if code == 1 else "")
            item = coding(value.c(code), value.c(display), name, value.c(version))
            if code == 1 and oid:
                item["system"] = f"urn:oid:{oid}"
            if item.get("code") or item.get("display"):
                codings.append(item)
    return prune({"coding": codings, "text": value.c(9)}) or None


def mapped_coding(code: str, table: maps.ConceptMap, v2_table: str = "") -> Json | None:
    """Return the Coding a concept map gives for a v2 code, else the v2 code itself."""
    if not code:
        return None
    target = table.get(code)
    if target is None:
        return coding(code, "", v2_table)
    return prune({"system": target[2], "code": target[0], "display": target[1]})


def mapped_code(code: str, table: maps.ConceptMap) -> str:
    """Return the FHIR code a concept map gives for a v2 code, or ""."""
    target = table.get(code)
    return target[0] if target else ""


def clean_code(code: str) -> str:
    """Return a value fit for a FHIR ``code`` (no leading/trailing or doubled blanks)."""
    return " ".join(code.split())


def alternate_code(code: str, table: str) -> Json:
    """Return the alternate-codes extension keeping a v2 code a FHIR code cannot carry."""
    return {
        "url": "http://hl7.org/fhir/StructureDefinition/alternate-codes",
        "valueCodeableConcept": {"coding": [coding(code, "", table)]},
    }


# --- identifiers -----------------------------------------------------------------


def hd_system(namespace: str, universal_id: str, id_type: str) -> str:
    """Return the ``Identifier.system`` an HD (assigning authority) names (HD[uri]).

    The universal id wins over the namespace, as it does for routing
    (:func:`adapters.hl7v2.extract.hd_authority`): ``urn:oid:`` for an ISO OID,
    ``urn:uuid:`` for a UUID, the id itself for other types (CLIA, DNS, local).
    """
    kind = id_type.upper()
    if universal_id and (kind == "ISO" or (not kind and _is_oid(universal_id))):
        return f"urn:oid:{universal_id}"
    if universal_id and kind in ("UUID", "GUID"):
        return f"urn:uuid:{universal_id.lower()}"
    if universal_id:
        return universal_id.replace(" ", "%20")
    if namespace:
        return quote(namespace, safe=":/.-_~@&=+$,;")
    return ""


def system_to_hd(system: str, assigner: str = "") -> tuple[str, str, str]:
    """Return (namespace, universal id, id type) for an ``Identifier.system``: the reverse.

    ``assigner`` is ``Identifier.assigner.display``, where the namespace of an
    HD that had both is kept; its presence says the system is a universal id.
    """
    if system.startswith("urn:oid:"):
        return assigner, system[8:], "ISO"
    if system.startswith("urn:uuid:"):
        return assigner, system[9:], "UUID"
    if "://" in system:
        return assigner, system, "URI"
    if assigner:
        return assigner, system.replace("%20", " "), ""
    return unquote(system), "", ""


def _is_oid(value: str) -> bool:
    return bool(re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", value))


def identifier_type(code: str) -> Json | None:
    """Return ``Identifier.type`` for a v2 identifier type code (table 0203)."""
    code = clean_code(code)
    if not code:
        return None
    if code in maps.IDENTIFIER_TYPE:
        target = maps.IDENTIFIER_TYPE[code]
        return {"coding": [prune({"system": target[2], "code": target[0], "display": target[1]})]}
    if code in _FR_0203:
        return {"coding": [{"system": _FR_0203_SYSTEM, "code": code}]}
    return {"coding": [{"code": code}]}


_FR_0203_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
# Interop'Santé table 0203 additions (FR Core, domain-requirements §3.2).
_FR_0203 = frozenset(
    {
        "INS-NIR",
        "INS-NIA",
        "INS-NIR-TEST",
        "INS-NIR-DEMO",
        "INS-C",
        "RPPS",
        "ADELI",
        "RPPSRG",
        "IDNPS",
        "FINEJ",
        "FINEG",
        "SIREN",
        "SIRET",
        "IDNST",
        "INS",
    }
)


def identifier_cx(value: Value | None) -> Json | None:
    """Return an Identifier from a CX (CX[Identifier])."""
    if not value or not value.c(1):
        return None
    namespace, universal, kind = value.s(4, 1), value.s(4, 2), value.s(4, 3)
    system = hd_system(namespace, universal, kind)
    result: Json = {
        "type": identifier_type(value.c(5)),
        "system": system,
        "value": value.c(1),
        "period": prune({"start": dtm(value.c(7)), "end": dtm(value.c(8))}),
    }
    if namespace and universal:
        result["assigner"] = {"display": namespace}
    return prune(result)


def identifier_ei(value: Value | None, type_code: str = "") -> Json | None:
    """Return an Identifier from an EI (entity id, namespace, universal id, type)."""
    if not value or not value.c(1):
        return None
    namespace, universal = value.c(2), value.c(3)
    result: Json = {
        "type": {"coding": [{"system": V2_0203, "code": type_code}]} if type_code else None,
        "system": hd_system(namespace, universal, value.c(4)),
        "value": value.c(1),
    }
    if namespace and universal:
        result["assigner"] = {"display": namespace}
    return prune(result)


def identifier_value(value: str, type_code: str = "", system: str = "") -> Json | None:
    """Return a plain Identifier for an ST value (ST[Identifier])."""
    if not value:
        return None
    return prune(
        {
            "type": {"coding": [{"system": V2_0203, "code": type_code}]} if type_code else None,
            "system": system,
            "value": value,
        }
    )


# --- names, addresses, telecom --------------------------------------------------


def _name_parts(value: Value, family: int, name_type: int) -> Json:
    """Read the name components XPN and XCN share, from the family name component on."""
    return {
        "family": value.s(family, 1) or value.c(family),
        "given": [g for g in (value.c(family + 1), value.c(family + 2)) if g],
        "suffix": [s for s in (value.c(family + 3), value.c(family + 5)) if s],
        "prefix": [value.c(family + 4)] if value.c(family + 4) else [],
        "use": mapped_code(value.c(name_type), maps.NAME_TYPE),
    }


def human_name(value: Value | None) -> Json | None:
    """Return a HumanName from an XPN (XPN[HumanName])."""
    if not value:
        return None
    name = _name_parts(value, 1, 7)
    name["period"] = prune({"start": dtm(value.c(12)), "end": dtm(value.c(13))}) or prune(
        {"start": dtm(value.s(10, 1)), "end": dtm(value.s(10, 2))}
    )
    return prune(name) or None


def practitioner_name(value: Value) -> Json | None:
    """Return a HumanName from the name part of an XCN (components 2-7, 10)."""
    return prune(_name_parts(value, 2, 10)) or None


def xcn_identifier(value: Value) -> Json | None:
    """Return the Identifier of an XCN (components 1, 9 and 13)."""
    if not value.c(1):
        return None
    namespace, universal = value.s(9, 1), value.s(9, 2)
    result: Json = {
        "type": identifier_type(value.c(13)),
        "system": hd_system(namespace, universal, value.s(9, 3)),
        "value": value.c(1),
    }
    if namespace and universal:
        result["assigner"] = {"display": namespace}
    return prune(result)


def practitioner(value: Value | None) -> Json | None:
    """Return a Practitioner resource from an XCN (XCN[Practitioner])."""
    if not value:
        return None
    ident = xcn_identifier(value)
    name = practitioner_name(value)
    if ident is None and name is None:
        return None
    return prune(
        {"resourceType": "Practitioner", "identifier": [ident] if ident else [], "name": [name]}
    )


def organization(value: Value | None) -> Json | None:
    """Return an Organization resource from an XON (XON[Organization])."""
    if not value:
        return None
    ident_value = value.c(10) or value.c(3)
    ident = None
    if ident_value:
        namespace, universal = value.s(6, 1), value.s(6, 2)
        ident = prune(
            {
                "type": identifier_type(value.c(7)),
                "system": hd_system(namespace, universal, value.s(6, 3)),
                "value": ident_value,
            }
        )
    name = value.c(1)
    if not name and ident is None:
        return None
    return prune(
        {"resourceType": "Organization", "identifier": [ident] if ident else [], "name": name}
    )


def organization_hd(value: Value | None) -> Json | None:
    """Return an Organization resource from an HD (HD[Organization]), e.g. MSH-4.

    HD.1 is ``identifier[1].value``; HD.2 is ``identifier[2]`` as a URI
    (``urn:oid:`` for ISO, ``urn:uuid:`` for UUID) typed by HD.3 (table 0301).
    """
    if not value:
        return None
    namespace, universal, kind = value.c(1), value.c(2), value.c(3)
    if not namespace and not universal:
        return None
    identifiers: list[Json] = []
    if namespace:
        identifiers.append({"value": namespace})
    if universal:
        uri = hd_system("", universal, kind)
        identifiers.append(
            prune(
                {
                    "type": {"coding": [{"system": V2_0301, "code": kind.upper()}]}
                    if kind
                    else None,
                    "system": "urn:ietf:rfc:3986" if uri.startswith("urn:") else None,
                    "value": uri,
                }
            )
        )
    return prune({"resourceType": "Organization", "identifier": identifiers, "name": namespace})


def address(value: Value | None) -> Json | None:
    """Return an Address from an XAD (XAD[Address])."""
    if not value:
        return None
    kind = value.c(7)
    return (
        prune(
            {
                "line": [x for x in (value.s(1, 1) or value.c(1), value.c(2)) if x],
                "city": value.c(3),
                "state": value.c(4),
                "postalCode": value.c(5),
                "country": value.c(6),
                "use": mapped_code(kind, maps.ADDRESS_USE),
                "type": mapped_code(kind, maps.ADDRESS_TYPE),
                "district": value.c(9),
            }
        )
        or None
    )


def telecom(value: Value | None, default_use: str = "") -> Json | None:
    """Return a ContactPoint from an XTN (XTN[ContactPoint])."""
    if not value:
        return None
    equipment = value.c(3)
    number = value.c(12)
    if not number and (value.c(6) or value.c(7)):
        number = " ".join(
            x for x in (f"+{value.c(5)}" if value.c(5) else "", value.c(6), value.c(7)) if x
        )
        if value.c(8):
            number = f"{number} x{value.c(8)}"
    number = value.c(4) or number or value.c(1)
    if not number:
        return None
    system = mapped_code(equipment, maps.TELECOM_EQUIPMENT)
    if not system:
        system = "email" if equipment.upper() in ("INTERNET", "X.400") or "@" in number else ""
    return prune(
        {
            "system": system or ("phone" if not equipment else "other"),
            "value": number,
            "use": mapped_code(value.c(2), maps.TELECOM_USE) or default_use,
        }
    )


# --- dates and times (DTM[dateTime]) --------------------------------------------

_DTM = re.compile(
    r"^(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})"
    r"(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?(?P<tz>[+-]\d{4})?$"
)


class Clock:
    """How to read a v2 time without an offset: the sender's zone (HL7 v2.5.1 §2.A.22).

    HL7 v2 says a time without an offset is in the sender's local zone. The
    best knowledge of that zone is, in order: an IANA zone configured for the
    sender (``Europe/Paris``; daylight saving handled), the offset of MSH-7,
    else UTC; the last case is reported as a warning by the converter.
    """

    def __init__(self, zone: str | None = None, msh7_offset: str = "") -> None:
        self.zone = ZoneInfo(zone) if zone and "/" in zone else None
        self.fixed = _offset(zone) if zone and "/" not in zone else _offset(msh7_offset)
        self.guessed = False

    def offset_for(self, moment: datetime) -> str:
        """Return the ``+hh:mm`` offset of a naive local time."""
        if self.zone is not None:
            delta = moment.replace(tzinfo=self.zone).utcoffset() or timedelta(0)
            return _format_offset(delta)
        if self.fixed is not None:
            return self.fixed
        self.guessed = True
        return "+00:00"


def _offset(value: str) -> str | None:
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", value.strip()) if value else None
    return f"{match[1]}{match[2]}:{match[3]}" if match else None


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def dtm(value: str, clock: Clock | None = None) -> str | None:
    """Return a FHIR date or dateTime for a v2 DTM/TS/DT, keeping its precision.

    ``2014``, ``201410`` and ``20141006`` stay a year, month and date. A value
    with a time keeps its offset; FHIR requires seconds and an offset once a
    time is given, so minutes-only gain ``:00`` and a missing offset comes
    from ``clock``. An invalid value returns None (the caller reports it).
    """
    value = value.strip().split("^")[0]
    if not value:
        return None
    match = _DTM.match(value)
    if match is None:
        return None
    y, mo, d, h = match["y"], match["mo"], match["d"], match["h"]
    try:
        datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(match["mi"] or 0), tzinfo=UTC)
    except ValueError:
        return None
    if mo is None:
        return y
    if d is None:
        return f"{y}-{mo}"
    if h is None:
        return f"{y}-{mo}-{d}"
    mi, s = match["mi"] or "00", match["s"] or "00"
    if int(s) > 59:
        return None
    fraction = f".{match['f']}" if match["f"] else ""
    tz = match["tz"]
    if tz:
        offset = f"{tz[:3]}:{tz[3:]}"
    else:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))  # noqa: DTZ001 - naive on purpose: its zone is what the clock decides
        offset = (clock or Clock()).offset_for(local)
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{fraction}{offset}"


def fhir_to_dtm(value: str) -> str:
    """Return the v2 DTM for a FHIR date/dateTime/instant, keeping precision and offset."""
    match = re.fullmatch(
        r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
        r"(Z|[+-]\d{2}:\d{2})?)?)?)?",
        value.strip(),
    )
    if match is None:
        return ""
    y, mo, d, h, mi, s, fraction, tz = match.groups()
    out = y + (mo or "") + (d or "") + (h or "") + (mi or "") + (s or "")
    if fraction:
        out += fraction[:5]
    if tz:
        out += "+0000" if tz == "Z" else tz.replace(":", "")
    return out


def instant(value: str | None) -> str | None:
    """Return ``value`` if it is precise enough for a FHIR ``instant`` (seconds, offset)."""
    if value and re.fullmatch(r".+T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        return value
    return None


def now_instant() -> str:
    """Return the current time as a FHIR instant (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- quantities and values --------------------------------------------------------


def decimal(value: str) -> Decimal | None:
    """Return a v2 NM as a Decimal keeping its digits, or None when it is not a number."""
    value = value.strip()
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value):
        return None
    try:
        number = Decimal(value.lstrip("+"))
    except InvalidOperation:
        return None
    if value.startswith("."):
        number = Decimal("0" + value)
    return number


def quantity(number: Decimal, units: Value | None) -> Json:
    """Return a Quantity: the value and OBX-6 units (CWE[Quantity]: UCUM when coded so)."""
    result: Json = {"value": number}
    if units:
        code, name, system = units.c(1), units.c(2), units.c(3)
        result["unit"] = name or code
        if code:
            result["code"] = clean_code(code)
            if system:
                result["system"] = code_system_uri(system)
    return prune(result)


def structured_numeric(
    value: Value, units: Value | None
) -> tuple[str, Json | str] | tuple[None, None]:
    """Return (FHIR value[x] name, value) for an SN (SN[Quantity|Range|Ratio]).

    ``<>`` comparators, and separators other than ``-``, ``:`` and ``/``, have
    no FHIR structure: they become ``valueString`` as the IG says.
    """
    comparator, separator = value.c(1), value.c(3)
    first_number, second_number = decimal(value.c(2)), decimal(value.c(4))
    original = " ".join(x for x in (value.c(1), value.c(2), value.c(3), value.c(4)) if x)
    if comparator == "<>" or (value.c(2) and first_number is None):
        return "valueString", original
    if separator in (":", "/") and first_number is not None and second_number is not None:
        return "valueRatio", {
            "numerator": quantity(first_number, units),
            "denominator": quantity(second_number, None),
        }
    if separator == "-" and first_number is not None and second_number is not None:
        return "valueRange", {
            "low": quantity(first_number, units),
            "high": quantity(second_number, units),
        }
    if first_number is not None and not separator:
        result = quantity(first_number, units)
        if comparator in ("<", ">", "<=", ">="):
            result["comparator"] = comparator
        elif comparator not in ("", "="):
            return "valueString", original
        return "valueQuantity", result
    if original:
        return "valueString", original
    return None, None


def attachment(value: Value) -> Json | None:
    """Return an Attachment from an ED (ED[Attachment]): embedded documents, base64 kept."""
    type_of_data, subtype, encoding, data = value.c(2), value.c(3), value.c(4), value.c(5)
    if not data:
        return None
    kind = encoding.upper()
    if kind in ("BASE64", "B64"):
        payload = re.sub(r"\s+", "", data)
    elif kind == "HEX":
        try:
            payload = base64.b64encode(binascii.unhexlify(re.sub(r"\s+", "", data))).decode()
        except (binascii.Error, ValueError):
            return None
    else:  # "A" (ASCII) or none: the text itself
        payload = base64.b64encode(data.encode("utf-8")).decode()
    return prune({"contentType": mime_type(type_of_data, subtype), "data": payload})


def reference_pointer(value: Value) -> Json | None:
    """Return an Attachment pointing at an RP (reference pointer) value."""
    if not value.c(1):
        return None
    return prune({"url": value.c(1), "contentType": mime_type(value.c(3), value.c(4))})


# --- helpers ---------------------------------------------------------------------


@overload
def prune(value: Json) -> Json: ...


@overload
def prune(value: list[Any]) -> list[Any]: ...


@overload
def prune(value: Any) -> Any: ...


def prune(value: Any) -> Any:
    """Drop empty strings, None, empty lists and empty objects, recursively.

    FHIR forbids empty elements; building with plain dicts and pruning once is
    cheaper and clearer than a condition around every assignment. (Written
    with exact type checks: it runs on every element of every Bundle.)
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                item = prune(item)
                if item:
                    out[key] = item
            elif item is not None and item != "":
                out[key] = item
        return out
    if kind is list:
        kept = []
        for item in value:
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                item = prune(item)
                if item:
                    kept.append(item)
            elif item is not None and item != "":
                kept.append(item)
        return kept
    return value


def is_local_system(system: str) -> bool:
    """Tell whether a Coding.system is carebroker's stand-in for an unknown v2 coding system."""
    return system.startswith(LOCAL_SYSTEM_PREFIX)
