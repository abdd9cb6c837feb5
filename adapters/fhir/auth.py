"""Who is calling: partner authentication for the FHIR gateway, and "send only as yourself".

Each partner has its own credential in the partner directory:

- a bearer token, kept only as its SHA-256 (``token_sha256``), checked with
  :meth:`broker.directory.Directory.by_token`;
- or a client certificate, whose subject CN (``certificate_cn``) a TLS
  terminating proxy in front of carebroker passes in a header it alone sets.
  That header is trusted only when configured
  (``CAREBROKER_FHIR__CLIENT_CERT_HEADER``), since anyone can send headers.

Then a message may only claim to come from the partner that authenticated:
MessageHeader.source (name or endpoint) and MessageHeader.sender must not
name *another* known partner (403). A name the directory does not know is the
partner's own system label and is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.fhir.resources import Resources
from broker.directory import Directory, Partner

Json = dict[str, Any]
PARTNER_ENDPOINT_PREFIX = "urn:carebroker:partner:"


@dataclass(frozen=True)
class Refusal:
    """Why a request is not allowed: HTTP status, issue code, text (no secrets, no values)."""

    status: int
    code: str
    text: str
    expression: str = ""


def authenticate(
    headers: Mapping[str, str], directory: Directory, cert_header: str | None
) -> Partner | Refusal:
    """Return the partner a request's credential identifies, or why not (401)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        partner = directory.by_token(token.strip())
        if partner is None:
            return Refusal(401, "login", "unknown bearer token")
        return partner
    if authorization:
        return Refusal(401, "login", "only Bearer authorization is supported")
    if cert_header:
        common_name = headers.get(cert_header.lower(), "").strip()
        if common_name:
            partner = directory.by_certificate(common_name)
            if partner is None:
                return Refusal(401, "login", "client certificate is not a known partner's")
            return partner
    return Refusal(401, "login", "credentials required (Bearer token or client certificate)")


def claimed_partners(document: Json, directory: Directory) -> list[tuple[str, Partner]]:
    """Return (FHIRPath, partner) for each known partner the MessageHeader claims to be."""
    resources = Resources(document)
    header = next(iter(resources.of_type("MessageHeader")), None)
    if header is None:
        return []
    claims: list[tuple[str, Partner]] = []
    source = header.get("source") or {}
    name = str(source.get("name") or "")
    found = directory.partner(name) or directory.by_facility(name)
    if found is not None:
        claims.append(("MessageHeader.source.name", found))
    endpoint = str(source.get("endpoint") or "")
    if endpoint.startswith(PARTNER_ENDPOINT_PREFIX):
        found = directory.partner(endpoint[len(PARTNER_ENDPOINT_PREFIX) :])
        if found is not None:
            claims.append(("MessageHeader.source.endpoint", found))
    sender = header.get("sender")
    organisation = resources.resolve(sender) if sender else None
    for ident in (organisation or {}).get("identifier", []) or []:
        system, value = str(ident.get("system", "")), str(ident.get("value", ""))
        found = directory.by_identifier(system, value) or directory.by_facility(value)
        if found is not None:
            claims.append(("MessageHeader.sender", found))
    return claims


def check_sender(document: Json, directory: Directory, partner: Partner) -> Refusal | None:
    """Refuse (403) a message whose MessageHeader names another partner than the caller."""
    for path, claimed in claimed_partners(document, directory):
        if claimed.id != partner.id:
            return Refusal(
                403,
                "security",
                f"{path} names partner {claimed.id!r}, not the authenticated partner "
                f"{partner.id!r}",
                path,
            )
    return None
