"""What travels on Kafka about one accepted message, and what routing reads.

The envelope carries ids, routing hints and pseudonymous patient keys, plus the
original bytes (``payload``, never in a repr or an error). Patient identifiers
never travel in clear: a :class:`PatientKey` holds an HMAC of the value
(design invariant 6); Kafka record keys are the ``ordering_key``, itself an
HMAC, so one patient's messages stay on one partition, in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["mllp", "fhir", "file"]
# hprim: HPRIM Santé files refused as such (one accepted becomes hl7v2: an ORU^R01 per patient).
Format = Literal["hl7v2", "fhir", "hprim"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class PatientKey(_Frozen):
    """A patient identifier, pseudonymised: assigning authority and type in clear, value hashed."""

    authority: str = Field(description="Assigning authority: namespace or OID (PID-3.4).")
    id_type: str = Field(default="", description="Identifier type code (PID-3.5): PI, NH, INS...")
    digest: str = Field(description="HMAC-SHA256 of the value, hex, under the pseudonym key.")


class Identity(_Frozen):
    """What the message asserts about the patient's identity (French INS, RNIV statuses)."""

    ins_present: bool = False
    ins_qualified: bool = Field(
        default=False, description="The message asserts a qualified identity (never inferred)."
    )
    reliability: str = Field(default="", description="PID-32 identity reliability code as sent.")
    issues: list[str] = Field(
        default_factory=list,
        description="INS rules the message breaks (adapters/hl7v2/ins.py): oid_missing, "
        "oid_unknown, oid_test_in_production, matricule_malformed, key_mismatch, "
        "status_missing, not_qualified.",
    )


class ProviderRef(_Frozen):
    """A professional or organisation the message names, and the field that names it."""

    source: str = Field(description="Where it was read: OBR-16, OBR-28, PD1-4, ROL, PRT, PRD ...")
    role: str = Field(default="", description="ROL-3 / PRT-4 / PRD-1 role code when relevant.")
    id: str = Field(description="Identifier value (XCN-1 / XON-10): RPPS, ADELI, FINESS, local.")
    authority: str = Field(default="", description="Assigning authority (XCN-9) when given.")
    address: str = Field(default="", description="Electronic address (PRT-15, MSSanté) if any.")
    path: str = Field(
        default="",
        description="For FHIR input: the FHIRPath it was read from; `source` then names the "
        "HL7 v2 field of the same meaning, so routing treats both formats alike.",
    )


class Envelope(_Frozen):
    """One accepted message as the pipeline sees it (topic ``care.messages.accepted.v1``)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    message_id: uuid.UUID
    received_at: datetime
    channel: Channel
    format: Format
    sender: str = Field(description="Partner id of the sender.")
    control_id: str = Field(description="MSH-10, or Bundle.identifier for FHIR.")
    message_type: str = Field(description="ORU^R01, REF^I12 ... or the FHIR event code.")
    structure: str = ""
    version: str = ""
    processing_id: str = ""
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""
    charset: str = Field(default="utf-8", description="Python codec the payload decodes with.")
    batch_id: str | None = None
    patient_keys: list[PatientKey] = Field(default_factory=list)
    ordering_key: str = Field(description="Lane key: HMAC of the primary patient id, else the id.")
    identity: Identity = Field(default_factory=Identity)
    providers: list[ProviderRef] = Field(default_factory=list)
    handling: list[str] = Field(default_factory=list, description="OBR-49 result handling codes.")
    trace: dict[str, str] = Field(default_factory=dict, description="W3C trace context.")
    payload: bytes = Field(repr=False, description="The original bytes, exactly as received.")


class DeliveryRequest(_Frozen):
    """A delivery the router decided (topic ``care.deliveries.requested.v1``).

    The delivery row in PostgreSQL is the source of truth; this record hands
    the work to the delivery instance that owns the lane's partition.
    """

    delivery_id: uuid.UUID
    message_id: uuid.UUID
    recipient: str
    lane: str = Field(description="Ordering lane: recipient + patient ordering key.")
    trace: dict[str, str] = Field(default_factory=dict)
    lanes: list[str] = Field(
        default_factory=list,
        description="Every lane of this record's partition that the same routing batch gave"
        " work (the router writes one record per partition, not one per delivery); empty:"
        " only ``lane``.",
    )
