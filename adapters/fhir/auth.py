"""Who is calling: partner authentication for the FHIR gateway, and "send only as yourself".

Each partner has its own credential in the partner directory:

- a bearer token, kept only as its SHA-256 (``token_sha256``), checked with
  :meth:`broker.directory.Directory.by_token`;
- or a client certificate, whose subject CN (``certificate_cn``) a TLS
  terminating proxy in front of carebroker passes in a header it alone sets.
  That header is trusted only when configured
  (``CAREBROKER_FHIR__CLIENT_CERT_HEADER``), since anyone can send headers.

Then a message may only claim to come from the partner that authenticated
(:func:`check_sender`, 403 otherwise). The claimed sender is identified by
identifiers only, compared after normalisation (Unicode NFKC, case folded,
spaces trimmed and collapsed, ``urn:oid:`` optional), never by a display name:

- ``MessageHeader.sender`` must carry an identifier (on the resource it
  references, on a PractitionerRole's organization, or as a logical
  reference), at least one of which is the caller's (``identifiers``,
  ``facilities``, ``practitioners``, or ``urn:carebroker:partner|<id>``), and
  none another partner's; a sender with a name only is refused;
- ``MessageHeader.source.endpoint`` must not be another partner's endpoint
  (its FHIR URL or ``urn:carebroker:partner:<id>``);
- a name (``source.name``, the sender's ``display`` or ``name``) that is
  another partner's id, name or facility is refused too: names identify
  nobody, and one that passes for another partner is a spoof.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from adapters.fhir.resources import Resources
from broker.directory import Directory, Partner

Json = dict[str, Any]
PARTNER_ENDPOINT_PREFIX = "urn:carebroker:partner:"
PARTNER_SYSTEM = "urn:carebroker:partner"


@dataclass(frozen=True)
class Refusal:
    """Why a request is not allowed: HTTP status, issue code, text (no secrets, no values)."""

    status: int
    code: str
    text: str
    expression: str = ""
    reason: str = ""  # a short key for the strangers' record (401s)


def authenticate(
    headers: Mapping[str, str], directory: Directory, cert_header: str | None
) -> Partner | Refusal:
    """Return the partner a request's credential identifies, or why not (401)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        partner = directory.by_token(token.strip())
        if partner is None:
            return Refusal(401, "login", "unknown bearer token", reason="unknown_token")
        return partner
    if authorization:
        return Refusal(
            401, "login", "only Bearer authorization is supported", reason="unsupported_scheme"
        )
    if cert_header:
        common_name = headers.get(cert_header.lower(), "").strip()
        if common_name:
            partner = directory.by_certificate(common_name)
            if partner is None:
                return Refusal(
                    401,
                    "login",
                    "client certificate is not a known partner's",
                    reason="unknown_certificate",
                )
            return partner
    return Refusal(
        401,
        "login",
        "credentials required (Bearer token or client certificate)",
        reason="no_credentials",
    )


def normalise(text: object) -> str:
    """Return ``text`` as compared: NFKC, case folded, whitespace trimmed and collapsed."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def _system(system: object) -> str:
    return normalise(system).removeprefix("urn:oid:")


def _endpoint(url: object) -> str:
    return normalise(url).rstrip("/")


@dataclass
class _Index:
    """The directory's identities, normalised (built once per directory version)."""

    by_identifier: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    by_value: dict[str, set[str]] = field(default_factory=dict)
    by_endpoint: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, set[str]] = field(default_factory=dict)

    def add_identifier(self, partner: str, system: str, value: str) -> None:
        self.by_identifier.setdefault((_system(system), normalise(value)), set()).add(partner)
        self.by_value.setdefault(normalise(value), set()).add(partner)


@lru_cache(maxsize=4)
def _index(directory: Directory) -> _Index:
    index = _Index()
    for partner in directory.partners.values():
        index.add_identifier(partner.id, PARTNER_SYSTEM, partner.id)
        for ident in partner.identifiers:
            index.add_identifier(partner.id, ident.system, ident.value)
        for person in partner.practitioners:
            index.add_identifier(partner.id, person.system, person.value)
        for facility in partner.facilities:
            index.add_identifier(partner.id, "", facility)
        index.by_endpoint[_endpoint(PARTNER_ENDPOINT_PREFIX + partner.id)] = partner.id
        url = getattr(partner.endpoint, "url", None)
        if url:
            index.by_endpoint[_endpoint(url)] = partner.id
        for name in (partner.id, partner.name, *partner.facilities):
            index.by_name.setdefault(normalise(name), set()).add(partner.id)
    return index


