"""Regenerate ``adapters/translate/concept_maps.py`` from the v2-to-FHIR IG's concept maps.

The HL7 v2-to-FHIR implementation guide publishes its vocabulary mappings as
CSV sheets (../shared/corpus/mappings/v2-to-fhir/codesystems/, Apache-2.0).
carebroker encodes the ones it uses as a Python module so the translation
package stays pure (no file I/O at run time) and the mapping is reviewable in
a diff. Run from the repository root::

    python -m tests.tools.extract_concept_maps ../shared/corpus/mappings/v2-to-fhir/codesystems
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

# IG sheet name -> name used in carebroker's code.
MAPS = {
    "AdministrativeSex": "administrative_sex",
    "MaritalStatus": "marital_status",
    "ResultStatus[Non-Queries]": "result_status",
    "ObservationResultStatusCodesInterpretation": "observation_status",
    "InterpretationCodes": "interpretation",
    "OrderControlCode[ServiceRequest.status]": "order_control_status",
    "OrderStatus": "order_status",
    "PatientClass[EncounterClass]": "patient_class",
    "PatientClass[EncounterStatus]": "patient_class_status",
    "Event[EncounterStatus]": "event_encounter_status",
    "FillerStatusCodes[Appointment]": "appointment_status",
    "NameType": "name_type",
    "TelecommunicationUseCode": "telecom_use",
    "TelecommunicationEquipmentType": "telecom_equipment",
    "AddressType[Use]": "address_use",
    "AddressType[Type]": "address_type",
    "ExtendedPriorityCodes": "priority",
    "DocumentConfidentialityStatus": "document_confidentiality",
    "IdentifierType": "identifier_type",
    "Relationship": "relationship",
    "EventType": "event_type",
    "DiagnosticServiceSectionID": "diagnostic_service_section",
    "AllergySeverity[AllergyIntolerance.criticality]": "allergy_criticality",
    "AllergenType[AllergyIntoleranceCategory]": "allergy_category",
    "ProcessingID": "processing_id",
    "YesNoIndicator": "yes_no",
}


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
        mapping.setdefault(source, (code, display, row[target_system].strip()))
    return mapping


def main(folder: str) -> None:
    """Write the generated module next to the translation code."""
    base = Path(folder)
    out = [
        "# ruff: noqa: E501, RUF001 - generated data: long display texts, typographic quotes",
        '"""Concept maps of the HL7 v2-to-FHIR implementation guide (generated: do not edit).',
        "",
        "Source: ../shared/corpus/mappings/v2-to-fhir/codesystems/*.csv (HL7 v2-to-FHIR IG,",
        "Apache-2.0), extracted by ``tests/tools/extract_concept_maps.py``. Each map is",
        "v2 code -> (FHIR code, display, code system).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "ConceptMap = dict[str, tuple[str, str, str]]",
        "",
    ]
    for sheet, name in MAPS.items():
        mapping = read_map(base / f"HL7 Concept Map_ {sheet} - Sheet1.csv")
        out.append(f"# {sheet}")
        out.append(f"{name.upper()}: ConceptMap = {{")
        for source, target in sorted(mapping.items()):
            out.append(f"    {source!r}: {target!r},")
        out.append("}")
        out.append("")
    target = Path(__file__).resolve().parents[2] / "adapters" / "translate" / "concept_maps.py"
    target.write_text("\n".join(out), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
