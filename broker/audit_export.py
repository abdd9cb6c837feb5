"""Turn chained audit events into the standard forms audit repositories read.

- FHIR R4 ``AuditEvent`` (:func:`to_fhir`), following the IHE Basic Audit Log
  Patterns (BALP, https://profiles.ihe.net/ITI/BALP/): a transfer into
  carebroker is a DICOM *Import* (110107), a transfer out to a recipient an
  *Export* (110106), reading a message's content is the BALP *Read* pattern
  (``rest``/``read``), a patient search the *Query* pattern (``rest``/
  ``search``), and operator or configuration changes a DICOM *Security Alert*
  (110113). The carebroker event kind is always the first ``subtype``.
- DICOM PS3.15 Annex A.5 / RFC 3881 ``AuditMessage`` XML (:func:`to_atna`),
  what IHE ATNA (ITI-20) sends over syslog: EventIdentification,
  ActiveParticipant (the role or operator), AuditSourceIdentification and a
  ParticipantObjectIdentification for the message.

Both forms carry what the audit row carries: ids, codes, partner ids, rule
names and reasons, never clinical content (design invariant 6). The message
is identified by its carebroker id, the control id is a detail.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from xml.etree import ElementTree as ET

from broker.store.audit import Row

KIND_SYSTEM = "urn:carebroker:audit-event-kind"
MESSAGE_ID_SYSTEM = "urn:carebroker:message-id"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition"

_IMPORT = ("110107", "Import", DCM)
_EXPORT = ("110106", "Export", DCM)
_ALERT = ("110113", "Security Alert", DCM)
_ACTIVITY = ("110100", "Application Activity", DCM)
_REST = ("rest", "Restful Operation", EVENT_TYPE)

# kind -> (event type, action C/R/U/D/E, extra subtype from restful-interaction)
_TYPES: dict[str, tuple[tuple[str, str, str], str, str | None]] = {
    "received": (_IMPORT, "C", None),
    "rejected": (_IMPORT, "C", None),
    "duplicate": (_IMPORT, "R", None),
    "validated": (_ACTIVITY, "E", None),
    "routed": (_ACTIVITY, "E", None),
    "unroutable": (_ACTIVITY, "E", None),
    "blocked": (_ACTIVITY, "E", None),
    "translated": (_ACTIVITY, "E", None),
    "delivery_attempted": (_EXPORT, "R", None),
    "delivered": (_EXPORT, "R", None),
    "failed": (_EXPORT, "R", None),
    "retried": (_EXPORT, "R", None),
    "dead_lettered": (_EXPORT, "R", None),
    "replayed": (_EXPORT, "R", None),
    "app_ack_sent": (_EXPORT, "R", None),
    "notice_received": (_IMPORT, "C", None),
    "content_viewed": (_REST, "R", "read"),
    "patient_searched": (_REST, "E", "search"),
}
_OUTCOMES = {"success": "0", "minor_failure": "4", "serious_failure": "8", "major_failure": "12"}
_PROFILES = {"read": f"{BALP}/IHE.BasicAudit.Read", "search": f"{BALP}/IHE.BasicAudit.Query"}


def _event_type(kind: str) -> tuple[tuple[str, str, str], str, str | None]:
    # Operator actions and configuration changes: Security Alert (DICOM 110113).
    return _TYPES.get(kind, (_ALERT, "U", None))


def _details(row: Row) -> dict[str, str]:
    """Return the row's facts that are not columns of their own, as strings."""
    details = {
        name: value
        for name, value in (
            ("control_id", row.control_id),
            ("partner", row.partner),
            ("recipient", row.recipient),
            ("rule", row.rule),
        )
        if value
    }
    for key, value in sorted(row.detail.items()):
        details[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    details["chain"] = f"{row.day.isoformat()}#{row.seq}"
    details["hash"] = row.hash.hex()
    return details


def to_fhir(row: Row, site: str = "carebroker") -> dict[str, Any]:
    """Return a FHIR R4 AuditEvent (JSON) for one chained event, BALP-shaped."""
    (code, display, system), action, rest = _event_type(row.kind)
    subtype = [{"system": KIND_SYSTEM, "code": row.kind, "display": row.kind.replace("_", " ")}]
    if rest:
        subtype.append({"system": RESTFUL, "code": rest, "display": rest})
    person = row.actor.startswith("user:")
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {"system": DCM, "code": "110153", "display": "Source Role ID"}
                if not person
                else {"system": DCM, "code": "110152", "display": "Destination Role ID"}
            ]
        },
        "who": {"identifier": {"system": "urn:carebroker:actor", "value": row.actor}},
        "requestor": person,
    }
    agents = [agent]
    if row.recipient and code == "110106":
        agents.append(
            {
                "type": {
                    "coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]
                },
                "who": {"identifier": {"system": "urn:carebroker:partner", "value": row.recipient}},
                "requestor": False,
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.event_id),
        "type": {"system": system, "code": code, "display": display},
        "subtype": subtype,
        "action": action,
        "recorded": row.occurred_at.isoformat(),
        "outcome": _OUTCOMES.get(row.outcome, "0"),
        "agent": agents,
        "source": {
            "site": site,
            "observer": {"display": site},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if rest in _PROFILES:
        resource["meta"] = {"profile": [_PROFILES[rest]]}
    reason = row.detail.get("reason")
    if row.outcome != "success" and isinstance(reason, str):
        resource["outcomeDesc"] = reason
    entity: dict[str, Any] = {
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        "detail": [{"type": k, "valueString": v} for k, v in _details(row).items()],
    }
    if row.message_id:
        entity["what"] = {"identifier": {"system": MESSAGE_ID_SYSTEM, "value": str(row.message_id)}}
    resource["entity"] = [entity]
    return resource


def to_atna(row: Row, site: str = "carebroker") -> str:
    """Return a DICOM PS3.15 A.5 (RFC 3881) AuditMessage XML document for one event."""
    (code, display, system), action, _ = _event_type(row.kind)
    message = ET.Element("AuditMessage")
    event = ET.SubElement(
        message,
        "EventIdentification",
        EventActionCode=action,
        EventDateTime=row.occurred_at.isoformat(),
        EventOutcomeIndicator=_OUTCOMES.get(row.outcome, "0"),
    )
    ET.SubElement(
        event,
        "EventID",
        {"csd-code": code, "codeSystemName": "DCM" if system == DCM else system},
        originalText=display,
    )
    ET.SubElement(
        event,
        "EventTypeCode",
        {"csd-code": row.kind, "codeSystemName": KIND_SYSTEM},
        originalText=row.kind.replace("_", " "),
    )
    person = row.actor.startswith("user:")
    actor = ET.SubElement(
        message,
        "ActiveParticipant",
        UserID=row.actor,
        UserIsRequestor="true" if person else "false",
    )
    ET.SubElement(
        actor,
        "RoleIDCode",
        {"csd-code": "110153", "codeSystemName": "DCM"},
        originalText="Source Role ID",
    )
    if row.recipient and code == "110106":
        destination = ET.SubElement(
            message, "ActiveParticipant", UserID=row.recipient, UserIsRequestor="false"
        )
        ET.SubElement(
            destination,
            "RoleIDCode",
            {"csd-code": "110152", "codeSystemName": "DCM"},
            originalText="Destination Role ID",
        )
    source = ET.SubElement(message, "AuditSourceIdentification", AuditSourceID=site)
    ET.SubElement(
        source,
        "AuditSourceTypeCode",
        {"csd-code": "4", "codeSystemName": "DCM"},
        originalText="Application Server",
    )
    participant = ET.SubElement(
        message,
        "ParticipantObjectIdentification",
        ParticipantObjectID=str(row.message_id or row.event_id),
        ParticipantObjectTypeCode="2",
        ParticipantObjectTypeCodeRole="4" if row.message_id else "13",
    )
    ET.SubElement(
        participant,
        "ParticipantObjectIDTypeCode",
        {"csd-code": "message-id" if row.message_id else "event-id", "codeSystemName": KIND_SYSTEM},
        originalText="carebroker message id" if row.message_id else "carebroker event id",
    )
    for key, value in _details(row).items():
        ET.SubElement(
            participant,
            "ParticipantObjectDetail",
            type=key,
            value=base64.b64encode(value.encode()).decode(),
        )
    return ET.tostring(message, encoding="unicode")