def _identified(index: _Index, identifier: Json) -> set[str]:
    """Return the partners an identifier names (a value without system: by value alone)."""
    value = normalise(identifier.get("value", ""))
    if not value:
        return set()
    system = _system(identifier.get("system", ""))
    if system:
        found = index.by_identifier.get((system, value))
        # HL7 v2 namespaces (MSH-4) travel with no system, or a local one.
        return found if found else index.by_identifier.get(("", value), set())
    return index.by_value.get(value, set())


def _sender_identifiers(header: Json, resources: Resources) -> Iterator[Json]:
    """Yield the identifiers by which MessageHeader.sender names its organisation or person."""
    sender = header.get("sender") or {}
    if isinstance(sender.get("identifier"), dict):
        yield sender["identifier"]
    target = resources.resolve(sender) if sender.get("reference") else None
    seen = [target] if isinstance(target, dict) else []
    if seen and seen[0].get("resourceType") == "PractitionerRole":
        organisation = resources.resolve(seen[0].get("organization"))
        if isinstance(organisation, dict):
            seen.append(organisation)
    for resource in seen:
        for ident in resource.get("identifier", []) or []:
            if isinstance(ident, dict):
                yield ident


def _sender_names(header: Json, resources: Resources) -> Iterator[tuple[str, str]]:
    """Yield (FHIRPath, name) for each display name the MessageHeader gives its sender."""
    source = header.get("source") or {}
    if source.get("name"):
        yield "MessageHeader.source.name", str(source["name"])
    sender = header.get("sender") or {}
    if sender.get("display"):
        yield "MessageHeader.sender.display", str(sender["display"])
    target = resources.resolve(sender) if sender.get("reference") else None
    if isinstance(target, dict) and isinstance(target.get("name"), str):
        yield "MessageHeader.sender", target["name"]


def claimed_sender(document: Json, directory: Directory) -> Partner | None:
    """Return the partner a MessageHeader's sender identifiers (else source endpoint) name."""
    resources = Resources(document)
    header = next(iter(resources.of_type("MessageHeader")), None)
    if header is None:
        return None
    index = _index(directory)
    for ident in _sender_identifiers(header, resources):
        for partner_id in sorted(_identified(index, ident)):
            return directory.partner(partner_id)
    owner = index.by_endpoint.get(_endpoint((header.get("source") or {}).get("endpoint", "")))
    return directory.partner(owner) if owner else None


def check_sender(document: Json, directory: Directory, partner: Partner) -> Refusal | None:
    """Refuse (403) a message whose MessageHeader claims another sender than the caller."""
    resources = Resources(document)
    header = next(iter(resources.of_type("MessageHeader")), None)
    if header is None:
        return None  # a REST create: the sender is the partner that authenticated
    index = _index(directory)

    def refuse(path: str, text: str) -> Refusal:
        return Refusal(403, "security", text, path)

    source = header.get("source") or {}
    if source.get("endpoint"):
        owner = index.by_endpoint.get(_endpoint(source["endpoint"]))
        if owner is not None and owner != partner.id:
            return refuse(
                "MessageHeader.source.endpoint",
                f"MessageHeader.source.endpoint is partner {owner!r}'s endpoint, not the "
                f"authenticated partner {partner.id!r}'s",
            )
    for path, name in _sender_names(header, resources):
        others = index.by_name.get(normalise(name), set()) - {partner.id}
        if others:
            return refuse(
                path,
                f"{path} names partner {sorted(others)[0]!r}, not the authenticated partner "
                f"{partner.id!r}",
            )
    if not header.get("sender"):
        return None
    named: set[str] = set()
    for ident in _sender_identifiers(header, resources):
        found = _identified(index, ident)
        others = found - {partner.id}
        if others:
            return refuse(
                "MessageHeader.sender",
                f"MessageHeader.sender names partner {sorted(others)[0]!r}, not the "
                f"authenticated partner {partner.id!r}",
            )
        named |= found
    if partner.id not in named:
        return refuse(
            "MessageHeader.sender",
            "MessageHeader.sender must name its organisation by an identifier of the "
            f"authenticated partner {partner.id!r} (one of its identifiers, facilities, or "
            f"{PARTNER_SYSTEM}|{partner.id}); a name alone identifies nobody",
        )
    return None
