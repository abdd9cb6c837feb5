"""Code systems and media types: HL7 v2 names on one side, FHIR URIs on the other.

Sources: HL7 table 0396 (coding systems) and the FHIR terminology registry
(terminology.hl7.org "External code systems", hl7.org/fhir/R4/terminologies-systems.html).
The v2-to-FHIR IG maps CWE.3 "indirectly, through the vocabulary table"; this
module is that table for the systems carebroker meets. HL7-defined tables
(``HL70078``) map to ``http://terminology.hl7.org/CodeSystem/v2-0078``.

A coding system name not listed here is kept, not dropped: it becomes
``urn:carebroker:v2-0396:<name>`` so a FHIR reader sees an honest, local
system and FHIR -> v2 gives the name back.
"""

from __future__ import annotations

import re
from functools import lru_cache

LOCAL_SYSTEM_PREFIX = "urn:carebroker:v2-0396:"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0301 = "http://terminology.hl7.org/CodeSystem/v2-0301"
V2_0003 = "http://terminology.hl7.org/CodeSystem/v2-0003"
V2_0076 = "http://terminology.hl7.org/CodeSystem/v2-0076"

# Table 0396 name -> FHIR code system URI.
CODE_SYSTEMS: dict[str, str] = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNOMED-CT": "http://snomed.info/sct",
    "SNM": "http://terminology.hl7.org/CodeSystem/snm",
    "SNM3": "http://terminology.hl7.org/CodeSystem/snm",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "I10P": "http://www.cms.gov/Medicare/Coding/ICD10",
    "I9": "http://hl7.org/fhir/sid/icd-9",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9CDX": "http://hl7.org/fhir/sid/icd-9-cm",
    "UCUM": "http://unitsofmeasure.org",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT4": "http://www.ama-assn.org/go/cpt",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://terminology.hl7.org/CodeSystem/MVX",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ATC": "http://www.whocc.no/atc",
    "NUCC": "http://nucc.org/provider-taxonomy",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "ISO3166_2": "urn:iso:std:iso:3166:-2",
    "ISO639": "urn:ietf:bcp:47",
    "ISO+": "urn:iso:std:iso:11073:10101",
    "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
    "HPC": "http://terminology.hl7.org/CodeSystem/HCPCS-all-codes",
    "HCPCS": "http://terminology.hl7.org/CodeSystem/HCPCS-all-codes",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "CIM10": "http://hl7.org/fhir/sid/icd-10",
    "CCAM": "https://mos.esante.gouv.fr/NOS/TRE_R38-ActeCCAM/FHIR/TRE-R38-ActeCCAM",
}
_CANONICAL: dict[str, str] = {}
for _name, _uri in CODE_SYSTEMS.items():
    _CANONICAL.setdefault(_uri, _name)

_HL7_TABLE = re.compile(r"^HL7_?(\d{4})$", re.IGNORECASE)
_HL7_TABLE_URI = re.compile(r"^http://terminology\.hl7\.org/CodeSystem/v2-(\d{4})$")


@lru_cache(maxsize=4096)
def code_system_uri(name: str) -> str:
    """Return the FHIR URI for a v2 coding system name (CWE.3).

    Cached: a message names the same few systems again and again.
    """
    key = name.strip()
    uri = CODE_SYSTEMS.get(key.upper())
    if uri:
        return uri
    table = _HL7_TABLE.match(key)
    if table:
        return f"http://terminology.hl7.org/CodeSystem/v2-{table[1]}"
    if key.startswith(("http://", "https://", "urn:")):
        return key
    return LOCAL_SYSTEM_PREFIX + key.replace(" ", "_")


def code_system_name(uri: str) -> tuple[str, str]:
    """Return (CWE.3 name, CWE.14 OID) for a FHIR code system URI: the reverse of the above."""
    if not uri:
        return "", ""
    if uri in _CANONICAL:
        return _CANONICAL[uri], ""
    table = _HL7_TABLE_URI.match(uri)
    if table:
        return f"HL7{table[1]}", ""
    if uri.startswith(LOCAL_SYSTEM_PREFIX):
        return uri[len(LOCAL_SYSTEM_PREFIX) :].replace("_", " "), ""
    if uri.startswith("urn:oid:"):
        return "", uri[8:]
    # A FHIR system with no v2 name: "L" (local) is all CWE.3 can honestly say.
    return "L", ""


