"""Name the parts of an HL7 v2 message for people: segments, fields and components labelled.

The message page shows ``PID-5 Patient Name`` and ``PID-5.1 Family Name``
instead of a bare pipe-delimited line. The names are the standard's, taken
from hl7apy's copy of the HL7 v2 reference tables (v2.1 to v2.8.2) for the
message's own version (MSH-12); a version hl7apy does not know is read as
2.5, and a local Z-segment or a field past the standard's last has no name
(it is still shown, by position). Field numbering follows HL7 v2.5.1 §2.5:
MSH-1 is the field separator itself, MSH-2 the encoding characters.

Pure (no I/O): the console's content endpoint calls :func:`label_message` on
text it has already decoded. Only fields with a value are listed.
"""

from __future__ import annotations

import functools

from hl7apy import load_reference
from hl7apy.exceptions import ChildNotFound, UnsupportedVersion
from pydantic import BaseModel, ConfigDict, Field

from adapters.hl7v2.er7 import Message, Segment, unescape

FALLBACK_VERSION = "2.5"
_HEADERS = frozenset({"MSH", "BHS", "FHS"})
# Segment names are not in hl7apy's tables; these are the standard's (v2.5.1 ch. 2-15)
# for the segments the corpus and French profiles use.
SEGMENTS = {
    "AIG": "Appointment Information - General Resource",
    "AIL": "Appointment Information - Location Resource",
    "AIP": "Appointment Information - Personnel Resource",
    "AIS": "Appointment Information",
    "AL1": "Patient Allergy Information",
    "BHS": "Batch Header",
    "BTS": "Batch Trailer",
    "CTD": "Contact Data",
    "DG1": "Diagnosis",
    "ERR": "Error",
    "EVN": "Event Type",
    "FHS": "File Header",
    "FTS": "File Trailer",
    "GT1": "Guarantor",
    "IN1": "Insurance",
    "IN2": "Insurance Additional Information",
    "MRG": "Merge Patient Information",
    "MSA": "Message Acknowledgment",
    "MSH": "Message Header",
    "NK1": "Next of Kin / Associated Parties",
    "NTE": "Notes and Comments",
    "OBR": "Observation Request",
    "OBX": "Observation/Result",
    "ORC": "Common Order",
    "PD1": "Patient Additional Demographic",
    "PID": "Patient Identification",
    "PR1": "Procedures",
    "PRD": "Provider Data",
    "PRT": "Participation Information",
    "PV1": "Patient Visit",
    "PV2": "Patient Visit - Additional Information",
    "RF1": "Referral Information",
    "RGS": "Resource Group",
    "ROL": "Role",
    "SCH": "Scheduling Activity Information",
    "SFT": "Software Segment",
    "SPM": "Specimen",
    "TQ1": "Timing/Quantity",
    "TXA": "Transcription Document Header",
    "UAC": "User Authentication Credential",
}
# Words the reference writes in capitals that stay so; everything else is title case.
_ACRONYMS = frozenset({"ID", "HL7", "SSN", "DEA", "OID", "URI", "II", "III", "XML", *SEGMENTS})


class Component(BaseModel):
    """One valued component of a field repetition."""

    position: str = Field(description="As the standard writes it: PID-5.1.")
    name: str
    value: str = Field(description="Decoded; subcomponents are left as written (&).")


class LabelledField(BaseModel):
    """One valued repetition of a field, with its name and its components."""

    position: str = Field(description="PID-5, or PID-3[2] for a second repetition.")
    name: str = Field(description="The standard's name, empty when it has none (Z-segments).")
    datatype: str
    value: str = Field(description="Decoded when it is one value; as written (ER7) otherwise.")
    components: list[Component] = Field(default_factory=list)


class LabelledSegment(BaseModel):
    """One segment and its valued fields."""

    model_config = ConfigDict(hide_input_in_errors=True)

    name: str
    description: str
    fields: list[LabelledField]


def title(reference_name: str) -> str:
    """Turn a reference name (``PATIENT_NAME``) into a label (``Patient Name``)."""
    words = reference_name.replace("_E_G_", "_e.g._").split("_")
    return " ".join(w if w in _ACRONYMS or w == "e.g." else w.capitalize() for w in words if w)


@functools.lru_cache(maxsize=8192)
def field_reference(version: str, segment: str, number: int) -> tuple[str, str, tuple[str, ...]]:
    """Return (name, datatype, component names) of a field, or empty ones when unknown."""
    for candidate in (version, FALLBACK_VERSION):
        try:
            ref = load_reference(f"{segment}_{number}", "Field", candidate)
        except UnsupportedVersion:
            continue
        except ChildNotFound:
            return "", "", ()
        kind, children, datatype, name = ref[0], ref[1], ref[2], ref[3]
        components = tuple(title(child[1][3]) for child in children) if kind == "sequence" else ()
        return title(name), datatype or "", components
    return "", "", ()


def describe_segment(name: str) -> str:
    """Return a segment's standard name; Z-segments are local ones."""
    if name.startswith("Z"):
        return "Local segment"
    return SEGMENTS.get(name, "")


def label_segment(segment: Segment, version: str) -> LabelledSegment:
    """Label one segment's valued fields, repetition by repetition."""
    enc = segment.enc
    fields: list[LabelledField] = []
    for number in range(1, len(segment.fields)):
        raw = segment.field(number)
        if not raw:
            continue
        name, datatype, component_names = field_reference(version, segment.name, number)
        position = f"{segment.name}-{number}"
        if segment.name in _HEADERS and number <= 2:
            fields.append(LabelledField(position=position, name=name, datatype=datatype, value=raw))
            continue
        for index, repetition in enumerate(segment.repetitions(number), start=1):
            if not repetition:
                continue
            where = position if index == 1 else f"{position}[{index}]"
            parts = repetition.split(enc.component)
            components = []
            if len(parts) > 1:
                for n, part in enumerate(parts, start=1):
                    if not part:
                        continue
                    label = component_names[n - 1] if n <= len(component_names) else ""
                    value = part if enc.subcomponent in part else unescape(part, enc)
                    components.append(Component(position=f"{where}.{n}", name=label, value=value))
            single = len(parts) == 1 and enc.subcomponent not in repetition
            fields.append(
                LabelledField(
                    position=where,
                    name=name,
                    datatype=datatype,
                    value=unescape(repetition, enc) if single else repetition,
                    components=components,
                )
            )
    return LabelledSegment(
        name=segment.name, description=describe_segment(segment.name), fields=fields
    )


def label_message(text: str, limit: int | None = None) -> list[LabelledSegment]:
    """Label every segment of an ER7 message (up to ``limit`` segments).

    Raises ``broker.errors.MessageError`` when the text is not ER7 (no MSH
    delimiters to read); the caller then shows the text as it is.
    """
    message = Message(text)
    version = message.version or FALLBACK_VERSION
    segments = list(message)
    if limit is not None:
        segments = segments[:limit]
    return [label_segment(s, version) for s in segments]
