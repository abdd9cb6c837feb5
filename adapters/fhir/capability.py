"""The CapabilityStatement ``GET /fhir/metadata`` answers: exactly what the gateway does.

Listed, and nothing more: FHIR R4 JSON; ``$process-message`` (sync and
async); ``create`` with ``If-None-Exist`` for ServiceRequest, Task,
DiagnosticReport and DocumentReference; system ``transaction`` Bundles; Bearer
token or client-certificate authentication. No read or search: carebroker is
a broker, not a FHIR server.
"""

from __future__ import annotations

from typing import Any

CREATE_TYPES = ("ServiceRequest", "Task", "DiagnosticReport", "DocumentReference")
PROCESS_MESSAGE = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"


def capability_statement(base_url: str, date: str) -> dict[str, Any]:
    """Return the CapabilityStatement of this gateway, for ``base_url`` (``.../fhir``)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "carebroker",
        "kind": "instance",
        "software": {"name": "carebroker", "version": "0.1.0"},
        "implementation": {
            "description": "carebroker FHIR gateway: durable accept into the message store",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Accepted means durable: 2xx only after the message is "
                "committed. Resends (same sender and Bundle.identifier, or the same "
                "If-None-Exist) get the original answer. Invalid input: 400 with "
                "OperationOutcome.issue.expression; 401/403 authentication; 413 too "
                "large; 415 media type; 422 business rule; 503 store unavailable.",
                "security": {
                    "cors": False,
                    "description": "Each partner authenticates with its own Bearer token "
                    "(kept hashed) or a client certificate via a TLS proxy; a message may "
                    "only claim its own partner in MessageHeader.source/sender.",
                },
                "resource": [
                    {
                        "type": kind,
                        "interaction": [{"code": "create"}],
                        "conditionalCreate": True,
                        "versioning": "no-version",
                    }
                    for kind in CREATE_TYPES
                ],
                "interaction": [{"code": "transaction"}],
                "operation": [{"name": "process-message", "definition": PROCESS_MESSAGE}],
            }
        ],
        "messaging": [
            {
                "endpoint": [
                    {
                        "protocol": {
                            "system": "http://terminology.hl7.org/CodeSystem/message-transport",
                            "code": "http",
                        },
                        "address": f"{base_url}/$process-message",
                    }
                ],
                "documentation": "Bundle.type = message, MessageHeader first, "
                "Bundle.identifier set; any event is accepted and routed; ?async=true "
                "answers 202.",
            }
        ],
    }