# ED.2 type of data (table 0191) and ED.3 subtype (table 0291) <-> MIME types.
_MAJOR = {
    "AP": "application",
    "APPLICATION": "application",
    "IM": "image",
    "IMAGE": "image",
    "TEXT": "text",
    "TX": "text",
    "AU": "audio",
    "AUDIO": "audio",
    "VIDEO": "video",
    "MULTIPART": "multipart",
}
_SUBTYPE = {
    "PDF": "application/pdf",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "PICT": "image/pict",
    "RTF": "text/rtf",
    "HTML": "text/html",
    "XML": "text/xml",
    "PLAIN": "text/plain",
    "TXT": "text/plain",
    "OCTET-STREAM": "application/octet-stream",
    "MSWORD": "application/msword",
    "DICOM": "application/dicom",
}
_MINOR_NAME = {"application": "AP", "image": "IM", "text": "TEXT", "audio": "AU", "video": "VIDEO"}


def mime_type(type_of_data: str, subtype: str) -> str:
    """Return the MIME type an ED.2/ED.3 (or RP.3/RP.4) pair names."""
    sub = subtype.strip()
    if "/" in sub:
        return sub.lower()
    major = _MAJOR.get(type_of_data.strip().upper(), type_of_data.strip().lower())
    if sub:
        known = _SUBTYPE.get(sub.upper())
        if known and (not major or known.startswith(major + "/") or major == "application"):
            return known
        if major:
            return f"{major}/{sub.lower()}"
        return known or ""
    known = _SUBTYPE.get(type_of_data.strip().upper())
    return known or ""


def ed_type(mime: str) -> tuple[str, str]:
    """Return (ED.2, ED.3) for a MIME type."""
    if "/" not in mime:
        return "AP", mime.upper() or "OCTET-STREAM"
    major, minor = mime.split("/", 1)
    return _MINOR_NAME.get(major.lower(), major.upper()), minor.split(";")[0].upper()


# The IG's PrimaryLanguage concept map lists its targets (BCP 47 tags) with no
# v2 source codes: v2 senders write ISO 639 codes, two or three letters
# (ISO 639-2/B and /T). This table gives the BCP 47 tag of each 639-2 code
# whose language the IG lists, and French regional languages a French sender
# may use.
LANGUAGES: dict[str, tuple[str, str]] = {
    "ara": ("ar", "Arabic"),
    "ben": ("bn", "Bengali"),
    "ces": ("cs", "Czech"),
    "cze": ("cs", "Czech"),
    "dan": ("da", "Danish"),
    "deu": ("de", "German"),
    "ger": ("de", "German"),
    "ell": ("el", "Greek"),
    "gre": ("el", "Greek"),
    "eng": ("en", "English"),
    "spa": ("es", "Spanish"),
    "fin": ("fi", "Finnish"),
    "fra": ("fr", "French"),
    "fre": ("fr", "French"),
    "fry": ("fy", "Frysian"),
    "hin": ("hi", "Hindi"),
    "hrv": ("hr", "Croatian"),
    "ita": ("it", "Italian"),
    "jpn": ("ja", "Japanese"),
    "kor": ("ko", "Korean"),
    "nld": ("nl", "Dutch"),
    "dut": ("nl", "Dutch"),
    "nor": ("no", "Norwegian"),
    "pan": ("pa", "Punjabi"),
    "pol": ("pl", "Polish"),
    "por": ("pt", "Portuguese"),
    "rus": ("ru", "Russian"),
    "srp": ("sr", "Serbian"),
    "swe": ("sv", "Swedish"),
    "tel": ("te", "Telegu"),
    "zho": ("zh", "Chinese"),
    "chi": ("zh", "Chinese"),
    "bre": ("br", "Breton"),
    "cat": ("ca", "Catalan"),
    "cos": ("co", "Corsican"),
    "eus": ("eu", "Basque"),
    "baq": ("eu", "Basque"),
    "oci": ("oc", "Occitan"),
    "tur": ("tr", "Turkish"),
    "ron": ("ro", "Romanian"),
    "rum": ("ro", "Romanian"),
    "vie": ("vi", "Vietnamese"),
}
BCP_47 = "urn:ietf:bcp:47"
