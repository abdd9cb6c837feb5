"""The partner directory: who the care partners are, how to reach them, what they read.

The shape is ../shared/partners-example.yaml: field names there are the
contract. carebroker accepts a few more optional fields (documented on each
model) and refuses unknown ones, so a typo is an error at start-up rather than
a silently ignored setting. Errors name the file, the line, the partner and the
field (design invariant 7).
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from adapters.hl7v2.er7 import parse_path
from broker.envelope import ProviderRef
from broker.errors import ConfigError
from broker.yamlfile import Loc, describe_errors, load_yaml

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _cidr(value: str) -> str:
    """Check one ``networks`` entry: a network in CIDR notation (a bare address is a /32)."""
    try:
        ipaddress.ip_network(value)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a network in CIDR notation (like 10.20.0.0/16 or 2001:db8::/48)"
            ) from None
        raise ValueError(f"{value!r} has host bits set: did you mean {loose}?") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identifier(_Model):
    """An identifier of an organisation: FINESS, SIRET, a local code (``system`` is a URI)."""

    system: str
    value: str


class Practitioner(_Model):
    """A person whose id appears in OBR-16, OBR-28, PV1-8, PRD, ROL, PRT, ORC-12 ..."""

    system: str
    value: str
    name: str | None = None


class RetryPolicy(_Model):
    """How delivery to one endpoint retries, trips its circuit breaker, and gives up.

    A transient failure (MLLP AR or timeout, HTTP 5xx, connection refused) is
    retried after ``base_s * 2**(attempts-1)`` seconds, capped at ``max_s``,
    with jitter (half of the delay drawn at random) so lanes that failed
    together do not retry together. ``circuit_failures`` consecutive transient
    failures open the endpoint's circuit for ``circuit_open_s``: no attempt is
    made meanwhile (and none counted), then one probe decides. A delivery
    still failing after ``max_attempts`` attempts or ``max_age_s`` seconds is
    dead-lettered with its reason.
    """

    base_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=50, ge=1)
    max_age_s: float = Field(default=3 * 24 * 3600, gt=0)
    circuit_failures: int = Field(default=5, ge=1)
    circuit_open_s: float = Field(default=30.0, gt=0)


class _EndpointBase(_Model):
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class MllpEndpoint(_EndpointBase):
    """Deliver over MLLP; ``connections`` in parallel, each with one message in flight."""

    type: Literal["mllp"]
    host: str
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    ack_timeout_s: float = Field(default=30.0, gt=0)
    connections: int = Field(default=1, ge=1, le=64)


class FhirEndpoint(_EndpointBase):
    """Deliver a FHIR message Bundle to ``<url>/$process-message``."""

    type: Literal["fhir"]
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)


class MailboxEndpoint(_EndpointBase):
    """Keep messages for the partner to poll over HTTP; flag them when unacknowledged too long."""

    type: Literal["mailbox"]
    unacked_alert_after_s: float = Field(default=24 * 3600, gt=0)


class MssanteEndpoint(_EndpointBase):
    """Deliver CI-SIS documents as MSSanté mail (IHE XDM) to ``address`` (SMTP, the mailbox's).

    The SMTP server, the application mailbox and its certificate are the
    deployment's (``CAREBROKER_MSSANTE__*``); a partner only names its address.
    """

    type: Literal["mssante"]
    address: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="The partner's MSSanté address (personal, organisation or application).",
    )


class DirectoryEndpoint(_EndpointBase):
    """Write each message as a file in a directory the partner's software reads (file exchange).

    Written under a temporary name (``.<name>.tmp``) and renamed when whole, so
    the reader never sees half a file; one file per delivery, named after it.
    """

    type: Literal["directory"]
    path: Path = Field(description="An absolute directory carebroker may write to.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        if not path.is_absolute():
            raise ValueError("must be an absolute path")
        return path


Endpoint = Annotated[
    MllpEndpoint | FhirEndpoint | MailboxEndpoint | MssanteEndpoint | DirectoryEndpoint,
    Field(discriminator="type"),
]
MSSANTE_PREFIX = "mssante:"  # recipient ids of MSSanté addresses no partner declares


class Accepts(_Model):
    """What a partner reads: format, HL7 version, character set (table 0211), ACK mode.

    ``hprim-medecins`` (the text report GP software reads) and ``hprim-sante``
    (HPRIM Santé records) carry lab results only; their ``charset`` defaults
    to ISO-8859-1, as HPRIM files are in the field.
    """

    format: Literal["hl7v2", "fhir", "hprim-medecins", "hprim-sante"]
    version: str | None = None
    charset: str | None = None
    ack_mode: Literal["original", "enhanced"] | None = None


class Partner(_Model):
    """One care partner (hospital, lab, GP practice ...)."""

    id: str = Field(pattern=SLUG)
    name: str
    kind: Literal["hospital", "lab", "gp", "clinic", "other"]
    facilities: list[str] = Field(default_factory=list)
    applications: list[str] = Field(
        default_factory=list,
        description="MSH-3 values; when set, MSH-3 must be one of them (optional).",
    )
    identifiers: list[Identifier] = Field(default_factory=list)
    practitioners: list[Practitioner] = Field(default_factory=list)
    endpoint: Endpoint | None = None
    accepts: Accepts | None = None
    inbound_charset: str | None = Field(
        default=None,
        description="Decode this sender's messages with this charset whatever MSH-18 says "
        "(for senders that label cp1252 as 8859/1).",
    )
    certificate_cn: str | None = Field(
        default=None, description="Client-certificate subject CN that identifies this partner."
    )
    networks: list[Annotated[str, AfterValidator(_cidr)]] = Field(
        default_factory=list,
        description="Source networks (CIDR) this partner connects from over MLLP: a message "
        "naming it in MSH-4 from another address (and without its client certificate) is "
        "refused AR.",
    )
    token_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 (hex) of bearer tokens this partner may use over HTTP.",
    )
    ordering: Literal["patient", "strict"] = Field(
        default="patient",
        description="`strict`: one failing delivery holds the whole endpoint, not one patient.",
    )
    expected_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="Alert when this sender sends nothing for longer than this (broker.alerts).",
    )
    strict: bool = Field(
        default=False,
        description="Validate this sender's HL7 v2 messages against their structure (hl7apy); "
        "a message that does not validate is answered AE and kept.",
    )
    identity_policy: Literal["strip", "refuse"] = Field(
        default="strip",
        description="An INS that is not valid and qualified (adapters/hl7v2/ins.py): `strip` "
        "forwards without it (flagged), `refuse` answers AE with ERR at PID-3/PID-32.",
    )
    qualified_statuses: list[Annotated[str, Field(pattern=r"^[A-Z]{4,5}$")]] = Field(
        default_factory=lambda: ["VALI", "QUAL"],
        min_length=1,
        description="PID-32 codes by which this sender asserts a qualified identity (PAM FR "
        "2.11 sends VALI; the RNIV status is QUAL).",
    )

    @field_validator("token_sha256")
    @classmethod
    def _hex_digests(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[0-9a-f]{64}", value):
                raise ValueError("must be 64 lower-case hex characters (sha256 of the token)")
        return values

    @model_validator(mode="after")
    def _endpoint_needs_accepts(self) -> Partner:
        if isinstance(self.endpoint, MssanteEndpoint):
            # What an MSSanté mailbox reads is fixed: the CDA documents in an IHE XDM mail.
            if not self.endpoint.address:
                raise ValueError("an mssante endpoint must name its `address`")
            return self
        if self.endpoint is not None and self.accepts is None:
            raise ValueError("a partner with an endpoint must say what it `accepts`")
        return self

    @property
    def declares_connection(self) -> bool:
        """Tell whether the partner says how it connects (certificate CN or source networks)."""
        return bool(self.certificate_cn or self.networks)

    @property
    def msh_application(self) -> str:
        """Return what carebroker writes in MSH-5 for this partner (its first application)."""
        return self.applications[0] if self.applications else self.id.upper()

    @property
    def msh_facility(self) -> str:
        """Return what carebroker writes in MSH-6 for this partner (its first facility)."""
        return self.facilities[0] if self.facilities else self.id.upper()


class PartnerRef(_Model):
    """A route target naming one partner."""

    partner: str


class RouteWhen(_Model):
    """When a route applies: message type (``*`` wildcards), sender, field conditions."""

    message: str = "*"
    sender: str | None = None
    fields: dict[str, str] = Field(
        default_factory=dict, description="HL7 v2 path -> required value (``*`` wildcards)."
    )

    @field_validator("fields")
    @classmethod
    def _paths(cls, fields: dict[str, str]) -> dict[str, str]:
        for path in fields:
            try:
                parse_path(path)
            except ValueError:
                raise ValueError(
                    f"{path!r} is not an HL7 v2 field path (like PV1-3.1 or OBR(2)-4)"
                ) from None
        return fields

    def matches_type(self, message_type: str) -> bool:
        """Tell whether ``message_type`` (``ORU^R01``) matches the ``message`` pattern."""
        return fnmatch.fnmatchcase(message_type, self.message)


ROLE_TARGETS = frozenset(
    {"patient-gp", "ordering-provider", "copies-to", "referred-to", "referrer", "addressee"}
)


class Route(_Model):
    """An explicit route from the file, on top of the built-in clinical routing."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    when: RouteWhen
    to: list[Annotated[str, Field(pattern=SLUG)] | PartnerRef]
    enabled: bool = True
    include_sender: bool = Field(
        default=False, description="Allow this route to send a message back to its sender."
    )

    @field_validator("to")
    @classmethod
    def _known_roles(cls, targets: list[str | PartnerRef]) -> list[str | PartnerRef]:
        for target in targets:
            if isinstance(target, str) and target not in ROLE_TARGETS:
                raise ValueError(
                    f"unknown role {target!r}; roles are {', '.join(sorted(ROLE_TARGETS))}, "
                    "or use {partner: ID}"
                )
        return targets


class DirectoryFile(_Model):
    """The whole partner directory file."""

    partners: list[Partner] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)


