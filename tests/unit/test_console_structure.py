"""HL7 v2 fields named for people, and every label the console's scripts use in both languages."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from broker.alerts import AlertName
from broker.console.api import DeliveryStatus, MessageStatus
from broker.console.flows import FlowState
from broker.console.i18n import LABELS
from broker.console.mssante import MailState
from broker.console.structure import field_reference, label_message, title
from broker.console.ui import SCRIPTS
from broker.errors import MessageError
from broker.events import EventKind
from tests.conftest import REPO

STATIC = REPO / "broker" / "console" / "static"


def test_reference_names_read_as_labels() -> None:
    assert title("PATIENT_NAME") == "Patient Name"
    assert title("SET_ID_PID") == "Set ID PID"
    assert title("SUFFIX_E_G_JR_OR_III") == "Suffix e.g. Jr Or III"
    assert title("HL7_ERROR_CODE") == "HL7 Error Code"


@pytest.mark.parametrize(
    ("version", "segment", "number", "name", "datatype"),
    [
        ("2.5", "PID", 5, "Patient Name", "XPN"),
        ("2.3.1", "PID", 5, "Patient Name", "XPN"),
        ("2.8.2", "OBX", 5, "Observation Value", "varies"),
        ("2.5", "MSA", 1, "Acknowledgment Code", "ID"),
        ("2.5", "PRD", 1, "Provider Role", "CE"),
        ("9.9", "PID", 3, "Patient Identifier List", "CX"),  # unknown version: read as 2.5
        ("2.5", "ZPI", 1, "", ""),  # local segment
        ("2.5", "PID", 99, "", ""),  # past the standard's last field
    ],
)
def test_fields_are_named_from_the_reference_of_their_version(
    version: str, segment: str, number: int, name: str, datatype: str
) -> None:
    found = field_reference(version, segment, number)
    assert (found[0], found[1]) == (name, datatype)


def test_a_message_is_labelled_field_by_field_with_its_own_delimiters() -> None:
    text = (
        "MSH#*~!@#LAB#SITE#####ADT*A01#42#P#2.5\rPID#1##A1*B*C@D@E~A2##DOE*JOHN!F!X\rZPI#1#local\r"
    )
    msh, pid, zpi = label_message(text)
    assert [(f.position, f.value) for f in msh.fields][:2] == [("MSH-1", "#"), ("MSH-2", "*~!@")]
    assert msh.fields[-1].position == "MSH-12"
    by = {f.position: f for f in pid.fields}
    assert set(by) == {"PID-1", "PID-3", "PID-3[2]", "PID-5"}
    assert by["PID-3"].components[2].value == "C@D@E"  # subcomponents left as written
    assert by["PID-3[2]"].value == "A2"
    name = by["PID-5"]
    assert [(c.position, c.name, c.value) for c in name.components] == [
        ("PID-5.1", "Family Name", "DOE"),
        ("PID-5.2", "Given Name", "JOHN#X"),  # !F! is this encoding's escaped field separator
    ]
    assert (zpi.description, zpi.fields[1].name, zpi.fields[1].value) == (
        "Local segment",
        "",
        "local",
    )
    assert len(label_message(text, limit=1)) == 1
    with pytest.raises(MessageError):
        label_message('{"resourceType": "Bundle"}')


def _keys(script: str) -> set[str]:
    return set(re.findall(r'\bL\("([^"]+)"\)', script)) | set(
        re.findall(r'label: "([a-z_]+)"', script)
    )


def test_every_label_the_scripts_use_exists_in_english_and_french() -> None:
    used: set[str] = set()
    for name in SCRIPTS:
        used |= _keys((STATIC / name).read_text(encoding="utf-8"))
    # Labels built from a value: one per value the API can return.
    families = {
        "status": get_args(MessageStatus) + get_args(DeliveryStatus),
        "kind": get_args(EventKind),
        "alert": (*get_args(AlertName), "mailbox_unacknowledged", "mssante_reception_overdue"),
        "mailstate": get_args(MailState),
        "severity": ("warning", "critical"),
        "change": ("firing", "resolved", "acknowledged", "silenced", "unsilenced"),
        "state": get_args(FlowState),
    }
    used |= {f"{family}_{value}" for family, values in families.items() for value in values}
    for language in ("en", "fr"):
        missing = sorted(used - set(LABELS[language]))
        assert not missing, (language, missing)
    assert LABELS["fr"]["content_needs_operator"] != LABELS["en"]["content_needs_operator"]
