"""Turn a message into what may be logged, traced or labelled: ids and codes, nothing else.

This is the one place that decides (design invariant 6, STYLE "Logs and
telemetry"). Logs, span attributes and metric labels about a message are built
from :func:`metadata`; nothing else in carebroker hands a payload, a segment,
a patient key or an envelope repr to a logger, a span or a metric.

Allowed: the carebroker message id, the control id (MSH-10 / Bundle.identifier,
which the design names as the way to identify a message), partner ids from the
directory, message type, channel, format, version, size, batch id and outcome.
Never: payloads, PID/PV1 values, names, identifiers, birth dates, patient key
digests (a digest is a stable handle on one patient, so it stays in the store).

Values that come from a sender's bytes are passed through :func:`label` (ids
and codes: only code-shaped text) or :func:`message_type` (only the shape of
an HL7 v2 or FHIR message type), so a sender putting free text in MSH-9
cannot smuggle it into a log line or a metric label.
"""

from __future__ import annotations

import re
from typing import Any

from broker.envelope import Envelope

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._^:/-]{0,63}$")
# HL7 v2 MSH-9 (ORU^R01^ORU_R01: three-character codes, structure up to 7), or a
# FHIR event code / MessageDefinition (lower case, hyphens, or a URI).
_MESSAGE_TYPE = re.compile(
    r"^(?:[A-Z0-9]{3}(?:\^[A-Z0-9]{3}(?:\^[A-Z0-9_]{3,7})?)?|[a-z0-9][a-z0-9._:/-]{0,63})$"
)
UNKNOWN = "unknown"
OTHER = "other"


def label(value: object) -> str:
    """Return ``value`` if it looks like a code or an id (``ORU^R01``, ``labo-sud``), else a token.

    Empty or missing values become ``unknown``; anything with spaces or other
    characters that free text has becomes ``other``.
    """
    if value is None or value == "":
        return UNKNOWN
    text = str(value)
    return text if _CODE.match(text) else OTHER


def message_type(value: object) -> str:
    """Return a message type if it has the shape of one (``ORU^R01``, ``referral-request``).

    MSH-9 is whatever the sender wrote; anything not shaped like a message
    type becomes ``other``, so free text never reaches a label or a log.
    """
    if value is None or value == "":
        return UNKNOWN
    text = str(value)
    return text if _MESSAGE_TYPE.match(text) else OTHER


def metadata(envelope: Envelope) -> dict[str, str | int]:
    """Return the loggable facts of one accepted message (ids, codes, size)."""
    facts: dict[str, str | int] = {
        "message_id": str(envelope.message_id),
        "control_id": envelope.control_id,
        "sender": label(envelope.sender),
        "message_type": message_type(envelope.message_type),
        "channel": envelope.channel,
        "format": envelope.format,
        "size": len(envelope.payload),
    }
    if envelope.version:
        facts["version"] = label(envelope.version)
    if envelope.batch_id:
        facts["batch_id"] = envelope.batch_id
    return facts


def span_attributes(envelope: Envelope) -> dict[str, Any]:
    """Return span attributes for a message (OpenTelemetry messaging conventions + ids)."""
    return {
        "messaging.message.id": str(envelope.message_id),
        "messaging.message.body.size": len(envelope.payload),
        "carebroker.control_id": envelope.control_id,
        "carebroker.sender": label(envelope.sender),
        "carebroker.message_type": message_type(envelope.message_type),
        "carebroker.channel": envelope.channel,
    }