class Directory:
    """The partner directory with the lookups routing and ingress need.

    Built once per (re)load; immutable afterwards, so readers need no lock.
    """

    def __init__(self, data: DirectoryFile, source: str = "(inline)") -> None:
        self.source = source
        self.partners: dict[str, Partner] = {p.id: p for p in data.partners}
        self.routes: list[Route] = list(data.routes)
        self._by_facility: dict[str, Partner] = {}
        self._by_identifier: dict[tuple[str, str], Partner] = {}
        self._by_identifier_value: dict[str, Partner] = {}
        self._by_practitioner: dict[str, Partner] = {}
        self._by_certificate: dict[str, Partner] = {}
        self._by_token: dict[str, Partner] = {}
        self._networks: dict[str, tuple[Network, ...]] = {}
        self._by_mssante: dict[str, Partner] = {}
        for partner in data.partners:
            if partner.networks:
                self._networks[partner.id] = tuple(map(ipaddress.ip_network, partner.networks))
            if isinstance(partner.endpoint, MssanteEndpoint) and partner.endpoint.address:
                self._by_mssante[partner.endpoint.address.casefold()] = partner
            for facility in partner.facilities:
                self._by_facility[facility.casefold()] = partner
            for ident in partner.identifiers:
                self._by_identifier[(ident.system, ident.value)] = partner
                self._by_identifier_value.setdefault(ident.value, partner)
                self._by_facility.setdefault(ident.value.casefold(), partner)
            for person in partner.practitioners:
                self._by_practitioner[person.value] = partner
            if partner.certificate_cn:
                self._by_certificate[partner.certificate_cn] = partner
            for digest in partner.token_sha256:
                self._by_token[digest] = partner
        self.digest = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
        self.data = data

    @classmethod
    def empty(cls) -> Directory:
        """Return a directory with no partners (carebroker refuses every sender)."""
        return cls(DirectoryFile())

    def partner(self, partner_id: str) -> Partner | None:
        """Return the partner with this id; an ``mssante:...`` id is an MSSanté address.

        Routing sends a CI-SIS document to an MSSanté address no partner
        declares (``routing/cisis.py``): its deliveries name the recipient
        ``mssante:<address>`` (``mssante:patient`` for the patient, whose
        address, an INS, stays out of ids), and this returns a partner for it,
        made on the spot, with an MSSanté endpoint.
        """
        if partner_id.startswith(MSSANTE_PREFIX):
            return mssante_recipient(partner_id)
        return self.partners.get(partner_id)

    def by_mssante_address(self, address: str) -> Partner | None:
        """Return the partner whose MSSanté endpoint is ``address`` (case-insensitive)."""
        return self._by_mssante.get(address.casefold()) if address else None

    def by_facility(self, facility: str) -> Partner | None:
        """Return the partner an HL7 v2 facility (MSH-4 / MSH-6) names."""
        return self._by_facility.get(facility.casefold()) if facility else None

    def by_practitioner(self, value: str) -> Partner | None:
        """Return the partner a practitioner id (RPPS, ADELI, local) belongs to."""
        return self._by_practitioner.get(value) if value else None

    def by_identifier(self, system: str, value: str) -> Partner | None:
        """Return the partner an organisation identifier (FINESS ...) names."""
        return self._by_identifier.get((system, value))

    def by_certificate(self, common_name: str) -> Partner | None:
        """Return the partner a client-certificate CN identifies."""
        return self._by_certificate.get(common_name)

    def sends_from(self, partner: Partner, address: str) -> bool:
        """Tell whether ``address`` (an IP, without port) is in one of the partner's networks."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
        return any(ip in network for network in self._networks.get(partner.id, ()))

    def by_token(self, token: str) -> Partner | None:
        """Return the partner a bearer token belongs to (tokens are kept hashed)."""
        return self._by_token.get(hashlib.sha256(token.encode()).hexdigest())

    def recipients(self) -> Iterable[Partner]:
        """Return the partners carebroker can deliver to."""
        return (p for p in self.partners.values() if p.endpoint is not None)

    def resolve(self, ref: ProviderRef) -> Partner | None:
        """Return the partner a provider reference of a message names, or None.

        An organisation identifier qualified by its assigning authority (an
        OID, as HL7 v2 HD-2 and FHIR ``urn:oid:`` systems write it) is tried
        first; then the value as a practitioner id (RPPS, ADELI, local), which
        the directory keeps unique across partners; then as an organisation
        identifier or facility name alone.
        """
        if not ref.id:
            return None
        if ref.authority:
            for system in (ref.authority, f"urn:oid:{ref.authority}"):
                found = self._by_identifier.get((system, ref.id))
                if found is not None:
                    return found
        return (
            self._by_practitioner.get(ref.id)
            or self._by_identifier_value.get(ref.id)
            or self.by_facility(ref.id)
        )

    def to_document(self) -> dict[str, Any]:
        """Return the validated file as JSON-ready data (what PostgreSQL keeps)."""
        return self.data.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_document(cls, document: Any, source: str) -> Directory:
        """Rebuild a directory PostgreSQL kept; it was validated when it was loaded."""
        return parse_directory(document, source)


def mssante_recipient(recipient: str) -> Partner:
    """Return the partner standing for an MSSanté recipient id (``mssante:<address>``).

    Not validated (the id is not a slug): made by carebroker, never read from a
    file. ``mssante:patient`` (the patient's mailbox) has no address here; the
    render finds it in the message.
    """
    rest = recipient.removeprefix(MSSANTE_PREFIX)
    address = rest if "@" in rest else None
    return Partner.model_construct(
        id=recipient,
        name=address or "patient (MSSanté)",
        kind="other",
        endpoint=MssanteEndpoint.model_construct(type="mssante", address=address),
    )


def describe_changes(old: Directory | None, new: Directory) -> dict[str, list[str]]:
    """Summarise what a reload changes: partner ids and route names added, removed, changed.

    The summary goes into the audit trail (design invariant 7): ids only, so
    an operator sees what moved without the trail repeating the whole file.
    """
    before = old.data if old is not None else DirectoryFile()
    partners_before = {p.id: p for p in before.partners}
    partners_after = {p.id: p for p in new.data.partners}
    routes_before = {r.name: r for r in before.routes}
    routes_after = {r.name: r for r in new.data.routes}
    summary = {
        "partners_added": sorted(partners_after.keys() - partners_before.keys()),
        "partners_removed": sorted(partners_before.keys() - partners_after.keys()),
        "partners_changed": sorted(
            k
            for k in partners_after.keys() & partners_before.keys()
            if partners_after[k] != partners_before[k]
        ),
        "routes_added": sorted(routes_after.keys() - routes_before.keys()),
        "routes_removed": sorted(routes_before.keys() - routes_after.keys()),
        "routes_changed": sorted(
            k
            for k in routes_after.keys() & routes_before.keys()
            if routes_after[k] != routes_before[k]
        ),
    }
    return {k: v for k, v in summary.items() if v}


def parse_directory(
    data: Any, source: str = "(inline)", lines: dict[Loc, int] | None = None
) -> Directory:
    """Validate already-loaded data as a directory; errors name file, line, partner, field."""
    lines = lines or {}
    path = Path(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}:1: the file must be a mapping with `partners:` (and `routes:`)"
        )
    try:
        model = DirectoryFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(path, exc, lines, _labeller(data))) from exc
    problems = _cross_check(model, lines, data)
    if problems:
        raise ConfigError("\n".join(f"{path}:{line}: {text}" for line, text in problems))
    return Directory(model, source)


def load_directory(path: Path) -> Directory:
    """Load and validate the partner directory file at ``path``."""
    data, lines = load_yaml(path)
    return parse_directory(data, str(path), lines)


def _labeller(data: dict[str, Any]) -> Any:
    def label(loc: Loc) -> str | None:
        if len(loc) >= 2 and loc[0] in ("partners", "routes") and isinstance(loc[1], int):
            items = data.get(loc[0]) or []
            item = items[loc[1]] if loc[1] < len(items) else None
            key = "id" if loc[0] == "partners" else "name"
            ident = item.get(key) if isinstance(item, dict) else None
            kind = "partner" if loc[0] == "partners" else "route"
            return f"{kind} {ident!r}" if ident else f"{kind} #{loc[1] + 1}"
        return None

    return label


def _cross_check(
    model: DirectoryFile, lines: dict[Loc, int], data: dict[str, Any]
) -> list[tuple[int, str]]:
    """Find what one model cannot see: duplicates across partners, dangling references."""
    problems: list[tuple[int, str]] = []
    seen_ids: dict[str, int] = {}
    facility_owner: dict[str, str] = {}
    practitioner_owner: dict[str, str] = {}
    for i, partner in enumerate(model.partners):
        line = lines.get(("partners", i, "id"), lines.get(("partners", i), 1))
        if partner.id in seen_ids:
            problems.append(
                (
                    line,
                    f"partner {partner.id!r}: id: duplicate of the partner "
                    f"at line {seen_ids[partner.id]}",
                )
            )
        seen_ids.setdefault(partner.id, line)
        for j, facility in enumerate(partner.facilities):
            owner = facility_owner.setdefault(facility.casefold(), partner.id)
            if owner != partner.id:
                problems.append(
                    (
                        lines.get(("partners", i, "facilities", j), line),
                        f"partner {partner.id!r}: facilities: {facility!r} already "
                        f"belongs to partner {owner!r}",
                    )
                )
        for j, person in enumerate(partner.practitioners):
            owner = practitioner_owner.setdefault(person.value, partner.id)
            if owner != partner.id:
                problems.append(
                    (
                        lines.get(("partners", i, "practitioners", j), line),
                        f"partner {partner.id!r}: practitioners: {person.value} "
                        f"resolves to two partners ({owner!r} and {partner.id!r})",
                    )
                )
    for i, route in enumerate(model.routes):
        line = lines.get(("routes", i), 1)
        if route.when.sender and route.when.sender not in seen_ids:
            problems.append(
                (
                    lines.get(("routes", i, "when", "sender"), line),
                    f"route {route.name!r}: when.sender: unknown partner {route.when.sender!r}",
                )
            )
        for j, target in enumerate(route.to):
            if isinstance(target, PartnerRef) and target.partner not in seen_ids:
                problems.append(
                    (
                        lines.get(("routes", i, "to", j), line),
                        f"route {route.name!r}: to: unknown partner {target.partner!r}",
                    )
                )
            elif isinstance(target, PartnerRef):
                partner = next(p for p in model.partners if p.id == target.partner)
                if partner.endpoint is None:
                    problems.append(
                        (
                            lines.get(("routes", i, "to", j), line),
                            f"route {route.name!r}: to: partner {target.partner!r} "
                            "has no endpoint to deliver to",
                        )
                    )
    return problems
