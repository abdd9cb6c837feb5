"""Parse and validate FHIR R4 JSON with fhir.resources (R4B), naming problems by FHIRPath.

Every refusal says *where*: ``Bundle.entry[2].resource.subject`` for a
missing element, ``$`` with line and column for JSON that does not parse. It
never quotes the offending value (it may be patient data, design invariant 6).

fhir.resources checks structure and datatypes (cardinality, primitive
formats, unknown elements); it does not check terminology bindings. The
gateway adds the checks its own processing relies on (Bundle.type, the
MessageHeader first) in :mod:`adapters.fhir.gateway`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from adapters.translate.bundle import fhirpath, loads
from broker.errors import MessageError

Json = dict[str, Any]
# Deepest JSON nesting accepted. FHIR resources nest a few dozen levels at most
# (a Bundle entry's contained resource's extension's value ...); deeper input
# would reach Python's recursion limit in the parser or the validator.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Issue:
    """One problem: where (FHIRPath) and what, without the value."""

    expression: str
    diagnostics: str
    code: str = "invalid"


class FhirValidationError(MessageError):
    """FHIR input that does not parse or validate; ``issues`` name each problem."""

    def __init__(self, issues: list[Issue], *, status: int = 400) -> None:
        super().__init__(
            f"{issues[0].diagnostics} at {issues[0].expression}", location=issues[0].expression
        )
        self.issues = issues
        self.status = status


def parse_json(body: bytes) -> Json:
    """Return a JSON object from request bytes; raise naming line and column when invalid."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FhirValidationError(
            [Issue("$", f"body is not UTF-8 (byte {exc.start})", "structure")]
        ) from None
    try:
        document = loads(text)
    except RecursionError:
        raise FhirValidationError([_too_deep()]) from None
    except json.JSONDecodeError as exc:
        raise FhirValidationError(
            [
                Issue(
                    "$",
                    f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                    "structure",
                )
            ]
        ) from None
    if not isinstance(document, dict):
        raise FhirValidationError(
            [Issue("$", "a FHIR resource must be a JSON object", "structure")]
        )
    if _depth(document) > MAX_DEPTH:
        raise FhirValidationError([_too_deep()])
    if _NUL.search(text):
        # FHIR strings cannot hold control characters (R4 2.1.28.0.1), nor can
        # PostgreSQL text: named here, before anything tries to store it.
        raise FhirValidationError(
            [Issue("$", "a string holds U+0000, which FHIR strings cannot contain", "value")]
        )
    return document


def _too_deep() -> Issue:
    return Issue("$", f"JSON nested deeper than {MAX_DEPTH} levels", "too-costly")


def _depth(document: Any) -> int:
    """Return how deep arrays and objects nest (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                return deepest
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


# \u0000 as a JSON escape: preceded by an even number of backslashes (none included).
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def resource_type(document: Json, allowed: frozenset[str] | None = None) -> str:
    """Return ``resourceType``; refuse a missing, unknown or (when given) unexpected one."""
    kind = document.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise FhirValidationError([Issue("resourceType", "resourceType is missing", "required")])
    if not is_known_type(kind):
        raise FhirValidationError([Issue("resourceType", f"{kind} is not a FHIR R4 resource type")])
    if allowed is not None and kind not in allowed:
        expected = ", ".join(sorted(allowed))
        raise FhirValidationError(
            [Issue("resourceType", f"expected {expected}, got {kind}", "invalid")]
        )
    return kind


def is_known_type(kind: str) -> bool:
    """Tell whether ``kind`` is a FHIR resource type fhir.resources knows."""
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return kind[:1].isupper()


def validate(document: Json, root: str | None = None) -> None:
    """Validate a resource (any type, Bundles included) or raise FhirValidationError."""
    kind = resource_type(document)
    root = root or kind
    unknown = list(_unknown_types(document, root))
    if unknown:
        raise FhirValidationError(unknown)
    model = get_fhir_model_class(kind)
    try:
        model.model_validate(document)
    except ValidationError as exc:
        issues = [
            Issue(
                fhirpath(root, error["loc"]), " ".join(error["msg"].split()), _code(error["type"])
            )
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise FhirValidationError(issues) from None
    except (KeyError, TypeError, ValueError) as exc:
        # fhir.resources raises these for shapes pydantic does not catch first.
        raise FhirValidationError(
            [Issue(root, f"resource does not validate ({type(exc).__name__})")]
        ) from None


def _unknown_types(document: Json, root: str) -> list[Issue]:
    """Find nested resources (Bundle entries, contained) of unknown type before pydantic does."""
    issues: list[Issue] = []
    for index, entry in enumerate(document.get("entry", []) or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        kind = entry["resource"].get("resourceType")
        path = f"{root}.entry[{index}].resource"
        if not isinstance(kind, str) or not is_known_type(kind):
            issues.append(Issue(f"{path}.resourceType", "not a FHIR R4 resource type"))
        else:
            issues += _unknown_types(entry["resource"], path)
    for index, contained in enumerate(document.get("contained", []) or []):
        kind = contained.get("resourceType") if isinstance(contained, dict) else None
        if not isinstance(kind, str) or not is_known_type(kind):
            issues.append(
                Issue(f"{root}.contained[{index}].resourceType", "not a FHIR R4 resource type")
            )
    return issues


def _code(error_type: str) -> str:
    """Map a pydantic error type to an OperationOutcome issue code (IssueType)."""
    if error_type == "missing":
        return "required"
    if error_type == "extra_forbidden":
        return "structure"
    return "value"
