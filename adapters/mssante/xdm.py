"""Build and read IHE XDM packages (``IHE_XDM.zip``) as MSSanté carries them (pure).

IHE ITI TF-1 §16 / TF-3 §4.2 (XDM, media type ZIP over e-mail): the archive
holds ``INDEX.HTM``, ``README.TXT`` and ``IHE_XDM/SUBSET01/`` with the
documents (``DOC0001.XML`` ...) and ``METADATA.XML``, an ebRIM
``SubmitObjectsRequest`` describing one submission set and one
DocumentEntry per document. The DocumentEntry is built from the CDA header
along ``lien-entete-cda-meta-xds.md`` and the XDS table of ``mapping.md``:

- uniqueId = ClinicalDocument/id, patientId = the recordTarget's INS (else its
  first id), typeCode = code, title, creationTime = effectiveTime,
  confidentialityCode, languageCode, serviceStart/StopTime =
  documentationOf/serviceEvent/effectiveTime, practiceSettingCode,
  healthcareFacilityTypeCode, author and legalAuthenticator, formatCode from
  the body (level 1 PDF: ``urn:ihe:iti:xds-sd:pdf:2008``), hash and size of
  the bytes, ``URI`` the file name in the subset;
- the submission set's author is the PRT ``SB`` sender (mapping.md, "Lot de
  soumission"), its intendedRecipient the mail's recipient, its
  contentTypeCode from PV1-2 where the sender gave it.

Replacing or deleting a document (OBX-11 ``C`` / ``D``, exemples.md) adds the
extra metadata slot ``action`` with ``C`` (Change) or ``D`` (Deleted) to the
DocumentEntry; a replacement also names the replaced document in the slot
``parentDocumentId`` (relatedDocument/parentDocument/id), where a receiving
platform (issue 16) finds it.

:func:`read_package` reads such an archive back, refusing paths that leave
the archive and archives that inflate beyond a bound (a zip bomb).
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.mssante.cda import Cda, CdaHeader, Code, Person
from broker.errors import MessageError

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
SUBSET = "IHE_XDM/SUBSET01"
MAX_UNPACKED = 64 * 1024 * 1024  # bytes an archive may inflate to when read
DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
# XDS classification and identification schemes (IHE ITI TF-3 §4.2.5).
ENTRY_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
ENTRY_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
ENTRY_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
ENTRY_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
ENTRY_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
ENTRY_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
ENTRY_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
ENTRY_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
ENTRY_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SET_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SET_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SET_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SET_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SET_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
ACTIONS = {"C": "C", "D": "D"}  # OBX-11 -> extra metadata `action`


class XdmError(MessageError):
    """An XDM archive that cannot be read (named part, never a value)."""


@dataclass(frozen=True)
class Submission:
    """What the submission set says: ids, time, who sends, to whom, why."""

    unique_id: str
    source_id: str
    submission_time: str
    author: Person | None = None
    intended_recipient: str = ""
    content_type: Code | None = None
    action: str | None = None  # "C" replace, "D" delete, None: a new document


@dataclass(frozen=True)
class Entry:
    """One DocumentEntry read back: its metadata (slots, codes, ids) and the document bytes."""

    unique_id: str
    patient_id: str
    type_code: str
    title: str
    uri: str
    hash: str
    size: int
    slots: dict[str, list[str]]
    codes: dict[str, str]
    data: bytes = field(repr=False)

    @property
    def action(self) -> str | None:
        """Return the extra metadata ``action`` (``C`` replace, ``D`` delete), if any."""
        values = self.slots.get("action")
        return values[0] if values else None


@dataclass(frozen=True)
class Package:
    """An XDM archive read back: its entries, submission set slots and ids."""

    entries: tuple[Entry, ...]
    submission: dict[str, str]
    files: tuple[str, ...]


def oid_of(ident: uuid.UUID) -> str:
    """Return the OID of a UUID (ITU-T X.667: ``2.25.<the UUID as an integer>``)."""
    return f"2.25.{ident.int}"


def document_name(index: int) -> str:
    """Return the file name of the ``index``-th document of a subset (1-based)."""
    return f"DOC{index:04d}.XML"


def build_package(documents: Sequence[Cda], submission: Submission) -> bytes:
    """Return ``IHE_XDM.zip`` holding ``documents`` and their METADATA.XML."""
    metadata = build_metadata(documents, submission)
    buffer = io.BytesIO()
    # Level 1: the documents are mostly Base64 (PDF) that deflate little; level 6 cost
    # 0.1 s for a 2 MB document, inside the router's transaction, for a few % smaller.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("INDEX.HTM", _index(documents))
        archive.writestr("README.TXT", _README)
        archive.writestr(f"{SUBSET}/METADATA.XML", metadata)
        for index, cda in enumerate(documents, 1):
            archive.writestr(f"{SUBSET}/{document_name(index)}", cda.data)
    return buffer.getvalue()


def build_metadata(documents: Sequence[Cda], submission: Submission) -> bytes:
    """Return METADATA.XML: a SubmitObjectsRequest with the set and one entry per document."""
    ET.register_namespace("lcm", LCM)
    ET.register_namespace("rim", RIM)
    request = ET.Element(f"{{{LCM}}}SubmitObjectsRequest")
    objects = ET.SubElement(request, _r("RegistryObjectList"))
    first = documents[0].header if documents else None
    for index, cda in enumerate(documents, 1):
        objects.append(_entry(cda, index, submission))
    package = ET.SubElement(objects, _r("RegistryPackage"), id="SubmissionSet01")
    _slot(package, "submissionTime", submission.submission_time)
    if submission.intended_recipient:
        _slot(package, "intendedRecipient", f"^^^^^^^^^{submission.intended_recipient}")
    _name(package, first.title if first else "")
    if submission.author is not None:
        _author(package, "SubmissionSet01", SET_AUTHOR, submission.author)
    content = submission.content_type or Code("04", "1.2.250.1.213.1.1.4.2.280")
    _classification(package, "SubmissionSet01", SET_CONTENT_TYPE, content)
    _external(package, SET_UNIQUE_ID, submission.unique_id, "XDSSubmissionSet.uniqueId")
    _external(package, SET_SOURCE_ID, submission.source_id, "XDSSubmissionSet.sourceId")
    if first is not None:
        _external(package, SET_PATIENT_ID, _patient_id(first), "XDSSubmissionSet.patientId")
    ET.SubElement(
        objects,
        _r("Classification"),
        id="SubmissionSet01-class",
        classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET,
    )
    for index in range(1, len(documents) + 1):
        association = ET.SubElement(
            objects,
            _r("Association"),
            id=f"Association{index:02d}",
            associationType=HAS_MEMBER,
            sourceObject="SubmissionSet01",
            targetObject=f"Document{index:02d}",
        )
        _slot(association, "SubmissionSetStatus", "Original")
    return bytes(ET.tostring(request, encoding="utf-8", xml_declaration=True))


def _entry(cda: Cda, index: int, submission: Submission) -> ET.Element:
    header = cda.header
    entry_id = f"Document{index:02d}"
    entry = ET.Element(
        _r("ExtrinsicObject"), id=entry_id, mimeType="text/xml", objectType=DOCUMENT_ENTRY
    )
    _slot(entry, "creationTime", _utc(header.effective_time))
    _slot(entry, "hash", hashlib.sha1(cda.data).hexdigest())  # noqa: S324  # XDS hash is SHA-1
    _slot(entry, "size", str(len(cda.data)))
    _slot(entry, "languageCode", header.language)
    _slot(entry, "URI", document_name(index))
    if header.service_start:
        _slot(entry, "serviceStartTime", _utc(header.service_start))
    if header.service_stop:
        _slot(entry, "serviceStopTime", _utc(header.service_stop))
    _slot(entry, "sourcePatientId", _patient_id(header))
    info = [
        f"PID-5|{header.patient_family}^{header.patient_given}",
        f"PID-7|{header.patient_birth[:8]}",
        f"PID-8|{header.patient_gender}",
    ]
    _slot(entry, "sourcePatientInfo", *info)
    if header.legal_authenticator is not None:
        _slot(entry, "legalAuthenticator", header.legal_authenticator.xcn)
    action = ACTIONS.get(submission.action or "")
    if action is not None:
        _slot(entry, "action", action)
    if action == "C" and header.parent_id is not None:
        _slot(entry, "parentDocumentId", header.parent_id.xds)
    _name(entry, header.title)
    for author in header.authors:
        _author(entry, entry_id, ENTRY_AUTHOR, author)
    _classification(entry, entry_id, ENTRY_CLASS, header.code)
    _classification(entry, entry_id, ENTRY_CONFIDENTIALITY, header.confidentiality)
    _classification(
        entry, entry_id, ENTRY_FORMAT, Code(header.format_code, "1.2.250.1.213.1.1.4.2.282")
    )
    if header.facility_type is not None:
        _classification(entry, entry_id, ENTRY_FACILITY, header.facility_type)
    if header.practice_setting is not None:
        _classification(entry, entry_id, ENTRY_PRACTICE, header.practice_setting)
    _classification(entry, entry_id, ENTRY_TYPE, header.code)
    _external(entry, ENTRY_PATIENT_ID, _patient_id(header), "XDSDocumentEntry.patientId")
    _external(entry, ENTRY_UNIQUE_ID, header.id.xds, "XDSDocumentEntry.uniqueId")
    return entry


def _patient_id(header: CdaHeader) -> str:
    ins = header.ins or (header.patient_ids[0] if header.patient_ids else None)
    return ins.cx if ins is not None else ""


def _author(parent: ET.Element, owner: str, scheme: str, author: Person) -> None:
    element = ET.SubElement(
        parent,
        _r("Classification"),
        id=f"{owner}-author-{len(parent)}",
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation="",
    )
    _slot(element, "authorPerson", author.xcn)
    if author.organisation_name or author.organisation_id:
        _slot(element, "authorInstitution", author.xon)
    if author.specialty is not None:
        spec = author.specialty
        _slot(element, "authorSpecialty", f"{spec.code}^{spec.display}^{spec.system}")


def _classification(parent: ET.Element, owner: str, scheme: str, code: Code) -> None:
    element = ET.SubElement(
        parent,
        _r("Classification"),
        id=f"{owner}-class-{len(parent)}",
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation=code.code,
    )
    _slot(element, "codingScheme", code.system)
    _name(element, code.display or code.code)


def _external(parent: ET.Element, scheme: str, value: str, name: str) -> None:
    element = ET.SubElement(
        parent,
        _r("ExternalIdentifier"),
        id=f"{parent.get('id')}-{name.rpartition('.')[2]}",
        identificationScheme=scheme,
        registryObject=parent.get("id", ""),
        value=value,
    )
    _name(element, name)


def _slot(parent: ET.Element, name: str, *values: str) -> None:
    slot = ET.SubElement(parent, _r("Slot"), name=name)
    listing = ET.SubElement(slot, _r("ValueList"))
    for value in values:
        ET.SubElement(listing, _r("Value")).text = value


def _name(parent: ET.Element, text: str) -> None:
    name = ET.SubElement(parent, _r("Name"))
    ET.SubElement(name, _r("LocalizedString"), value=text)


def _r(tag: str) -> str:
    return f"{{{RIM}}}{tag}"


def _utc(value: str) -> str:
    """Return an HL7 TS as XDS writes times: digits only, no zone (YYYYMMDDHHMMSS at most)."""
    return re.sub(r"[^0-9].*$", "", value)[:14]


def _index(documents: Sequence[Cda]) -> str:
    rows = "".join(
        f'<li><a href="{SUBSET}/{document_name(i)}">{html.escape(cda.header.title)}</a></li>'
        for i, cda in enumerate(documents, 1)
    )
    return (
        "<html><head><title>IHE XDM</title></head><body>"
        f"<p>Documents de ce support (IHE XDM) :</p><ul>{rows}</ul>"
        f'<p><a href="{SUBSET}/METADATA.XML">METADATA.XML</a></p></body></html>'
    )


_README = (
    "IHE XDM package made by carebroker (regional care-coordination message broker).\r\n"
    "Contents: IHE_XDM/SUBSET01/METADATA.XML (XDS metadata of the documents) and the\r\n"
    "documents DOC0001.XML ... (CDA R2). INDEX.HTM lists them.\r\n"
)


# --- reading ---------------------------------------------------------------------------


def read_package(data: bytes) -> Package:
    """Read an ``IHE_XDM.zip``: each DocumentEntry of METADATA.XML with its document bytes.

    Raise XdmError (naming the part) for an archive that is not a zip, has no
    METADATA.XML, names a document it does not hold, leaves the archive
    (``..``, absolute paths) or inflates beyond MAX_UNPACKED.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise XdmError("not a zip archive", location="IHE_XDM.zip") from exc
    with archive:
        names = archive.namelist()
        if sum(i.file_size for i in archive.infolist()) > MAX_UNPACKED:
            raise XdmError("the archive inflates beyond the limit", location="IHE_XDM.zip")
        for name in names:
            if name.startswith("/") or ".." in name.split("/"):
                raise XdmError("a path leaves the archive", location="IHE_XDM.zip")
        metadata_name = next(
            (n for n in names if re.fullmatch(r"IHE_XDM/[^/]+/METADATA\.XML", n, re.I)), None
        )
        if metadata_name is None:
            raise XdmError("no IHE_XDM/<subset>/METADATA.XML", location="METADATA.XML")
        subset = metadata_name.rpartition("/")[0]
        try:
            root = ET.fromstring(archive.read(metadata_name))  # noqa: S314  # checked below
        except ET.ParseError as exc:
            raise XdmError("METADATA.XML is not well-formed", location="METADATA.XML") from exc
        entries = []
        for element in root.iter(_r("ExtrinsicObject")):
            slots = _slots(element)
            uri = (slots.get("URI") or [""])[0]
            path = f"{subset}/{uri}"
            if not uri or path not in names:
                raise XdmError("a DocumentEntry names no file of the subset", location="URI")
            externals = {
                e.get("identificationScheme", ""): e.get("value", "")
                for e in element.iter(_r("ExternalIdentifier"))
            }
            codes = {
                c.get("classificationScheme", ""): c.get("nodeRepresentation", "")
                for c in element.iter(_r("Classification"))
            }
            entries.append(
                Entry(
                    unique_id=externals.get(ENTRY_UNIQUE_ID, ""),
                    patient_id=externals.get(ENTRY_PATIENT_ID, ""),
                    type_code=codes.get(ENTRY_TYPE, ""),
                    title=_name_of(element),
                    uri=uri,
                    hash=(slots.get("hash") or [""])[0],
                    size=int((slots.get("size") or ["0"])[0] or 0),
                    slots=slots,
                    codes=codes,
                    data=archive.read(path),
                )
            )
        submission: dict[str, str] = {}
        for package in root.iter(_r("RegistryPackage")):
            for name, values in _slots(package).items():
                submission[name] = values[0] if values else ""
            for external in package.iter(_r("ExternalIdentifier")):
                submission[_name_of(external)] = external.get("value", "")
    return Package(tuple(entries), submission, tuple(names))


def _slots(element: ET.Element) -> dict[str, list[str]]:
    return {
        slot.get("name", ""): [v.text or "" for v in slot.iter(_r("Value"))]
        for slot in element.findall(_r("Slot"))
    }


def _name_of(element: ET.Element) -> str:
    localized = element.find(f"{_r('Name')}/{_r('LocalizedString')}")
    return localized.get("value", "") if localized is not None else ""
