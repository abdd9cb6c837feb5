"""Read the header of a CDA R2 document: what XDS metadata and the mail are built from (pure).

The CI-SIS "Structuration minimale des documents de santé" header
(ClinicalDocument id, code, title, effectiveTime, confidentialityCode,
languageCode, recordTarget, author, legalAuthenticator, documentationOf,
componentOf, relatedDocument) is what ``METADATA.XML`` of an IHE XDM package
is made of (``lien-entete-cda-meta-xds.md``, and the XDS mapping table of
``mapping.md``). Only the header is read, never the clinical body, except to
find the PDF rendering a level 1 document carries (``nonXMLBody``) or a level
3 document embeds (an ``observationMedia`` of type ``application/pdf``),
which the mail attaches.

Input comes from senders: a document with a DOCTYPE (entities, external
references) is refused before parsing, and errors name the element, never
a value (design invariant 6).
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from broker.errors import MessageError

NS = "urn:hl7-org:v3"
_N = {"h": NS}
INS_OIDS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10"})
PDF_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
TEXT_FORMAT = "urn:ihe:iti:xds-sd:text:2008"
STRUCTURED_FORMAT = "urn:asip:ci-sis:2010"
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class CdaError(MessageError):
    """The bytes are not a CDA R2 document carebroker can read (named element, no value)."""


@dataclass(frozen=True)
class InstanceId:
    """An II: ``root`` (OID) and optional ``extension``."""

    root: str
    extension: str = ""

    @property
    def xds(self) -> str:
        """Return the XDS form of a document id: ``root^extension``, or the root alone."""
        return f"{self.root}^{self.extension}" if self.extension else self.root

    @property
    def cx(self) -> str:
        """Return the XDS patient id form: ``extension^^^&root&ISO``."""
        return f"{self.extension}^^^&{self.root}&ISO"


@dataclass(frozen=True)
class Code:
    """A CD: code, code system (OID) and display name."""

    code: str
    system: str = ""
    display: str = ""


@dataclass(frozen=True)
class Person:
    """An author or legal authenticator: id, names, specialty, organisation."""

    id: InstanceId | None
    family: str = ""
    given: str = ""
    specialty: Code | None = None
    organisation_id: InstanceId | None = None
    organisation_name: str = ""

    @property
    def xcn(self) -> str:
        """Return the person as an XDS XCN (``id^family^given^^^^^^&root&ISO``)."""
        ident = self.id
        if ident is None:
            return f"^{self.family}^{self.given}"
        return f"{ident.extension}^{self.family}^{self.given}^^^^^^&{ident.root}&ISO"

    @property
    def xon(self) -> str:
        """Return the organisation as an XDS XON (``name^^^^^&root&ISO^^^^extension``)."""
        org = self.organisation_id
        if org is None:
            return self.organisation_name
        return f"{self.organisation_name}^^^^^&{org.root}&ISO^^^^{org.extension}"


@dataclass(frozen=True)
class CdaHeader:
    """The header of one CDA document, as XDS metadata needs it."""

    id: InstanceId
    code: Code
    title: str
    effective_time: str
    confidentiality: Code
    language: str
    set_id: InstanceId | None
    version: str
    patient_ids: tuple[InstanceId, ...]
    patient_family: str = field(default="", repr=False)
    patient_given: str = field(default="", repr=False)
    patient_gender: str = field(default="", repr=False)
    patient_birth: str = field(default="", repr=False)
    authors: tuple[Person, ...] = ()
    legal_authenticator: Person | None = None
    service_start: str = ""
    service_stop: str = ""
    practice_setting: Code | None = None
    facility_type: Code | None = None
    parent_id: InstanceId | None = None  # relatedDocument RPLC: the document replaced
    format_code: str = STRUCTURED_FORMAT
    level: int = 3

    @property
    def ins(self) -> InstanceId | None:
        """Return the patient's INS (NIR or NIA OID), if the document carries one."""
        return next((i for i in self.patient_ids if i.root in INS_OIDS), None)


@dataclass(frozen=True)
class Cda:
    """A CDA document: its bytes, its header, and the PDF renderings it carries."""

    data: bytes = field(repr=False)
    header: CdaHeader
    pdfs: tuple[bytes, ...] = field(default=(), repr=False)


