"""OperationOutcome answers: what went wrong, where (FHIRPath), and the HTTP status.

Issue codes come from the FHIR IssueType value set (R4 §2.36 codesystem-issue-type):
``structure``/``invalid``/``required``/``value`` for bad input (400),
``login``/``security`` for authentication (401/403), ``too-costly`` for a body
too large (413), ``not-supported`` for a media type or route (415/404),
``business-rule`` (422) and ``transient`` for a store outage (503).
"""

from __future__ import annotations

import json
from typing import Any

from adapters.fhir.validate import Issue

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"


def outcome(issues: list[Issue], severity: str = "error") -> Json:
    """Return an OperationOutcome listing ``issues``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": severity,
                "code": issue.code,
                "diagnostics": issue.diagnostics,
                **({"expression": [issue.expression]} if issue.expression else {}),
            }
            for issue in issues
        ],
    }


def information(text: str) -> Json:
    """Return an informational OperationOutcome (e.g. "accepted as message ...")."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }


def encode(document: Json) -> bytes:
    """Serialise an answer as compact UTF-8 JSON."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
