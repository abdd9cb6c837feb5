"""HL7 v2 data types as FHIR R4 elements, per the v2-to-FHIR IG data type maps.

Each function reads one v2 value (a field repetition, already split by the
lazy ER7 reader) and returns a FHIR JSON element, or None when the value is
empty. Maps followed (../shared/corpus/mappings/v2-to-fhir/datatypes/):
CWE/CE/CNE[CodeableConcept], CWE[Coding], CWE[string], CX[Identifier],
EI[Identifier], DLN[Identifier], HD[uri], HD[Identifier], XPN[HumanName],
FN[HumanName], XCN[Practitioner] (name and identifier), XAD[Address],
SAD[Address], XTN[ContactPoint], DR[Period], DTM[dateTime], NM/CWE[Quantity],
CQ[Quantity], SN[Quantity|Range|Ratio], NR[Range], ED[Attachment],
RP[Attachment]. Data types that make a resource of their own (HD[Organization],
XON[Organization], XCN[Practitioner], PL[Location]) are in
:mod:`adapters.translate.parties`, which needs the Bundle being built.

Decisions where the IG leaves a choice:

- An assigning authority (CX.4, XCN.9, EI.2-4) becomes ``Identifier.system``:
  ``urn:oid:`` + its universal id when that is an ISO OID (so INS, RPPS and
  FINESS keep their national OIDs), ``urn:uuid:`` for a UUID, else the
  namespace id itself (HD[uri]: ``$value = HD.1``, spaces percent-encoded so
  the value stays a FHIR ``uri``).
- A coding system name (CWE.3) maps to its FHIR URI (``LN`` -> LOINC ...);
  a system carebroker does not know becomes ``urn:carebroker:v2-0396:<name>``,
  which is reversible, rather than being dropped.
- A vocabulary the IG maps (a concept map) replaces the v2 code by the FHIR
  one; a code the map does not list is kept as sent (with the v2 table as
  its system), never dropped.
- Decimals are kept as :class:`decimal.Decimal` so ``4.10`` stays ``4.10``
  (significant figures are clinical information); ``dumps`` in
  :mod:`adapters.translate.bundle` writes them as JSON numbers verbatim.

Written for speed as well as clarity: a field repetition is split into its
components once (:class:`Value`), escape sequences are resolved only where
the escape character occurs, and nothing here parses a table at run time.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, overload
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from adapters.hl7v2.er7 import NULL, Encoding, Segment, unescape
from adapters.translate import concept_maps as maps
from adapters.translate.vocabulary import (
    BCP_47,
    LANGUAGES,
    LOCAL_SYSTEM_PREFIX,
    V2_0203,
    code_system_uri,
    mime_type,
)

Json = dict[str, Any]
ORIGINAL_TEXT_URL = "http://hl7.org/fhir/StructureDefinition/originalText"


class Value:
    """One field repetition: components split once, decoded on demand (1-based)."""

    __slots__ = ("_parts", "enc", "raw")

    def __init__(self, raw: str, enc: Encoding) -> None:
        self.raw = raw
        self.enc = enc
        self._parts: list[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.raw) and self.raw != NULL

    def parts(self) -> list[str]:
        """Return the raw components."""
        parts = self._parts
        if parts is None:
            parts = self._parts = self.raw.split(self.enc.component)
        return parts

    def c(self, n: int) -> str:
        """Return component ``n`` decoded (a composite component reads as its first part)."""
        parts = self.parts()
        if n > len(parts):
            return ""
        part = parts[n - 1]
        if not part:
            return ""
        enc = self.enc
        if enc.subcomponent in part:
            part = part.split(enc.subcomponent, 1)[0]
        if enc.escape in part:
            part = unescape(part, enc)
        return "" if part == NULL else part.strip()

    def s(self, n: int, m: int) -> str:
        """Return subcomponent ``m`` of component ``n``, decoded."""
        parts = self.parts()
        if n > len(parts):
            return ""
        subs = parts[n - 1].split(self.enc.subcomponent)
        if m > len(subs):
            return ""
        sub = subs[m - 1]
        if self.enc.escape in sub:
            sub = unescape(sub, self.enc)
        return "" if sub == NULL else sub.strip()

    def subs(self, n: int) -> list[str]:
        """Return the decoded subcomponents of component ``n``."""
        parts = self.parts()
        if n > len(parts) or not parts[n - 1]:
            return []
        enc = self.enc
        return [
            (unescape(s, enc) if enc.escape in s else s).strip()
            for s in parts[n - 1].split(enc.subcomponent)
        ]

    def has(self, n: int) -> bool:
        """Tell whether component ``n`` holds anything."""
        parts = self.parts()
        return n <= len(parts) and bool(parts[n - 1].strip())

    def component(self, n: int) -> Value | None:
        """Return component ``n`` as a value of its own (subcomponents become components)."""
        parts = self.parts()
        if n > len(parts) or not parts[n - 1].strip():
            return None
        enc = self.enc
        inner = Encoding(enc.field, enc.subcomponent, enc.repetition, enc.escape, "\x1f")
        return Value(parts[n - 1], inner)

    def text(self) -> str:
        """Return the whole repetition decoded, delimiters included (for free text)."""
        return unescape(self.raw, self.enc)

    def flat(self, joiner: str = "--") -> str:
        """Return every non-empty component and subcomponent joined (for a description)."""
        out = []
        for part in self.parts():
            for sub in part.split(self.enc.subcomponent):
                if sub.strip():
                    out.append(unescape(sub, self.enc).strip())
        return joiner.join(out)


def values(segment: Segment | None, n: int) -> list[Value]:
    """Return the non-empty repetitions of field ``n``."""
    if segment is None:
        return []
    fields = segment.fields
    if n >= len(fields) or not fields[n]:
        return []
    raw = fields[n]
    enc = segment.enc
    if segment.name == "MSH" and n <= 2:
        return [Value(raw, enc)]
    if enc.repetition not in raw:
        return [Value(raw, enc)] if raw != NULL else []
    return [Value(r, enc) for r in raw.split(enc.repetition) if r and r != NULL]


def first(segment: Segment | None, n: int) -> Value | None:
    """Return the first non-empty repetition of field ``n``, or None."""
    if segment is None:
        return None
    fields = segment.fields
    if n >= len(fields):
        return None
    raw = fields[n]
    if not raw:
        return None
    enc = segment.enc
    if enc.repetition in raw and not (segment.name == "MSH" and n <= 2):
        for rep in raw.split(enc.repetition):
            if rep and rep != NULL:
                return Value(rep, enc)
        return None
    return Value(raw, enc) if raw != NULL else None


def text(segment: Segment | None, n: int) -> str:
    """Return field ``n`` (first repetition, first component) decoded and stripped."""
    if segment is None:
        return ""
    fields = segment.fields
    if n >= len(fields):
        return ""
    raw = fields[n]
    if not raw:
        return ""
    enc = segment.enc
    if segment.name == "MSH" and n <= 2:
        return raw
    if enc.repetition in raw:
        value = first(segment, n)
        return value.c(1) if value else ""
    if enc.component in raw:
        raw = raw.split(enc.component, 1)[0]
    if enc.subcomponent in raw:
        raw = raw.split(enc.subcomponent, 1)[0]
    if raw == NULL:
        return ""
    if enc.escape in raw:
        raw = unescape(raw, enc)
    return raw.strip()


def whole(segment: Segment | None, n: int) -> str:
    """Return field ``n`` (first repetition) decoded whole, delimiters kept as text."""
    value = first(segment, n)
    return value.text().strip() if value else ""


# --- codes ---------------------------------------------------------------------


def coding(code: str, display: str = "", system_name: str = "", version: str = "") -> Json:
    """Return a Coding; ``system_name`` is a v2 coding system name (table 0396)."""
    result: Json = {}
    if system_name:
        result["system"] = code_system_uri(system_name)
    if version:
        result["version"] = version
    code = clean_code(code)
    if code:
        result["code"] = code
    if display:
        result["display"] = display
    return result


def _mapped(code: str, table: maps.ConceptMap) -> Json | None:
    target = table.get(code)
    if target is None:
        return None
    result: Json = {"code": target[0]}
    if target[1]:
        result["display"] = target[1]
    if target[2]:
        result["system"] = target[2]
    return result


def codeable(
    value: Value | None, table: str = "", vocabulary: maps.ConceptMap | None = None
) -> Json | None:
    """Return a CodeableConcept from a CWE/CE/CNE/IS/ID value (CWE[CodeableConcept]).

    ``table`` names the HL7 table (``HL70078``) used when CWE.3 is empty;
    ``vocabulary`` is the IG concept map for the field, applied to each coding.
    """
    if not value:
        return None
    codings = []
    parts = value.parts()
    count = len(parts)
    for code_n, display_n, system_n, version_n in ((1, 2, 3, 7), (4, 5, 6, 8), (10, 11, 12, 13)):
        if code_n > count:
            break
        code, display = value.c(code_n), value.c(display_n)
        if not code and not display:
            continue
        name = value.c(system_n) or (table if code_n == 1 and code else "")
        item = coding(code, display, name)
        if code_n == 1 and count >= 14 and _is_oid(value.c(14)):
            item["system"] = f"urn:oid:{value.c(14)}"
        version = value.c(version_n)
        if version:
            item["version"] = version
        mapped = _mapped(code, vocabulary) if vocabulary is not None and code else None
        if mapped is not None:
            # The IG's concept map gives the FHIR code; the v2 code stays beside it
            # as a second coding (a translation keeps its source).
            if version:
                mapped["version"] = version
            codings.append(mapped)
            if mapped.get("system") == item.get("system") and mapped.get("code") == item.get(
                "code"
            ):
                continue
        if item.get("code") or item.get("display"):
            codings.append(item)
    result: Json = {}
    if codings:
        result["coding"] = codings
    if count >= 9:
        label = value.c(9)
        if label:
            result["text"] = label
    return result or None


def language(value: Value | None) -> Json | None:
    """Return a language as a CodeableConcept (CWE[CodeableConcept], PrimaryLanguage).

    ISO 639 codes become BCP 47 tags (the IG's target system); the code as
    sent stays beside the tag.
    """
    concept = codeable(value, "HL70296")
    if concept is None or value is None:
        return None
    codings = []
    for item in concept.get("coding", []):
        code = item.get("code", "")
        found = LANGUAGES.get(code.lower())
        if found is not None:
            translated: Json = {"code": found[0], "display": found[1], "system": BCP_47}
            if item.get("version"):
                translated["version"] = item["version"]
            codings.append(translated)
        elif len(code) == 2 or (len(code) == 5 and code[2] == "-"):
            codings.append({**item, "system": BCP_47})
            continue
        codings.append(item)
    concept["coding"] = codings
    return concept


def codeable_code(
    code: str, table: str = "", vocabulary: maps.ConceptMap | None = None
) -> Json | None:
    """Return a CodeableConcept for a bare ID/IS code (ID[CodeableConcept])."""
    code = clean_code(code)
    if not code:
        return None
    original = coding(code, "", table)
    item = _mapped(code, vocabulary) if vocabulary is not None else None
    if item is None or (item.get("system"), item.get("code")) == (original.get("system"), code):
        return {"coding": [item or original]}
    return {"coding": [item, original]}


def first_coding(
    value: Value | None, table: str = "", vocabulary: maps.ConceptMap | None = None
) -> Json | None:
    """Return the first Coding of a CWE (CWE[Coding])."""
    concept = codeable(value, table, vocabulary)
    codings = concept.get("coding") if concept else None
    return codings[0] if codings else None


def cwe_string(value: Value | None) -> str:
    """Return the text of a CWE (CWE[string]): CWE.9, else CWE.2, else CWE.1."""
    if not value:
        return ""
    return value.c(9) or value.c(2) or value.c(1)


def mapped_coding(code: str, table: maps.ConceptMap, v2_table: str = "") -> Json | None:
    """Return the Coding a concept map gives for a v2 code, else the v2 code itself."""
    if not code:
        return None
    return _mapped(code, table) or coding(code, "", v2_table)


def mapped_code(code: str, table: maps.ConceptMap) -> str:
    """Return the FHIR code a concept map gives for a v2 code, or ""."""
    target = table.get(code)
    return target[0] if target else ""


def clean_code(code: str) -> str:
    """Return a value fit for a FHIR ``code`` (no leading/trailing or doubled blanks)."""
    if "  " in code or code[:1].isspace() or code[-1:].isspace():
        return " ".join(code.split())
    return code


def alternate_code(code: str, table: str) -> Json:
    """Return the alternate-codes extension keeping a v2 code a FHIR code cannot carry."""
    return {
        "url": "http://hl7.org/fhir/StructureDefinition/alternate-codes",
        "valueCodeableConcept": {"coding": [coding(code, "", table)]},
    }


def yes_no(code: str) -> bool | None:
    """Return a FHIR boolean for a v2 Yes/No indicator (table 0136), or None."""
    code = code.upper()
    if code == "Y":
        return True
    if code == "N":
        return False
    return None


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


def hd_uri(value: Value | None) -> str:
    """Return the URI an HD value names (HD[uri]); see :func:`hd_system`."""
    if not value:
        return ""
    return hd_system(value.c(1), value.c(2), value.c(3))


def system_to_hd(system: str, assigner: str = "") -> tuple[str, str, str]:
    """Return (namespace, universal id, id type) for an ``Identifier.system``: the reverse.

    ``assigner`` is the namespace of the assigning authority when known (the
    assigner Organization's first identifier); its presence says the system
    is a universal id.
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


def universal_id(value: str, kind: str) -> str:
    """Return HD.2 as a URI when HD.3 says what it is (ISO, UUID), else as written."""
    upper = kind.upper()
    if upper == "ISO":
        return f"urn:oid:{value}"
    if upper in ("UUID", "GUID"):
        return f"urn:uuid:{value.lower()}"
    return value


# THO v2-0301 displays (terminology.hl7.org CodeSystem v2-0301), what a FHIR
# validator checks Coding.display against.
UNIVERSAL_ID_DISPLAY = {
    "CLIA": "Clinical Laboratory Improvement Amendments. Allows for the ability to "
    "designate organization identifier as a \u201cCLIA\u201d assigned number (for labs)",
    "CLIP": "Clinical laboratory Improvement Program. Allows for the ability to designate "
    "organization identifier as a \u201cCLIP\u201d assigned number (for labs).  Used by US "
    "Department of Defense.",
    "DNS": "An Internet host name, in accordance with RFC 1035; or an IP address. Either in "
    "ASCII or as integers, with periods between components (\u201cdotted\u201d notation).",
    "EUI64": "IEEE 64-bit Extended Unique Identifier is comprised of a 24-bit company id "
    "and a 40-bit instance id.",
    "GUID": "The DCE Universal Unique Identifier, in accordance with RFC 4122. Recommended "
    "format is 32 hexadecimal digits separated by hyphens, in the digit grouping 8-4-4-4-12",
    "HCD": "The CEN Healthcare Coding Scheme Designator",
    "HL7": "Reserved for future HL7 registration schemes",
    "ISO": "An International Standards Organization Object Identifier (OID), in accordance "
    "with ISO/IEC 8824. Formatted as decimal digits separated by periods; recommended "
    "limit of 64 characters",
    "L": "Local",
    "M": "Local",
    "N": "Local",
    "Random": "Usually a base64 encoded string of random bits.",
    "URI": "Uniform Resource Identifier",
    "UUID": "The DCE Universal Unique Identifier",
    "x400": "An X.400 MHS format identifier",
    "x500": "An X.500 directory name",
}
V2_0301 = "http://terminology.hl7.org/CodeSystem/v2-0301"


def universal_id_type(kind: str) -> Json | None:
    """Return ``Identifier.type`` for HD.3 (ID[CodeableConcept-UniversalID], table 0301)."""
    if not kind:
        return None
    item: Json = {"code": kind, "system": V2_0301}
    display = UNIVERSAL_ID_DISPLAY.get(kind)
    if display:
        item["display"] = display
    return {"coding": [item]}


def identifier_type(code: str) -> Json | None:
    """Return ``Identifier.type`` for a v2 identifier type code (table 0203)."""
    code = clean_code(code)
    if not code:
        return None
    target = maps.IDENTIFIER_TYPE.get(code)
    if target is not None:
        return {"coding": [{"code": target[0], "display": target[1], "system": target[2]}]}
    if code in _FR_0203:
        return {"coding": [{"system": _FR_0203_SYSTEM, "code": code}]}
    return {"coding": [{"code": code}]}


def typed(code: str) -> Json:
    """Return an ``Identifier.type`` that only says its v2-0203 code (PLAC, FILL ...)."""
    return {"coding": [{"system": V2_0203, "code": code}]}


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
CHECK_DIGIT_URL = "http://hl7.org/fhir/StructureDefinition/identifier-checkDigit"
CHECK_DIGIT_SCHEME_URL = "http://hl7.org/fhir/StructureDefinition/namingsystem-checkDigit"


def identifier_cx(value: Value | None) -> Json | None:
    """Return an Identifier from a CX (CX[Identifier]), without its assigner resource."""
    if not value:
        return None
    ident = value.c(1)
    if not ident:
        return None
    result: Json = {"value": ident}
    parts = value.parts()
    count = len(parts)
    if count >= 5:
        kind = identifier_type(value.c(5))
        if kind:
            result["type"] = kind
    if count >= 4 and parts[3]:
        namespace, universal = value.s(4, 1), value.s(4, 2)
        system = hd_system(namespace, universal, value.s(4, 3))
        if system:
            result["system"] = system
        if namespace and universal:  # the namespace, for FHIR -> v2 to write HD.1 back
            result["assigner"] = {"display": namespace}
    if count >= 7:
        period = period_of(value.c(7), value.c(8) if count >= 8 else "")
        if period:
            result["period"] = period
    if count >= 2 and parts[1]:
        extensions = [{"url": CHECK_DIGIT_URL, "valueString": value.c(2)}]
        if value.c(3):
            extensions.append({"url": CHECK_DIGIT_SCHEME_URL, "valueString": value.c(3)})
        result["extension"] = extensions
    return result


def identifier_ei(value: Value | None, type_code: str = "") -> Json | None:
    """Return an Identifier from an EI (entity id, namespace, universal id, type)."""
    if not value:
        return None
    ident = value.c(1)
    if not ident:
        return None
    result: Json = {"value": ident}
    if type_code:
        result["type"] = typed(type_code)
    if len(value.parts()) > 1:
        namespace, universal = value.c(2), value.c(3)
        system = hd_system(namespace, universal, value.c(4))
        if system:
            result["system"] = system
        if namespace and universal:
            result["assigner"] = {"display": namespace}
    return result


def identifier_value(value: str, type_code: str = "", system: str = "") -> Json | None:
    """Return a plain Identifier for an ST value (ST[Identifier])."""
    if not value:
        return None
    result: Json = {"value": value}
    if type_code:
        result["type"] = typed(type_code)
    if system:
        result["system"] = system
    return result


def identifier_dln(value: Value | None) -> Json | None:
    """Return an Identifier for a driver's licence number (DLN[Identifier])."""
    if not value or not value.c(1):
        return None
    return prune(
        {
            "value": value.c(1),
            "type": {"coding": [{"code": "DL", "system": V2_0203}]},
            "system": code_system_uri(value.c(2)) if value.c(2) else None,
            "period": {"end": dtm(value.c(3))},
        }
    )


# --- names, addresses, telecom --------------------------------------------------

_FN_EXTENSIONS = (
    (2, "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"),
    (3, "http://hl7.org/fhir/StructureDefinition/humanname-own-name"),
    (4, "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix"),
    (5, "http://hl7.org/fhir/StructureDefinition/humanname-partner-name"),
)


def _family(value: Value, n: int, name: Json) -> None:
    """FN (surname) in component ``n`` -> family and its extensions (FN[HumanName])."""
    subs = value.subs(n)
    if not subs:
        return
    if subs[0]:
        name["family"] = subs[0]
    extensions = [
        {"url": url, "valueString": subs[i - 1]}
        for i, url in _FN_EXTENSIONS
        if i <= len(subs) and subs[i - 1]
    ]
    if extensions:
        name["_family"] = {"extension": extensions}


def human_name(value: Value | None) -> list[Json]:
    """Return the HumanNames of an XPN (XPN[HumanName]): the name, and XPN.15 as a nickname."""
    if not value:
        return []
    name: Json = {}
    _family(value, 1, name)
    count = len(value.parts())
    given = [g for g in (value.c(2), value.c(3)) if g]
    if given:
        name["given"] = given
    suffix = [s for s in (value.c(4), value.c(6), value.c(14) if count >= 14 else "") if s]
    if suffix:
        name["suffix"] = suffix
    if value.c(5):
        name["prefix"] = [value.c(5)]
    use = mapped_code(value.c(7), maps.NAME_TYPE) if count >= 7 else ""
    if use:
        name["use"] = use
    if count >= 10:
        period = period_of(value.c(12), value.c(13) if count >= 13 else "") or period_of(
            value.s(10, 1), value.s(10, 2)
        )
        if period:
            name["period"] = period
        if count >= 11 and value.c(11):
            name["extension"] = [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/humanname-assembly-order",
                    "valueCode": mapped_code(value.c(11), maps.NAME_ASSEMBLY_ORDER) or value.c(11),
                }
            ]
    names = [name] if name else []
    if count >= 15 and value.c(15):
        names.append({"given": [value.c(15)], "use": "nickname"})
    return names


def xcn_name(value: Value) -> Json | None:
    """Return the HumanName of an XCN (components 2-7, 10, 17-21; XCN[Practitioner])."""
    name: Json = {}
    _family(value, 2, name)
    count = len(value.parts())
    given = [g for g in (value.c(3), value.c(4)) if g]
    if given:
        name["given"] = given
    suffix = [s for s in (value.c(5), value.c(7), value.c(21) if count >= 21 else "") if s]
    if suffix:
        name["suffix"] = suffix
    if value.c(6):
        name["prefix"] = [value.c(6)]
    if count >= 10:
        use = mapped_code(value.c(10), maps.NAME_TYPE)
        if use:
            name["use"] = use
    if count >= 17:
        period = period_of(value.c(19), value.c(20) if count >= 20 else "") or period_of(
            value.s(17, 1), value.s(17, 2)
        )
        if period:
            name["period"] = period
    return name or None


def xcn_identifier(value: Value) -> Json | None:
    """Return the Identifier of an XCN (components 1, 9, 11-13), without its assigner."""
    ident = value.c(1)
    if not ident:
        return None
    result: Json = {"value": ident}
    count = len(value.parts())
    if count >= 9 and value.has(9):
        namespace, universal = value.s(9, 1), value.s(9, 2)
        system = hd_system(namespace, universal, value.s(9, 3))
        if system:
            result["system"] = system
        if namespace and universal:
            result["assigner"] = {"display": namespace}
    if count >= 13:
        kind = identifier_type(value.c(13))
        if kind:
            result["type"] = kind
    if count >= 11 and value.c(11):
        extensions = [{"url": CHECK_DIGIT_URL, "valueString": value.c(11)}]
        if count >= 12 and value.c(12):
            extensions.append({"url": CHECK_DIGIT_SCHEME_URL, "valueString": value.c(12)})
        result["extension"] = extensions
    return result


def address(value: Value | None) -> Json | None:
    """Return an Address from an XAD (XAD[Address], SAD[Address])."""
    if not value:
        return None
    result: Json = {}
    lines = [x for x in value.subs(1)[:3] if x]
    if value.c(2):
        lines.append(value.c(2))
    count = len(value.parts())
    if count >= 19 and value.c(19):
        lines.append(value.c(19))
    if lines:
        result["line"] = lines
    for n, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
        if n <= count:
            part = value.c(n)
            if part:
                result[key] = part
    if count >= 7:
        kind = value.c(7)
        if kind in ("M", "SH"):
            result["type"] = mapped_code(kind, maps.ADDRESS_TYPE) or "postal"
        elif kind:
            use = mapped_code(kind, maps.ADDRESS_USE)
            if use:
                result["use"] = use
    if count >= 9 and value.has(9):
        district = value.s(9, 9) or value.s(9, 2) or value.s(9, 1)
        if district:
            result["district"] = district
    if count >= 12:
        period = period_of(value.c(13), value.c(14) if count >= 14 else "") or period_of(
            value.s(12, 1), value.s(12, 2)
        )
        if period:
            result["period"] = period
    return result or None


_CONTACT_POINT_USE = "http://hl7.org/fhir/contact-point-use"


def telecom(value: Value | None, default_use: str = "") -> Json | None:
    """Return a ContactPoint from an XTN (XTN[ContactPoint])."""
    if not value:
        return None
    count = len(value.parts())
    equipment = value.c(3)
    email = equipment in ("Internet", "X.400", "INTERNET", "NET")
    number = value.c(4) if email else ""
    if not number and not email:
        number = value.c(12) if count >= 12 else ""
        if not number and (value.c(6) or value.c(7)):
            number = " ".join(
                x for x in (f"+{value.c(5)}" if value.c(5) else "", value.c(6), value.c(7)) if x
            )
            if value.c(8):
                number = f"{number} X{value.c(8)}"
    number = number or value.c(1) or value.c(4)
    if not number:
        return None
    result: Json = {"value": number}
    use = mapped_code(value.c(2), maps.TELECOM_USE) or default_use
    target = maps.TELECOM_EQUIPMENT.get(equipment)
    if target is not None and target[2] == _CONTACT_POINT_USE:
        result["system"] = "phone"
        use = use or target[0]
    elif target is not None:
        result["system"] = target[0]
    elif equipment:
        result["system"] = "other"
    elif value.c(4) or "@" in number:
        result["system"] = "email"
    else:
        result["system"] = "phone"
    if use:
        result["use"] = use
    if count >= 13:
        period = period_of(value.c(13), value.c(14) if count >= 14 else "")
        if period:
            result["period"] = period
        if count >= 18 and value.c(18).isdigit() and int(value.c(18)) > 0:
            result["rank"] = int(value.c(18))
    return result


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


def dtm_exact(value: str, clock: Clock | None = None) -> tuple[str | None, bool]:
    """Return (FHIR date/dateTime, whether FHIR needed more than v2 said).

    The second part is true when the v2 time had no offset (one was supplied
    from ``clock``) or no seconds: the FHIR value then says more than the
    sender did, and :func:`time_extension` keeps the v2 form for the way back.
    """
    value = value.strip()
    if "^" in value:
        value = value.split("^")[0]
    if not value:
        return None, False
    match = _DTM.match(value)
    if match is None:
        return None, False
    y, mo, d, h = match["y"], match["mo"], match["d"], match["h"]
    if mo is None:
        return y, False
    if not "01" <= mo <= "12":
        return None, False
    if d is None:
        return f"{y}-{mo}", False
    try:
        datetime(int(y), int(mo), int(d), tzinfo=UTC)
    except ValueError:
        return None, False
    if h is None:
        return f"{y}-{mo}-{d}", False
    mi, s = match["mi"] or "00", match["s"] or "00"
    if h > "23" or mi > "59" or s > "59":
        return None, False
    fraction = f".{match['f']}" if match["f"] else ""
    tz = match["tz"]
    if tz:
        offset = f"{tz[:3]}:{tz[3:]}"
        if tz[1:3] > "14" or tz[3:] > "59":
            return None, False
    else:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))  # noqa: DTZ001 - naive on purpose: its zone is what the clock decides
        offset = (clock or Clock()).offset_for(local)
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{fraction}{offset}", (not tz or match["s"] is None)