def read_cda(data: bytes) -> Cda:
    """Parse a CDA R2 document's header; raise CdaError naming what is missing."""
    if _DOCTYPE.search(data[:4096]):
        raise CdaError("the CDA document declares a DOCTYPE or entities", location="DOCTYPE")
    try:
        root = ET.fromstring(data)  # noqa: S314  # DOCTYPE refused above: no entities, no DTD
    except ET.ParseError as exc:
        raise CdaError("the document is not well-formed XML", location="ClinicalDocument") from exc
    if root.tag != f"{{{NS}}}ClinicalDocument":
        raise CdaError("the root element is not ClinicalDocument (urn:hl7-org:v3)")
    ident = _ii(root.find("h:id", _N))
    if ident is None:
        raise CdaError("ClinicalDocument/id is missing", location="ClinicalDocument/id")
    code = _cd(root.find("h:code", _N))
    if code is None:
        raise CdaError("ClinicalDocument/code is missing", location="ClinicalDocument/code")
    patient_role = root.find("h:recordTarget/h:patientRole", _N)
    if patient_role is None:
        raise CdaError("recordTarget/patientRole is missing", location="recordTarget")
    patient = patient_role.find("h:patient", _N)
    name = patient.find("h:name", _N) if patient is not None else None
    body = root.find("h:component/h:nonXMLBody", _N)
    pdfs: list[bytes] = []
    if body is not None:
        level = 1
        text = body.find("h:text", _N)
        media = text.get("mediaType", "") if text is not None else ""
        format_code = PDF_FORMAT if media == "application/pdf" else TEXT_FORMAT
        if text is not None and media == "application/pdf":
            pdfs.append(_b64(text.text or "", "nonXMLBody/text"))
    else:
        level, format_code = 3, STRUCTURED_FORMAT
        for value in root.iterfind(".//h:observationMedia/h:value", _N):
            if value.get("mediaType") == "application/pdf":
                pdfs.append(_b64(value.text or "", "observationMedia/value"))
    service = root.find("h:documentationOf/h:serviceEvent", _N)
    practice = None
    if service is not None:
        practice = _cd(
            service.find(
                "h:performer/h:assignedEntity/h:representedOrganization/h:standardIndustryClassCode",
                _N,
            )
        )
    header = CdaHeader(
        id=ident,
        code=code,
        title=_text(root.find("h:title", _N)),
        effective_time=_value(root.find("h:effectiveTime", _N)),
        confidentiality=_cd(root.find("h:confidentialityCode", _N)) or Code("N"),
        language=_attr(root.find("h:languageCode", _N), "code") or "fr-FR",
        set_id=_ii(root.find("h:setId", _N)),
        version=_value(root.find("h:versionNumber", _N)),
        patient_ids=tuple(
            i for i in (_ii(e) for e in patient_role.findall("h:id", _N)) if i is not None
        ),
        patient_family=_text(name.find("h:family", _N)) if name is not None else "",
        patient_given=_text(name.find("h:given", _N)) if name is not None else "",
        patient_gender=_attr(
            patient.find("h:administrativeGenderCode", _N) if patient is not None else None, "code"
        ),
        patient_birth=_value(patient.find("h:birthTime", _N)) if patient is not None else "",
        authors=tuple(
            _person(a, "h:assignedPerson") for a in root.findall("h:author/h:assignedAuthor", _N)
        ),
        legal_authenticator=(
            _person(e, "h:assignedPerson")
            if (e := root.find("h:legalAuthenticator/h:assignedEntity", _N)) is not None
            else None
        ),
        service_start=_value(service.find("h:effectiveTime/h:low", _N))
        if service is not None
        else "",
        service_stop=_value(service.find("h:effectiveTime/h:high", _N))
        if service is not None
        else "",
        practice_setting=practice,
        facility_type=_cd(
            root.find(
                "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code", _N
            )
        ),
        parent_id=_ii(root.find("h:relatedDocument/h:parentDocument/h:id", _N)),
        format_code=format_code,
        level=level,
    )
    return Cda(data, header, tuple(pdfs))


def _person(element: ET.Element, person_path: str) -> Person:
    name = element.find(f"{person_path}/h:name", _N)
    organisation = element.find("h:representedOrganization", _N)
    return Person(
        id=_ii(element.find("h:id", _N)),
        family=_text(name.find("h:family", _N)) if name is not None else "",
        given=_text(name.find("h:given", _N)) if name is not None else "",
        specialty=_cd(element.find("h:code", _N)),
        organisation_id=_ii(organisation.find("h:id", _N)) if organisation is not None else None,
        organisation_name=_text(organisation.find("h:name", _N))
        if organisation is not None
        else "",
    )


def _ii(element: ET.Element | None) -> InstanceId | None:
    if element is None or not element.get("root"):
        return None
    return InstanceId(element.get("root", ""), element.get("extension", ""))


def _cd(element: ET.Element | None) -> Code | None:
    if element is None or not element.get("code"):
        return None
    return Code(
        element.get("code", ""), element.get("codeSystem", ""), element.get("displayName", "")
    )


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _value(element: ET.Element | None) -> str:
    return _attr(element, "value")


def _attr(element: ET.Element | None, name: str) -> str:
    # Not `element or ...`: an element without children is falsy.
    return element.get(name, "") if element is not None else ""


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CdaError(f"{where} is not valid Base64", location=where) from exc
