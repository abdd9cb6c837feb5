"""Regenerate ``adapters/translate/concept_maps.py`` from the v2-to-FHIR IG's concept maps.

The HL7 v2-to-FHIR implementation guide publishes its vocabulary mappings as
CSV sheets (../shared/corpus/mappings/v2-to-fhir/codesystems/, Apache-2.0).
carebroker encodes every one of them as a Python module so the translation
package stays pure (no file I/O at run time) and the mapping is reviewable in
a diff. Run from the repository root::

    python -m tests.tools.extract_concept_maps ../shared/corpus/mappings/v2-to-fhir/codesystems

Each sheet becomes a constant named after it (``PatientClass[EncounterClass]``
-> ``PATIENT_CLASS__ENCOUNTER_CLASS``); the names the code used before every
map was generated are kept as aliases (``ALIASES``).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

# Short names the translation code uses -> IG sheet name.
ALIASES = {
    "ADMINISTRATIVE_SEX": "AdministrativeSex",
    "MARITAL_STATUS": "MaritalStatus",
    "RESULT_STATUS": "ResultStatus[Non-Queries]",
    "OBSERVATION_STATUS": "ObservationResultStatusCodesInterpretation",
    "INTERPRETATION": "InterpretationCodes",
    "ORDER_CONTROL_STATUS": "OrderControlCode[ServiceRequest.status]",
    "ORDER_STATUS": "OrderStatus",
    "PATIENT_CLASS": "PatientClass[EncounterClass]",
    "PATIENT_CLASS_STATUS": "PatientClass[EncounterStatus]",
    "EVENT_ENCOUNTER_STATUS": "Event[EncounterStatus]",
    "APPOINTMENT_STATUS": "FillerStatusCodes[Appointment]",
    "NAME_TYPE": "NameType",
    "TELECOM_USE": "TelecommunicationUseCode",
    "TELECOM_EQUIPMENT": "TelecommunicationEquipmentType",
    "ADDRESS_USE": "AddressType[Use]",
    "ADDRESS_TYPE": "AddressType[Type]",
    "PRIORITY": "ExtendedPriorityCodes",
    "DOCUMENT_CONFIDENTIALITY": "DocumentConfidentialityStatus",
    "IDENTIFIER_TYPE": "IdentifierType",
    "RELATIONSHIP": "Relationship",
    "EVENT_TYPE": "EventType",
    "DIAGNOSTIC_SERVICE_SECTION": "DiagnosticServiceSectionID",
    "ALLERGY_CRITICALITY": "AllergySeverity[AllergyIntolerance.criticality]",
    "ALLERGY_CATEGORY": "AllergenType[AllergyIntoleranceCategory]",
    "PROCESSING_ID": "ProcessingID",
    "YES_NO": "YesNoIndicator",
}


def constant_name(sheet: str) -> str:
    """Return the Python constant for an IG sheet name."""
    base, _, qualifier = sheet.partition("[")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", base).upper()
    name = re.sub(r"[^A-Z0-9]+", "_", words).strip("_")
    if qualifier:
        extra = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", qualifier.rstrip("]")).upper()
        name += "__" + re.sub(r"[^A-Z0-9]+", "_", extra).strip("_")
    return name


def read_map(path: Path) -> dict[str, tuple[str, str, str]]:
    """Return v2 code -> (FHIR code, display, system) for one IG concept-map sheet."""
    rows = list(csv.reader(path.open(encoding="utf-8")))
    header = rows[1]
    code_columns = [i for i, name in enumerate(header) if name.strip() == "Code"]
    system_columns = [i for i, name in enumerate(header) if name.strip() == "Code System"]
    display_columns = [i for i, name in enumerate(header) if name.strip() == "Display"]
    target_code, target_system = code_columns[1], system_columns[1]
    target_display = display_columns[-1] if display_columns else None
    mapping: dict[str, tuple[str, str, str]] = {}
    for row in rows[2:]:
        if len(row) <= target_system:
            continue
        source = row[0].replace("\xa0", " ").strip()
        code = row[target_code].replace("\xa0", " ").strip()
        if not source or not code:
            continue
        display = row[target_display].strip() if target_display is not None else ""
        if not display and not header[target_code + 1].strip():
            display = row[target_code + 1].strip()  # some sheets put it under a blank header
        # "L,M,N" lists several v2 codes mapped alike.
        sources = (
            [s.strip() for s in source.split(",")]
            if "," in source and " " not in source
            else [source]
        )
        for key in sources:
            mapping.setdefault(key, (code, display, row[target_system].strip()))
    return mapping


def main(folder: str) -> None:
    """Write the generated module next to the translation code."""
    base = Path(folder)
    sheets = sorted(
        p.name.removeprefix("HL7 Concept Map_ ").removesuffix(" - Sheet1.csv")
        for p in base.glob("HL7 Concept Map_ * - Sheet1.csv")
    )
    out = [
        "# ruff: noqa: E501, RUF001 - generated data: long display texts, typographic quotes",
        '"""Concept maps of the HL7 v2-to-FHIR implementation guide (generated: do not edit).',
        "",
        "Source: ../shared/corpus/mappings/v2-to-fhir/codesystems/*.csv (HL7 v2-to-FHIR IG,",
        "Apache-2.0), every sheet, extracted by ``tests/tools/extract_concept_maps.py``.",
        "Each map is v2 code -> (FHIR code, display, code system); ``BY_SHEET`` finds a",
        "map by its IG sheet name.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "ConceptMap = dict[str, tuple[str, str, str]]",
        "",
    ]
    names = {}
    for sheet in sheets:
        name = constant_name(sheet)
        names[sheet] = name
        mapping = read_map(base / f"HL7 Concept Map_ {sheet} - Sheet1.csv")
        out.append(f"# {sheet}")
        out.append(f"{name}: ConceptMap = {{")
        for source, target in sorted(mapping.items()):
            out.append(f"    {source!r}: {target!r},")
        out.append("}")
        out.append("")
    out.append("# Names used by the translation code before every sheet was generated.")
    for alias, sheet in ALIASES.items():
        if names[sheet] != alias:
            out.append(f"{alias} = {names[sheet]}")
    out.append("")
    out.append("BY_SHEET: dict[str, ConceptMap] = {")
    for sheet, name in names.items():
        out.append(f"    {sheet!r}: {name},")
    out.append("}")
    out.append("")
    output = Path(__file__).resolve().parents[2] / "adapters" / "translate" / "concept_maps.py"
    output.write_text("\n".join(out), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