def dtm(value: str, clock: Clock | None = None) -> str | None:
    """Return a FHIR date or dateTime for a v2 DTM/TS/DT, keeping its precision.

    ``2014``, ``201410`` and ``20141006`` stay a year, month and date. A value
    with a time keeps its offset; FHIR requires seconds and an offset once a
    time is given, so minutes-only gain ``:00`` and a missing offset comes
    from ``clock``. An invalid value returns None (the caller reports it).
    """
    return dtm_exact(value, clock)[0]


def time_extension(original: str) -> Json:
    """Return the ``_element`` keeping a v2 time's exact form (originalText extension)."""
    return {"extension": [{"url": ORIGINAL_TEXT_URL, "valueString": original}]}


def period_of(start: str, end: str, clock: Clock | None = None) -> Json | None:
    """Return a Period from two v2 times (DR[Period]), or None."""
    result: Json = {}
    if start:
        begin = dtm(start, clock)
        if begin:
            result["start"] = begin
    if end:
        finish = dtm(end, clock)
        if finish:
            result["end"] = finish
    return result or None


def fhir_to_dtm(value: str, original: str = "") -> str:
    """Return the v2 DTM for a FHIR date/dateTime/instant, keeping precision and offset.

    ``original`` is the v2 form kept in an originalText extension; it is
    written back when it still says the same moment as ``value`` (the FHIR
    value was not changed since), so a time sent without an offset or
    without seconds comes back exactly as sent.
    """
    match = re.fullmatch(
        r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
        r"(Z|[+-]\d{2}:\d{2})?)?)?)?",
        value.strip(),
    )
    if match is None:
        return ""
    y, mo, d, h, mi, s, fraction, tz = match.groups()
    digits = y + (mo or "") + (d or "") + (h or "") + (mi or "") + (s or "")
    if original and _DTM.match(original.strip()):
        sent = re.sub(r"[+-]\d{4}$", "", original.strip()).replace(".", "")
        if (digits + (fraction or "").lstrip(".")).startswith(sent) or sent.startswith(
            digits.rstrip("0")
        ):
            return original.strip()
    out = digits
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

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def decimal(value: str) -> Decimal | None:
    """Return a v2 NM as a Decimal keeping its digits, or None when it is not a number."""
    value = value.strip()
    if not _NUMBER.fullmatch(value):
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
        unit = name or code
        if unit:
            result["unit"] = unit
        if code:
            result["code"] = clean_code(code)
            if system:
                result["system"] = code_system_uri(system)
    return result


def cq_quantity(value: Value | None) -> Json | None:
    """Return a Quantity from a CQ (CQ[Quantity]: CQ.1 value, CQ.2 units)."""
    if not value:
        return None
    number = decimal(value.c(1))
    if number is None:
        return None
    result: Json = {"value": number}
    units = value.component(2)
    if units:
        unit = units.c(2) or units.c(1)
        if unit:
            result["unit"] = unit
        if units.c(1) and units.c(3):
            result["code"] = units.c(1)
            result["system"] = code_system_uri(units.c(3))
    return result


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
    """Return an Attachment pointing at an RP (reference pointer) value (RP[Attachment])."""
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
