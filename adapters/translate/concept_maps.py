# ruff: noqa: E501, RUF001 - generated data: long display texts, typographic quotes
"""Concept maps of the HL7 v2-to-FHIR implementation guide (generated: do not edit).

Source: ../shared/corpus/mappings/v2-to-fhir/codesystems/*.csv (HL7 v2-to-FHIR IG,
Apache-2.0), extracted by ``tests/tools/extract_concept_maps.py``. Each map is
v2 code -> (FHIR code, display, code system).
"""

from __future__ import annotations

ConceptMap = dict[str, tuple[str, str, str]]

# AdministrativeSex
ADMINISTRATIVE_SEX: ConceptMap = {
    "A": ("other", "Other", "http://hl7.org/fhir/administrative-gender"),
    "F": ("female", "Female", "http://hl7.org/fhir/administrative-gender"),
    "M": ("male", "Male", "http://hl7.org/fhir/administrative-gender"),
    "N": ("other", "Other", "http://hl7.org/fhir/administrative-gender"),
    "O": ("other", "Other", "http://hl7.org/fhir/administrative-gender"),
    "U": ("unknown", "Unknown", "http://hl7.org/fhir/administrative-gender"),
}

# MaritalStatus
MARITAL_STATUS: ConceptMap = {
    "A": ("L", "Legally Separated", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "B": ("U", "unmarried", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "C": ("C", "Common Law", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "D": ("D", "Divorced", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "E": ("L", "Legally Separated", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "G": ("T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "I": ("I", "Interlocutory", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "M": ("M", "Married", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "N": ("A", "Annulled", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "O": ("OTH", "Other", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
    "P": ("T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "R": ("T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "S": ("S", "Never Married", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "T": ("NAVU", "Not available", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
    "U": ("UNK", "Unknown", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
    "W": ("W", "Widowed", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
}

# ResultStatus[Non-Queries]
RESULT_STATUS: ConceptMap = {
    "C": ("corrected", "Corrected", "http://hl7.org/fhir/diagnostic-report-status"),
    "F": ("final", "Final", "http://hl7.org/fhir/diagnostic-report-status"),
    "I": ("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "O": ("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "P": ("preliminary", "Preliminary", "http://hl7.org/fhir/diagnostic-report-status"),
    "R": ("partial", "Partial", "http://hl7.org/fhir/diagnostic-report-status"),
    "S": ("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "X": ("cancelled", "Cancelled", "http://hl7.org/fhir/diagnostic-report-status"),
}

# ObservationResultStatusCodesInterpretation
OBSERVATION_STATUS: ConceptMap = {
    "A": ("amended", "Amended", "http://hl7.org/fhir/observation-status"),
    "C": ("corrected", "Corrected", "http://hl7.org/fhir/observation-status"),
    "D": ("entered-in-error", "Entered in Error", "http://hl7.org/fhir/observation-status"),
    "F": ("final", "Final", "http://hl7.org/fhir/observation-status"),
    "P": ("preliminary", "Preliminary", "http://hl7.org/fhir/observation-status"),
    "W": ("entered-in-error", "Entered in Error", "http://hl7.org/fhir/observation-status"),
    "X": ("cancelled", "", "http://hl7.org/fhir/observation-status"),
}

# InterpretationCodes
INTERPRETATION: ConceptMap = {
    "<": (
        "<",
        "Off scale low",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    ">": (
        ">",
        "Off scale high",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "A": ("A", "Abnormal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "AA": (
        "AA",
        "Critical abnormal",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "B": ("B", "Better", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "CAR": ("CAR", "Carrier", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "D": (
        "D",
        "Significant change down",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "DET": (
        "DET",
        "Detected",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "E": ("E", "Equivocal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "EX": (
        "EX",
        "outside threshold",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "EXP": (
        "EXP",
        "Expected",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "H": ("H", "High", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "HH": (
        "HH",
        "Critical high",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "HU": (
        "HU",
        "Significantly high",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "I": (
        "I",
        "Intermediate",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "IE": (
        "IE",
        "Insufficient evidence",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "IND": (
        "IND",
        "Indeterminate",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "L": ("L", "Low", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "LL": (
        "LL",
        "Critical low",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "LU": (
        "LU",
        "Significantly low",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "MS": (
        "MS",
        "moderately susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "N": ("N", "Normal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "NCL": (
        "NCL",
        "No CLSI defined breakpoint",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "ND": (
        "ND",
        "Not detected",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "NEG": (
        "NEG",
        "Negative",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "NR": (
        "NR",
        "Non-reactive",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "NS": (
        "NS",
        "Non-susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "POS": (
        "POS",
        "Positive",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "R": ("R", "Resistant", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "RR": ("RR", "Reactive", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "S": ("S", "Susceptible", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "SDD": (
        "SDD",
        "Susceptible-dose dependent",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "SYN-R": (
        "SYN-R",
        "Synergy - resistant",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "SYN-S": (
        "SYN-S",
        "Synergy - susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "U": (
        "U",
        "Significant change up",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "UNE": (
        "UNE",
        "Unexpected",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "VS": (
        "VS",
        "very susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "W": ("W", "Worse", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"),
    "WR": (
        "WR",
        "Weakly reactive",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
}

# OrderControlCode[ServiceRequest.status]
ORDER_CONTROL_STATUS: ConceptMap = {
    "AF": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "CA": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "CR": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DC": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DF": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DR": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "FU": ("completed", "Completed", "http://hl7.org/fhir/request-status"),
    "HD": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "HR": ("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "NW": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "OC": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "OD": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "OH": ("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "OK": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "PR": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "PY": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "RL": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "RO": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "RQ": ("active", "Active", "http://hl7.org/fhir/request-status"),
}

# OrderStatus
ORDER_STATUS: ConceptMap = {
    "CA": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "CM": ("completed", "Completed", "http://hl7.org/fhir/request-status"),
    "DC": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "ER": ("entered-in-error", "Entered in Error", "http://hl7.org/fhir/request-status"),
    "HD": ("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "IP": ("active", "Active", "http://hl7.org/fhir/request-status"),
    "RP": ("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "SC": ("active", "Active", "http://hl7.org/fhir/request-status"),
}

# PatientClass[EncounterClass]
PATIENT_CLASS: ConceptMap = {
    "B": ("B", "Obstetrics", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "C": ("C", "Commercial Account", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "E": ("EMER", "emergency", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "I": ("IMP", "inpatient encounter", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "N": ("N", "Not Applicable", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "O": ("AMB", "ambulatory", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "P": ("PRENC", "pre-admission", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "R": ("R", "Recurring patient", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "U": ("U", "Unknown", "http://terminology.hl7.org/CodeSystem/v2-0004"),
}

# PatientClass[EncounterStatus]
PATIENT_CLASS_STATUS: ConceptMap = {
    "B": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "C": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "E": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "I": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "N": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "O": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "P": ("planned", "", "http://hl7.org/fhir/encounter-status"),
    "R": ("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "U": ("unknown", "", "http://hl7.org/fhir/encounter-status"),
}

# Event[EncounterStatus]
EVENT_ENCOUNTER_STATUS: ConceptMap = {
    "A01": ("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
    "A02": ("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
    "A03": ("finished", "Finished", "http://hl7.org/fhir/encounter-status"),
    "A04": ("planned", "Planned", "http://hl7.org/fhir/encounter-status"),
    "A05": ("planned", "Planned", "http://hl7.org/fhir/encounter-status"),
    "A08": ("unknown", "Unknown", "http://hl7.org/fhir/encounter-status"),
    "A11": ("cancelled", "Cancelled", "http://hl7.org/fhir/encounter-status"),
    "A13": ("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
}

# FillerStatusCodes[Appointment]
APPOINTMENT_STATUS: ConceptMap = {
    "Booked": ("booked", "Booked", "http://hl7.org/fhir/appointmentstatus"),
    "Cancelled": ("cancelled", "Cancelled", "http://hl7.org/fhir/appointmentstatus"),
    "Complete": ("fulfilled", "Fulfilled", "http://hl7.org/fhir/appointmentstatus"),
    "Deleted": ("entered-in-error", "Entered In Error", "http://hl7.org/fhir/appointmentstatus"),
    "Noshow": ("noshow", "No Show", "http://hl7.org/fhir/appointmentstatus"),
    "Pending": ("pending", "Pending", "http://hl7.org/fhir/appointmentstatus"),
    "Started": ("checked-in", "Checked In", "http://hl7.org/fhir/appointmentstatus"),
    "Waitlist": ("waitlist", "Waitlisted", "http://hl7.org/fhir/appointmentstatus"),
}

# NameType
NAME_TYPE: ConceptMap = {
    "BAD": ("old", "Old", "http://hl7.org/fhir/name-use"),
    "D": ("usual", "Usual", "http://hl7.org/fhir/name-use"),
    "L": ("official", "Official", "http://hl7.org/fhir/name-use"),
    "M": ("maiden", "Name changed for Marriage", "http://hl7.org/fhir/name-use"),
    "MSK": ("anonymous", "Anonymous", "http://hl7.org/fhir/name-use"),
    "N": ("nickname", "Nickname", "http://hl7.org/fhir/name-use"),
    "NAV": ("temp", "temp", "http://hl7.org/fhir/name-use"),
    "R": ("official", "Official", "http://hl7.org/fhir/name-use"),
    "TEMP": ("temp", "Temp", "http://hl7.org/fhir/name-use"),
}

# TelecommunicationUseCode
TELECOM_USE: ConceptMap = {
    "PRN": ("home", "Home", "http://hl7.org/fhir/contact-point-use"),
    "PRS": ("mobile", "Mobile", "http://hl7.org/fhir/contact-point-use"),
    "WPN": ("work", "Work", "http://hl7.org/fhir/contact-point-use"),
}

# TelecommunicationEquipmentType
TELECOM_EQUIPMENT: ConceptMap = {
    "BP": ("pager", "Pager", "http://hl7.org/fhir/contact-point-system"),
    "CP": ("mobile", "Mobile", "http://hl7.org/fhir/contact-point-use"),
    "FX": ("fax", "Fax", "http://hl7.org/fhir/contact-point-system"),
    "Internet": ("email", "email", "http://hl7.org/fhir/contact-point-system"),
    "MD": ("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "PH": ("phone", "Phone", "http://hl7.org/fhir/contact-point-system"),
    "SAT": ("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "TDD": ("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "TTY": ("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "X.400": ("email", "email", "http://hl7.org/fhir/contact-point-system"),
}

# AddressType[Use]
ADDRESS_USE: ConceptMap = {
    "B": ("work", "Work", "http://hl7.org/fhir/address-use"),
    "BA": ("old", "Old / Incorrect", "http://hl7.org/fhir/address-use"),
    "BI": ("billing", "Billing", "http://hl7.org/fhir/address-use"),
    "C": ("temp", "Temporary", "http://hl7.org/fhir/address-use"),
    "H": ("home", "Home", "http://hl7.org/fhir/address-use"),
    "O": ("work", "Work", "http://hl7.org/fhir/address-use"),
}

# AddressType[Type]
ADDRESS_TYPE: ConceptMap = {
    "M": ("postal", "Postal", "http://hl7.org/fhir/address-type"),
    "SH": ("postal", "Postal", "http://hl7.org/fhir/address-type"),
}

# ExtendedPriorityCodes
PRIORITY: ConceptMap = {
    "A": ("asap", "ASAP", "http://hl7.org/fhir/request-priority"),
    "R": ("routine", "Routine", "http://hl7.org/fhir/request-priority"),
    "S": ("stat", "STAT", "http://hl7.org/fhir/request-priority"),
}

# DocumentConfidentialityStatus
DOCUMENT_CONFIDENTIALITY: ConceptMap = {
    "R": ("R", "Restricted", "http://terminology.hl7.org/CodeSystem/v2-0272"),
    "U": ("U", "Usual control", "http://terminology.hl7.org/CodeSystem/v2-0272"),
    "V": ("V", "Very restricted", "http://terminology.hl7.org/CodeSystem/v2-0272"),
}

# IdentifierType
IDENTIFIER_TYPE: ConceptMap = {
    "ACSN": ("ACSN", "Accession ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "AM": ("AM", "American Express", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "AMA": (
        "AMA",
        "American Medical Association Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "AN": ("AN", "Account number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ANC": ("ANC", "Account number Creditor", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "AND": ("AND", "Account number debitor", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ANON": ("ANON", "Anonymous identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ANT": ("ANT", "Temporary Account Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "APRN": (
        "APRN",
        "Advanced Practice Registered Nurse number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "ASID": ("ASID", "Ancestor Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BA": ("BA", "Bank Account Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BC": ("BC", "Bank Card Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BCT": ("BCT", "Birth Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BR": ("BR", "Birth registry number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BRN": ("BRN", "Breed Registry Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BSNR": (
        "BSNR",
        "Primary physician office number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "CC": ("CC", "Cost Center number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "CONM": ("CONM", "Change of Name Document", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "CY": ("CY", "County number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "CZ": ("CZ", "Citizenship Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DDS": ("DDS", "Dentist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DEA": (
        "DEA",
        "Drug Enforcement Administration registration number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "DFN": (
        "DFN",
        "Drug Furnishing or prescriptive authority Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "DI": ("DI", "Diner’s Club card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DL": ("DL", "Driver’s license number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DN": ("DN", "Doctor number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DO": ("DO", "Osteopathic License number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DP": ("DP", "Diplomatic Passport", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DPM": ("DPM", "Podiatrist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DR": ("DR", "Donor Registration Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DS": ("DS", "Discover Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "EI": ("EI", "Employee number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "EN": ("EN", "Employer number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ESN": ("ESN", "Staff Enterprise Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "FI": ("FI", "Facility ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "GI": ("GI", "Guarantor internal identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "GL": ("GL", "General ledger number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "GN": ("GN", "Guarantor external identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "HC": ("HC", "Health Card Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "IND": ("IND", "Indigenous/Aboriginal", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "JHN": (
        "JHN",
        "Jurisdictional health number (Canada)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "LACSN": ("LACSN", "Laboratory Accession ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "LANR": ("LANR", "Lifelong physician number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "LI": ("LI", "Labor and industries number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "LN": ("LN", "License number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "LR": ("LR", "Local Registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MA": ("MA", "Patient Medicaid number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MB": ("MB", "Member Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MC": ("MC", "Patient’s Medicare number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MCD": ("MCD", "Practitioner Medicaid number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MCN": ("MCN", "Microchip Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MCR": ("MCR", "Practitioner Medicare number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MCT": ("MCT", "Marriage Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MD": ("MD", "Medical License number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MI": ("MI", "Military ID number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MR": ("MR", "Medical record number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MRT": (
        "MRT",
        "Temporary Medical Record Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "MS": ("MS", "MasterCard", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "NBSNR": (
        "NBSNR",
        "Secondary physician office number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NCT": ("NCT", "Naturalization Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "NE": ("NE", "National employer identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "NH": (
        "NH",
        "National Health Plan Identifier",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NI": (
        "NI",
        "National unique individual identifier",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NII": (
        "NII",
        "National Insurance Organization Identifier",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NIIP": (
        "NIIP",
        "National Insurance Payor Identifier (Payor)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NNxxx": (
        "NNxxx",
        "National Person Identifier where the xxx is the ISO table 3166 3-character (alphabetic) country code",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NP": ("NP", "Nurse practitioner number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "NPI": ("NPI", "National provider identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "OD": ("OD", "Optometrist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PA": ("PA", "Physician Assistant number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PC": ("PC", "Parole Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PCN": (
        "PCN",
        "Penitentiary/correctional institution Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PE": (
        "PE",
        "Living Subject Enterprise Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PEN": ("PEN", "Pension Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PI": ("PI", "Patient internal identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PN": ("PN", "Person number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PNT": (
        "PNT",
        "Temporary Living Subject Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PPIN": (
        "PPIN",
        "Medicare/CMS Performing Provider Identification Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PPN": ("PPN", "Passport number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PRC": (
        "PRC",
        "Permanent Resident Card Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PRN": ("PRN", "Provider number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PT": ("PT", "Patient external identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "QA": ("QA", "QA number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RI": ("RI", "Resource identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RN": ("RN", "Registered Nurse Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RPH": ("RPH", "Pharmacist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RR": ("RR", "Railroad Retirement number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RRI": ("RRI", "Regional registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RRP": ("RRP", "Railroad Retirement Provider", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SID": ("SID", "Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SL": ("SL", "State license", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SN": ("SN", "Subscriber Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SP": ("SP", "Study Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SR": ("SR", "State registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SS": ("SS", "Social Security number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "TAX": ("TAX", "Tax ID number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "TN": ("TN", "Treaty Number/ (Canada)", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "TPR": (
        "TPR",
        "Temporary Permanent Resident (Canada)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "U": ("U", "Unspecified identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "UPIN": (
        "UPIN",
        "Medicare/CMS (formerly HCFA)’s Universal Physician Identification numbers",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "USID": ("USID", "Unique Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "VN": ("VN", "Visit number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "VP": ("VP", "Visitor Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "VS": ("VS", "VISA", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "WC": ("WC", "WIC identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "WCN": ("WCN", "Workers’ Comp Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "WP": ("WP", "Work Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "XX": ("XX", "Organization identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
}

# Relationship
RELATIONSHIP: ConceptMap = {
    "ASC": ("ASC", "Associate", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "BRO": ("BRO", "brother", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "CGV": ("CGV", "Care giver", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "CHD": ("CHILD", "child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "DEP": ("DEP", "Handicapped dependent", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "DOM": ("SIGOTHR", "significant other", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "EMC": ("C", "Emergency Contact", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "EME": ("EME", "Employee", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "EMR": ("E", "Employer", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "EXF": ("EXT", "extended family member", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FCH": ("CHLDFOST", "foster child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FND": ("FRND", "unrelated friend", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FTH": ("FTH", "father", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "GCH": ("GRNDCHILD", "grandchild", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "GRD": ("GRD", "Guardian", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "GRP": ("GRPRN", "grandparent", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "MGR": ("MGR", "Manager", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "MTH": ("MTH", "mother", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "NCH": ("NCHILD", "natural child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "NON": ("NON", "None", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "OAD": ("OAD", "Other adult", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "OTH": ("O", "Other", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "OWN": ("OWN", "Owner", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "PAR": ("PRN", "parent", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SCH": ("STPCHLD", "step child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SEL": ("ONESELF", "self", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SIB": ("SIB", "sibling", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SIS": ("SIS", "sister", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SPO": ("SPS", "spouse", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "TRA": ("TRA", "Trainer", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "UNK": ("U", "Unknown", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "WRD": ("WRD", "Ward of court", "http://terminology.hl7.org/CodeSystem/v2-0063"),
}

# EventType
EVENT_TYPE: ConceptMap = {
    "A01": (
        "A01",
        "ADT/ACK - Admit/visit notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A02": ("A02", "ADT/ACK - Transfer a patient", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A03": (
        "A03",
        "ADT/ACK -  Discharge/end visit",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A04": (
        "A04",
        "ADT/ACK -  Register a patient",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A05": (
        "A05",
        "ADT/ACK -  Pre-admit a patient",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A06": (
        "A06",
        "ADT/ACK -  Change an outpatient to an inpatient",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A07": (
        "A07",
        "ADT/ACK -  Change an inpatient to an outpatient",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A08": (
        "A08",
        "ADT/ACK -  Update patient information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A09": (
        "A09",
        "ADT/ACK -  Patient departing - tracking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A10": (
        "A10",
        "ADT/ACK -  Patient arriving - tracking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A11": (
        "A11",
        "ADT/ACK -  Cancel admit/visit notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A12": ("A12", "ADT/ACK -  Cancel transfer", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A13": (
        "A13",
        "ADT/ACK -  Cancel discharge/end visit",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A14": ("A14", "ADT/ACK -  Pending admit", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A15": ("A15", "ADT/ACK -  Pending transfer", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A16": ("A16", "ADT/ACK -  Pending discharge", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A17": ("A17", "ADT/ACK -  Swap patients", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A18": (
        "A18",
        "ADT/ACK -  Merge patient information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A19": ("A19", "QRY/ADR -  Patient query", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A20": ("A20", "ADT/ACK -  Bed status update", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A21": (
        "A21",
        'ADT/ACK -  Patient goes on a "leave of absence"',
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A22": (
        "A22",
        'ADT/ACK -  Patient returns from a "leave of absence"',
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A23": (
        "A23",
        "ADT/ACK -  Delete a patient record",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A24": (
        "A24",
        "ADT/ACK -  Link patient information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A25": (
        "A25",
        "ADT/ACK -  Cancel pending discharge",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A26": (
        "A26",
        "ADT/ACK -  Cancel pending transfer",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A27": (
        "A27",
        "ADT/ACK -  Cancel pending admit",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A28": (
        "A28",
        "ADT/ACK -  Add person information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A29": (
        "A29",
        "ADT/ACK -  Delete person information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A30": (
        "A30",
        "ADT/ACK -  Merge person information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A31": (
        "A31",
        "ADT/ACK -  Update person information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A32": (
        "A32",
        "ADT/ACK -  Cancel patient arriving - tracking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A33": (
        "A33",
        "ADT/ACK -  Cancel patient departing - tracking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A34": (
        "A34",
        "ADT/ACK -  Merge patient information - patient ID only",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A35": (
        "A35",
        "ADT/ACK -  Merge patient information - account number only",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A36": (
        "A36",
        "ADT/ACK -  Merge patient information - patient ID and account number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A37": (
        "A37",
        "ADT/ACK -  Unlink patient information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A38": ("A38", "ADT/ACK - Cancel pre-admit", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A39": (
        "A39",
        "ADT/ACK - Merge person - patient ID",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A40": (
        "A40",
        "ADT/ACK - Merge patient - patient identifier list",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A41": (
        "A41",
        "ADT/ACK - Merge account - patient account number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A42": (
        "A42",
        "ADT/ACK - Merge visit - visit number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A43": (
        "A43",
        "ADT/ACK - Move patient information - patient identifier list",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A44": (
        "A44",
        "ADT/ACK - Move account information - patient account number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A45": (
        "A45",
        "ADT/ACK - Move visit information - visit number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A46": ("A46", "ADT/ACK - Change patient ID", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "A47": (
        "A47",
        "ADT/ACK - Change patient identifier list",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A48": (
        "A48",
        "ADT/ACK - Change alternate patient ID",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A49": (
        "A49",
        "ADT/ACK - Change patient account number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A50": (
        "A50",
        "ADT/ACK - Change visit number",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A51": (
        "A51",
        "ADT/ACK - Change alternate visit ID",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A52": (
        "A52",
        "ADT/ACK - Cancel leave of absence for a patient",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A53": (
        "A53",
        "ADT/ACK - Cancel patient returns from a leave of absence",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A54": (
        "A54",
        "ADT/ACK - Change attending doctor",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A55": (
        "A55",
        "ADT/ACK - Cancel change attending doctor",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A60": (
        "A60",
        "ADT/ACK - Update allergy information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A61": (
        "A61",
        "ADT/ACK - Change consulting doctor",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "A62": (
        "A62",
        "ADT/ACK - Cancel change consulting doctor",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B01": (
        "B01",
        "PMU/ACK - Add personnel record",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B02": (
        "B02",
        "PMU/ACK - Update personnel record",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B03": (
        "B03",
        "PMU/ACK - Delete personnel re cord",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B04": (
        "B04",
        "PMU/ACK - Active practicing person",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B05": (
        "B05",
        "PMU/ACK - Deactivate practicing person",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B06": (
        "B06",
        "PMU/ACK - Terminate practicing person",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B07": (
        "B07",
        "PMU/ACK - Grant Certificate/Permission",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "B08": (
        "B08",
        "PMU/ACK - Revoke Certificate/Permission",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C01": (
        "C01",
        "CRM - Register a patient on a clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C02": (
        "C02",
        "CRM - Cancel a patient registration on clinical trial (for clerical mistakes only)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C03": (
        "C03",
        "CRM - Correct/update registration information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C04": (
        "C04",
        "CRM - Patient has gone off a clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C05": (
        "C05",
        "CRM - Patient enters phase of clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C06": (
        "C06",
        "CRM - Cancel patient entering a phase (clerical mistake)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C07": (
        "C07",
        "CRM - Correct/update phase information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C08": (
        "C08",
        "CRM - Patient has gone off phase of clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C09": (
        "C09",
        "CSU - Automated time intervals for reporting, like monthly",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C10": (
        "C10",
        "CSU - Patient completes the clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C11": (
        "C11",
        "CSU - Patient completes a phase of the clinical trial",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "C12": (
        "C12",
        "CSU - Update/correction of patient order/result information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "CNQ": ("CNQ", "Cancel Query", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E01": (
        "E01",
        "Submit HealthCare Services Invoice",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E02": (
        "E02",
        "Cancel HealthCare Services Invoice",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E03": (
        "E03",
        "HealthCare Services Invoice Status",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E04": (
        "E04",
        "Re-Assess HealthCare Services Invoice Request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E10": ("E10", "Edit/Adjudication Results", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E12": (
        "E12",
        "Request Additional Information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E13": (
        "E13",
        "Additional Information Response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E15": ("E15", "Payment/Remittance Advice", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E20": ("E20", "Submit Authorization Request", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E21": ("E21", "Cancel Authorization Request", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E22": ("E22", "Authorization Request Status", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E24": ("E24", "Authorization Response", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "E30": (
        "E30",
        "Submit Health Document related to Authorization Request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "E31": (
        "E31",
        "Cancel Health Document related to Authorization Request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I01": (
        "I01",
        "RQI/RPI - Request for insurance information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I02": (
        "I02",
        "RQI/RPL - Request/receipt of patient selection display list",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I03": (
        "I03",
        "RQI/RPR - Request/receipt of patient selection list",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I04": (
        "I04",
        "RQD/RPI - Request for patient demographic data",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I05": (
        "I05",
        "RQC/RCI - Request for patient clinical information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I06": (
        "I06",
        "RQC/RCL - Request/receipt of clinical data listing",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I07": (
        "I07",
        "PIN/ACK - Unsolicited insurance information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I08": (
        "I08",
        "RQA/RPA - Request for treatment authorization information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I09": (
        "I09",
        "RQA/RPA - Request for modification to an authorization",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I10": (
        "I10",
        "RQA/RPA - Request for resubmission of an authorization",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I11": (
        "I11",
        "RQA/RPA - Request for cancellation of an authorization",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I12": ("I12", "REF/RRI - Patient referral", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "I13": (
        "I13",
        "REF/RRI - Modify patient referral",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I14": (
        "I14",
        "REF/RRI - Cancel patient referral",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I15": (
        "I15",
        "REF/RRI - Request patient referral status",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I16": ("I16", "Collaborative Care Referral", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "I17": (
        "I17",
        "Modify Collaborative Care Referral",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I18": (
        "I18",
        "Cancel Collaborative Care Referral",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I19": (
        "I19",
        "Collaborative Care Query/Collaborative Care Query Update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I20": (
        "I20",
        "Asynchronous Collaborative Care Update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "I21": ("I21", "Collaborative Care Message", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "I22": (
        "I22",
        "Collaborative Care Fetch / Collaborative Care Information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "J01": (
        "J01",
        "QCN/ACK - Cancel query/acknowledge message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "J02": (
        "J02",
        "QSX/ACK - Cancel subscription/acknowledge message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K11": (
        "K11",
        "RSP - Segment pattern response in response to QBP^Q11",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K13": (
        "K13",
        "RTB - Tabular response in response to QBP^Q13",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K15": (
        "K15",
        "RDY - Display response in response to QBP^Q15",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K21": (
        "K21",
        "RSP - Get person demographics response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K22": (
        "K22",
        "RSP - Find candidates response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K23": (
        "K23",
        "RSP - Get corresponding identifiers response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K24": (
        "K24",
        "RSP - Allocate identifiers response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K25": (
        "K25",
        "RSP - Personnel Information by Segment Response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K31": (
        "K31",
        "RSP -Dispense History Response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K32": (
        "K32",
        "Find Candidates including Visit Information Response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K33": (
        "K33",
        "Get Donor Record Candidates Response Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "K34": (
        "K34",
        "Segment Pattern Response Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M01": (
        "M01",
        "MFN/MFK - Master file not otherwise specified",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M02": (
        "M02",
        "MFN/MFK - Master file - staff practitioner",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M03": (
        "M03",
        "MFN/MFK - Master file - test/observation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M04": (
        "M04",
        "MFN/MFK - Master files charge description",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M05": (
        "M05",
        "MFN/MFK - Patient location master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M06": (
        "M06",
        "MFN/MFK - Clinical study with phases and schedules master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M07": (
        "M07",
        "MFN/MFK - Clinical study without phases but with schedules master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M08": (
        "M08",
        "MFN/MFK - Test/observation (numeric) master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M09": (
        "M09",
        "MFN/MFK - Test/observation (categorical) master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M10": (
        "M10",
        "MFN/MFK - Test /observation batteries master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M11": (
        "M11",
        "MFN/MFK - Test/calculated observations master file",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M12": (
        "M12",
        "MFN/MFK - Master file notification message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M13": (
        "M13",
        "MFN/MFK - Master file notification - general",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M14": (
        "M14",
        "MFN/MFK - Master file notification - site defined",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M15": (
        "M15",
        "MFN/MFK - Inventory item master file notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M16": (
        "M16",
        "MFN/MFK - Master File Notification Inventory Item Enhanced",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "M17": ("M17", "DRG Master File Message", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "M18": (
        "M18",
        "MFN/MFK - Master file notification - Test/Observation (Payer)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "N01": (
        "N01",
        "NMQ/NMR - Application management query message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "N02": (
        "N02",
        "NMD/ACK - Application management data message (unsolicited)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O01": (
        "O01",
        "ORM - Order message (also RDE, RDS, RGV, RAS)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O02": (
        "O02",
        "ORR - Order response (also RRE, RRD, RRG, RRA)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O03": ("O03", "OMD - Diet order", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O04": (
        "O04",
        "ORD - Diet order acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O05": (
        "O05",
        "OMS - Stock requisition order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O06": (
        "O06",
        "ORS - Stock requisition acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O07": (
        "O07",
        "OMN - Non-stock requisition order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O08": (
        "O08",
        "ORN - Non-stock requisition acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O09": (
        "O09",
        "OMP - Pharmacy/treatment order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O10": (
        "O10",
        "ORP - Pharmacy/treatment order acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O11": (
        "O11",
        "RDE - Pharmacy/treatment encoded order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O12": (
        "O12",
        "RRE - Pharmacy/treatment encoded order acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O13": (
        "O13",
        "RDS - Pharmacy/treatment dispense",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O14": (
        "O14",
        "RRD - Pharmacy/treatment dispense acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O15": (
        "O15",
        "RGV - Pharmacy/treatment give",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O16": (
        "O16",
        "RRG - Pharmacy/treatment give acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O17": (
        "O17",
        "RAS - Pharmacy/treatment administration",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O18": (
        "O18",
        "RRA - Pharmacy/treatment administration acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O19": ("O19", "OMG - General clinical order", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O20": (
        "O20",
        "ORG/ORL - General clinical order response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O21": ("O21", "OML - Laboratory order", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O22": (
        "O22",
        "ORL - General laboratory order response message to any OML",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O23": ("O23", "OMI - Imaging order", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O24": (
        "O24",
        "ORI - Imaging order response message to any OMI",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O25": (
        "O25",
        "RDE - Pharmacy/treatment refill authorization request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O26": (
        "O26",
        "RRE - Pharmacy/Treatment Refill Authorization Acknowledgement",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O27": ("O27", "OMB - Blood product order", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O28": (
        "O28",
        "ORB - Blood product order acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O29": (
        "O29",
        "BPS - Blood product dispense status",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O30": (
        "O30",
        "BRP - Blood product dispense status acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O31": (
        "O31",
        "BTS - Blood product transfusion/disposition",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O32": (
        "O32",
        "BRT - Blood product transfusion/disposition acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O33": (
        "O33",
        "OML - Laboratory order for multiple orders related to a single specimen",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O34": (
        "O34",
        "ORL - Laboratory order response message to a multiple order related to single specimen OML",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O35": (
        "O35",
        "OML - Laboratory order for multiple orders related to a single container of a specimen",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O36": (
        "O36",
        "ORL - Laboratory order response message to a single container of a specimen OML",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O37": (
        "O37",
        "OPL - Population/Location-Based Laboratory Order Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O38": (
        "O38",
        "OPR - Population/Location-Based Laboratory Order Acknowledgment Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O39": (
        "O39",
        "Specimen shipment centric laboratory order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O40": (
        "O40",
        "Specimen Shipment Centric Laboratory Order Acknowledgment Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O41": (
        "O41",
        "DBC - Create Donor Record Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O42": (
        "O42",
        "DBU - Update Donor Record Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O43": (
        "O43",
        "General Order Message with Document Payload Acknowledgement Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O44": (
        "O44",
        "Donor Registration - Minimal Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O45": (
        "O45",
        "Donor Eligibility Observations Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O46": ("O46", "Donor Eligiblity Message", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O47": (
        "O47",
        "Donor Request to Collect Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O48": ("O48", "Donation Procedure Message", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O49": (
        "O49",
        "Pharmacy/Treatment Dispense Request Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O50": (
        "O50",
        "Pharmacy/Treatment Encoded Order Acknowledgment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O51": ("O51", "OSU – Order Status Update", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "O52": (
        "O52",
        "OSU – Order Status Update Acknowledgement",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O53": (
        "O53",
        "ORL - General Laboratory Order Acknowledgment Message (Patient Optional)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O54": (
        "O54",
        "ORL - Laboratory Order Acknowledgment Message  – Multiple Order Per Specimen (Patient Optional)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O55": (
        "O55",
        "ORL - Laboratory Order Acknowledgment Message  – Multiple Order Per Container of Specimen (Patient Optional)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O56": (
        "O56",
        "ORL - Specimen Shipment Centric Laboratory Order Acknowledgment Message (Patient Optional)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O57": (
        "O57",
        "OMQ- General Order Message with Document Payload",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O58": (
        "O58",
        "ORX - General Order Message with Document Payload Acknowledgement Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "O59": (
        "O59",
        "OML - Laboratory order for additional work up",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P01": (
        "P01",
        "BAR/ACK - Add patient accounts",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P02": (
        "P02",
        "BAR/ACK - Purge patient accounts",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P03": (
        "P03",
        "DFT/ACK - Post detail financial transaction",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P04": (
        "P04",
        "QRY/DSP - Generate bill and A/R statements",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P05": ("P05", "BAR/ACK - Update account", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "P06": ("P06", "BAR/ACK - End account", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "P07": (
        "P07",
        "PEX - Unsolicited initial individual product experience report",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P08": (
        "P08",
        "PEX - Unsolicited update individual product experience report",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P09": (
        "P09",
        "SUR - Summary product experience report",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P10": (
        "P10",
        "BAR/ACK -Transmit Ambulatory Payment  Classification(APC)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P11": (
        "P11",
        "DFT/ACK - Post Detail Financial Transactions - New",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "P12": (
        "P12",
        "BAR/ACK - Update Diagnosis/Procedure",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PC1": ("PC1", "PPR - PC/ problem add", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC2": ("PC2", "PPR - PC/ problem update", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC3": ("PC3", "PPR - PC/ problem delete", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC4": ("PC4", "QRY - PC/ problem query", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC5": ("PC5", "PRR - PC/ problem response", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC6": ("PC6", "PGL - PC/ goal add", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC7": ("PC7", "PGL - PC/ goal update", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC8": ("PC8", "PGL - PC/ goal delete", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PC9": ("PC9", "QRY - PC/ goal query", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PCA": ("PCA", "PPV - PC/ goal response", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "PCB": (
        "PCB",
        "PPP - PC/ pathway (problem-oriented) add",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCC": (
        "PCC",
        "PPP - PC/ pathway (problem-oriented) update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCD": (
        "PCD",
        "PPP - PC/ pathway (problem-oriented) delete",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCE": (
        "PCE",
        "QRY - PC/ pathway (problem-oriented) query",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCF": (
        "PCF",
        "PTR - PC/ pathway (problem-oriented) query response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCG": (
        "PCG",
        "PPG - PC/ pathway (goal-oriented) add",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCH": (
        "PCH",
        "PPG - PC/ pathway (goal-oriented) update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCJ": (
        "PCJ",
        "PPG - PC/ pathway (goal-oriented) delete",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCK": (
        "PCK",
        "QRY - PC/ pathway (goal-oriented) query",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "PCL": (
        "PCL",
        "PPT - PC/ pathway (goal-oriented) query response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q01": (
        "Q01",
        "QRY/DSR - Query sent for immediate response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q02": (
        "Q02",
        "QRY/QCK - Query sent for deferred response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q03": (
        "Q03",
        "DSR/ACK - Deferred response to a query",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q05": (
        "Q05",
        "UDM/ACK - Unsolicited display update message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q06": (
        "Q06",
        "OSQ/OSR - Query for order status",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q11": (
        "Q11",
        "QBP - Query by parameter requesting an RSP segment pattern response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q13": (
        "Q13",
        "QBP - Query by parameter requesting an  RTB - tabular response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q15": (
        "Q15",
        "QBP - Query by parameter requesting an RDY display response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q16": ("Q16", "QSB - Create subscription", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "Q17": (
        "Q17",
        "QVR - Query for previous events",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q21": (
        "Q21",
        "QBP - Get person demographics",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q22": ("Q22", "QBP - Find candidates", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "Q23": (
        "Q23",
        "QBP - Get corresponding identifiers",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q24": ("Q24", "QBP - Allocate identifiers", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "Q25": (
        "Q25",
        "QBP - Personnel Information by Segment Query",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q26": (
        "Q26",
        "ROR - Pharmacy/treatment order response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q27": (
        "Q27",
        "RAR - Pharmacy/treatment administration information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q28": (
        "Q28",
        "RDR - Pharmacy/treatment dispense information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q29": (
        "Q29",
        "RER - Pharmacy/treatment encoded order information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q30": (
        "Q30",
        "RGR - Pharmacy/treatment dose information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q31": ("Q31", "QBP Query Dispense history", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "Q32": (
        "Q32",
        "Find Candidates including Visit Information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q33": (
        "Q33",
        "QBP - Get Donor Record Candidates",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Q34": ("Q34", "QBP - Get Donor Record", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "R01": (
        "R01",
        "ORU/ACK - Unsolicited transmission of an observation message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R02": (
        "R02",
        "QRY - Query for results of observation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R04": (
        "R04",
        "ORF - Response to query; transmission of requested observation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R21": (
        "R21",
        "OUL - Unsolicited laboratory observation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R22": (
        "R22",
        "OUL - Unsolicited Specimen Oriented Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R23": (
        "R23",
        "OUL - Unsolicited Specimen Container Oriented Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R24": (
        "R24",
        "OUL - Unsolicited Order Oriented Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R25": (
        "R25",
        "OPU - Unsolicited Population/Location-Based Laboratory Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R26": (
        "R26",
        "OSM - Unsolicited Specimen Shipment Manifest Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R30": (
        "R30",
        "ORU - Unsolicited Point-Of-Care Observation Message Without Existing Order - Place An Order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R31": (
        "R31",
        "ORU - Unsolicited New Point-Of-Care Observation Message - Search For An Order",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R32": (
        "R32",
        "ORU - Unsolicited Pre-Ordered Point-Of-Care Observation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R33": (
        "R33",
        "ORA - Observation Report Acknowledgement",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R40": (
        "R40",
        "ORU - Unsolicited Report Alarm",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R41": (
        "R41",
        "Observation Report Alert Acknowledgement",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R42": (
        "R42",
        "ORU – Unsolicited Device Event Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "R43": (
        "R43",
        "ORU – Unsolicited Patient-Device Association Observation Message",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "ROR": (
        "ROR",
        "ROR - Pharmacy prescription order query response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S01": (
        "S01",
        "SRM/SRR - Request new appointment booking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S02": (
        "S02",
        "SRM/SRR - Request appointment rescheduling",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S03": (
        "S03",
        "SRM/SRR - Request appointment modification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S04": (
        "S04",
        "SRM/SRR - Request appointment cancellation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S05": (
        "S05",
        "SRM/SRR - Request appointment discontinuation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S06": (
        "S06",
        "SRM/SRR - Request appointment deletion",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S07": (
        "S07",
        "SRM/SRR - Request addition of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S08": (
        "S08",
        "SRM/SRR - Request modification of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S09": (
        "S09",
        "SRM/SRR - Request cancellation of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S10": (
        "S10",
        "SRM/SRR - Request discontinuation of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S11": (
        "S11",
        "SRM/SRR - Request deletion of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S12": (
        "S12",
        "SIU/ACK - Notification of new appointment booking",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S13": (
        "S13",
        "SIU/ACK - Notification of appointment rescheduling",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S14": (
        "S14",
        "SIU/ACK - Notification of appointment modification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S15": (
        "S15",
        "SIU/ACK - Notification of appointment cancellation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S16": (
        "S16",
        "SIU/ACK - Notification of appointment discontinuation",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S17": (
        "S17",
        "SIU/ACK - Notification of appointment deletion",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S18": (
        "S18",
        "SIU/ACK - Notification of addition of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S19": (
        "S19",
        "SIU/ACK - Notification of modification of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S20": (
        "S20",
        "SIU/ACK - Notification of cancellation of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S21": (
        "S21",
        "SIU/ACK - Notification of discontinuation of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S22": (
        "S22",
        "SIU/ACK - Notification of deletion of service/resource on appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S23": (
        "S23",
        "SIU/ACK - Notification of blocked schedule time slot(s)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S24": (
        "S24",
        'SIU/ACK - Notification of opened ("unblocked") schedule time slot(s)',
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S25": (
        "S25",
        "SQM/SQR - Schedule query message and response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S26": (
        "S26",
        "SIU/ACK Notification that patient did not show up for schedule appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S27": (
        "S27",
        "SIU/ACK - Broadcast Notification of Scheduled Appointments",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S28": (
        "S28",
        "SLR/SLS - Request new sterilization lot",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S29": (
        "S29",
        "SLR/SLS - Request Sterilization lot deletion",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S30": ("S30", "STI/STS - Request item", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S31": (
        "S31",
        "SDR/SDS - Request anti-microbial device data",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S32": (
        "S32",
        "SMD/SMS - Request anti-microbial device cycle data",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S33": (
        "S33",
        "STC/ACK - Notification of sterilization configuration",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S34": (
        "S34",
        "SLN/ACK - Notification of sterilization lot",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S35": (
        "S35",
        "SLN/ACK - Notification of sterilization lot deletion",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S36": (
        "S36",
        "SDN/ACK - Notification of anti-microbial device data",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S37": (
        "S37",
        "SCN/ACK - Notification of anti-microbial device cycle data",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S38": (
        "S38",
        "Containers Prepared for Specimen Collection",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S39": (
        "S39",
        "Specimen Collection Successful",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S40": (
        "S40",
        "Specimen Collection Unsuccessful",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S41": ("S41", "Specimen Departed", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S42": ("S42", "Specimen Arrived", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S43": ("S43", "Specimen Accepted", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S44": ("S44", "Specimen Rejected", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S45": ("S45", "Specimen Re-identified", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S46": ("S46", "Specimen De-identified", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S47": ("S47", "Specimen Sent to Archive", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S48": (
        "S48",
        "Specimen Retrieved from Archive",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S49": ("S49", "Specimen Disposed of", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "S50": (
        "S50",
        "Specimen Procedure Step Successful , with Derived Specimen(s)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S51": (
        "S51",
        "Specimen Procedure Step Successful, no Derived Specimen(s)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "S52": (
        "S52",
        "Specimen Procedure Step Unsuccessful",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T01": (
        "T01",
        "MDM/ACK - Original document notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T02": (
        "T02",
        "MDM/ACK - Original document notification and content",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T03": (
        "T03",
        "MDM/ACK - Document status change notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T04": (
        "T04",
        "MDM/ACK - Document status change notification and content",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T05": (
        "T05",
        "MDM/ACK - Document addendum notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T06": (
        "T06",
        "MDM/ACK - Document addendum notification and content",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T07": (
        "T07",
        "MDM/ACK - Document edit notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T08": (
        "T08",
        "MDM/ACK - Document edit notification and content",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T09": (
        "T09",
        "MDM/ACK - Document replacement notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T10": (
        "T10",
        "MDM/ACK - Document replacement notification and content",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T11": (
        "T11",
        "MDM/ACK - Document cancel notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "T12": ("T12", "QRY/DOC - Document query", "http://terminology.hl7.org/CodeSystem/v2-0003"),
    "U01": (
        "U01",
        "ESU/ACK - Automated equipment status update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U02": (
        "U02",
        "ESR/ACK - Automated equipment status request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U03": (
        "U03",
        "SSU/ACK - Specimen status update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U04": (
        "U04",
        "SSR/ACK - specimen status request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U05": (
        "U05",
        "INU/ACK  - Automated equipment inventory update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U06": (
        "U06",
        "INR/ACK - Automated equipment inventory request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U07": (
        "U07",
        "EAC/ACK - Automated equipment command",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U08": (
        "U08",
        "EAR/ACK - Automated equipment response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U09": (
        "U09",
        "EAN/ACK - Automated equipment notification",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U10": (
        "U10",
        "TCU/ACK - Automated equipment test code settings update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U11": (
        "U11",
        "TCR/ACK - Automated equipment test code settings request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U12": (
        "U12",
        "LSU/ACK - Automated equipment log/service update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U13": (
        "U13",
        "LSR/ACK - Automated equipment log/service request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "U14": (
        "U14",
        "INR/ACK – Automated Equipment Inventory Request",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "V01": (
        "V01",
        "VXQ - Query for vaccination record",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "V02": (
        "V02",
        "VXX - Response to vaccination query returning multiple PID matches",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "V03": (
        "V03",
        "VXR - Vaccination record response",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "V04": (
        "V04",
        "VXU - Unsolicited vaccination record update",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "Varies": (
        "Varies",
        "MFQ/MFR - Master files query (use event same as asking for e.g., M05 - location)",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "W01": (
        "W01",
        "ORU - Waveform result, unsolicited transmission of requested information",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
    "W02": (
        "W02",
        "QRF - Waveform result, response to query",
        "http://terminology.hl7.org/CodeSystem/v2-0003",
    ),
}

# DiagnosticServiceSectionID
DIAGNOSTIC_SERVICE_SECTION: ConceptMap = {
    "AU": ("AU", "Audiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "BG": ("BG", "Blood Gases", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "BLB": ("BLB", "Blood Bank", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CG": ("CG", "Cytogenetics", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CH": ("CH", "Chemistry", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CP": ("CP", "Cytopathology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CT": ("CT", "CAT Scan", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CTH": ("CTH", "Cardiac Catheterization", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CUS": ("CUS", "Cardiac Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "EC": (
        "EC",
        "Electrocardiac (e.g., EKG,  EEC, Holter)",
        "http://terminology.hl7.org/CodeSystem/v2-0074",
    ),
    "EN": ("EN", "Electroneuro (EEG, EMG,EP,PSG)", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "GE": ("GE", "Genetics", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "HM": ("HM", "Hematology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "ICU": ("ICU", "Bedside ICU Monitoring", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "IMM": ("IMM", "Immunology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "LAB": ("LAB", "Laboratory", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MB": ("MB", "Microbiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MCB": ("MCB", "Mycobacteriology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MYC": ("MYC", "Mycology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "NMR": ("NMR", "Nuclear Magnetic Resonance", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "NMS": ("NMS", "Nuclear Medicine Scan", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "NRS": ("NRS", "Nursing Service Measures", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OSL": ("OSL", "Outside Lab", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OT": ("OT", "Occupational Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OTH": ("OTH", "Other", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OUS": ("OUS", "OB Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PF": ("PF", "Pulmonary Function", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PHR": ("PHR", "Pharmacy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PHY": (
        "PHY",
        "Physician (Hx. Dx, admission note, etc.)",
        "http://terminology.hl7.org/CodeSystem/v2-0074",
    ),
    "PT": ("PT", "Physical Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RAD": ("RAD", "Radiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RC": ("RC", "Respiratory Care (therapy)", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RT": ("RT", "Radiation Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RUS": ("RUS", "Radiology Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RX": ("RX", "Radiograph", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "SP": ("SP", "Surgical Pathology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "SR": ("SR", "Serology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "TX": ("TX", "Toxicology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "VR": ("VR", "Virology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "VUS": ("VUS", "Vascular Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "XRC": ("XRC", "Cineradiograph", "http://terminology.hl7.org/CodeSystem/v2-0074"),
}

# AllergySeverity[AllergyIntolerance.criticality]
ALLERGY_CRITICALITY: ConceptMap = {
    "MI": ("low", "Low Risk", "http://hl7.org/fhir/allergy-intolerance-criticality"),
    "SV": ("high", "High Risk", "http://hl7.org/fhir/allergy-intolerance-criticality"),
}

# AllergenType[AllergyIntoleranceCategory]
ALLERGY_CATEGORY: ConceptMap = {
    "AA": ("biologic", "Biologic", "http://hl7.org/fhir/allergy-intolerance-category"),
    "DA": ("medication", "Medication", "http://hl7.org/fhir/allergy-intolerance-category"),
    "EA": ("environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"),
    "FA": ("food", "Food", "http://hl7.org/fhir/allergy-intolerance-category"),
    "LA": ("environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"),
    "PA": ("environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"),
}

# ProcessingID
PROCESSING_ID: ConceptMap = {
    "D": ("D", "Debugging", "http://terminology.hl7.org/CodeSystem/v2-0103"),
    "N": ("N", "Non-Production Testing", "http://terminology.hl7.org/CodeSystem/v2-0103"),
    "P": ("P", "Production", "http://terminology.hl7.org/CodeSystem/v2-0103"),
    "T": ("T", "Training", "http://terminology.hl7.org/CodeSystem/v2-0103"),
    "V": ("V", "Validation", "http://terminology.hl7.org/CodeSystem/v2-0103"),
}

# YesNoIndicator
YES_NO: ConceptMap = {
    "N": ("false", "", "http://terminology.hl7.org/CodeSystem/special-values"),
    "Y": ("true", "", "http://terminology.hl7.org/CodeSystem/special-values"),
}
