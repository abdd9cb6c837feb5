"""``/api/partners``: the directory with each partner's health, and the admin reload.

Health is read from the spine tables: last contact is the latest message
received from the partner or delivered to it, the last error is the newest
``deliveries.last_error`` for it, and a configured TLS client certificate
shows its expiry (design notes: certificate-expiry alerts for TLS). Recent
traffic is the flows page's own figures, so both pages always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from broker.console.actions import Pause, pauses
from broker.console.auth import Admin, Viewer
from broker.console.deps import Ctx
from broker.console.flows import Inbound, Outbound
from broker.directory import Partner
from broker.errors import ConfigError
from broker.events import AuditEvent
from broker.store.console import ConsoleStore

ERROR_CHARS = 300  # the page shows the start of a partner's last error

router = APIRouter(prefix="/api/partners", tags=["partners"])


class Certificate(BaseModel):
    """A TLS certificate's identity and expiry; ``error`` when it cannot be read."""

    path: str
    subject: str = ""
    not_after: datetime | None = None
    days_left: int | None = None
    error: str | None = None


class Health(BaseModel):
    """What the store says about a partner lately."""

    last_received_at: datetime | None = None
    last_delivered_at: datetime | None = None
    last_error: str | None = Field(default=None, description="Newest delivery error, shortened.")
    last_error_at: datetime | None = None
    certificate: Certificate | None = None


class PartnerView(BaseModel):
    """One partner as the Partners page shows it (no tokens, no practitioners)."""

    id: str
    name: str
    kind: str
    facilities: list[str]
    endpoint: str = Field(description="mllp | fhir | mailbox, or empty when it only sends.")
    address: str = Field(description="host:port, URL, or empty.")
    tls: bool
    accepts: str = Field(description="Format, version and charset it reads.")
    health: Health
    paused: Pause | None = Field(description="Set while an operator paused delivery to it.")
    inbound: Inbound | None
    outbound: Outbound | None


class Partners(BaseModel):
    """The directory as loaded now."""

    source: str
    digest: str
    partners: list[PartnerView]


class Reloaded(BaseModel):
    """The outcome of a reload."""

    source: str
    digest: str
    partners: int
    changed: bool


def certificate(path: Path, now: datetime | None = None) -> Certificate:
    """Read a PEM certificate's subject and expiry (RFC 5280 §4.1.2.5 notAfter)."""
    now = now or datetime.now(UTC)
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        problem = f"cannot read the certificate: {type(exc).__name__}"
        return Certificate(path=str(path), error=problem)
    not_after = cert.not_valid_after_utc
    return Certificate(
        path=str(path),
        subject=cert.subject.rfc4514_string(),
        not_after=not_after,
        days_left=(not_after - now).days,
    )


def _client_certificate(partner: Partner) -> Path | None:
    # The directory has no client-certificate field yet; the delivery issue may
    # add one to the endpoint under one of these names.
    for name in ("client_cert", "tls_client_cert", "tls_cert"):
        value = getattr(partner.endpoint, name, None)
        if value:
            return Path(value)
    return None


def _address(partner: Partner) -> str:
    endpoint = partner.endpoint
    if endpoint is None or endpoint.type == "mailbox":
        return ""
    if endpoint.type == "mllp":
        return f"{endpoint.host}:{endpoint.port}"
    if endpoint.type == "mssante":
        return endpoint.address or ""
    if endpoint.type == "directory":
        return str(endpoint.path)
    return endpoint.url


def _accepts(partner: Partner) -> str:
    accepts = partner.accepts
    if accepts is None:
        return ""
    return " ".join(p for p in (accepts.format, accepts.version, accepts.charset) if p)


async def health(store: ConsoleStore, ids: list[str]) -> dict[str, Health]:
    """Return last contact and last error of each partner id, from the store."""
    async with store.connection() as work:
        rows = await work.traffic.health(ids)
    found = {}
    for r in rows:
        error = r["last_error"]
        found[r["p"]] = Health(
            last_received_at=r["last_received_at"],
            last_delivered_at=r["last_delivered_at"],
            last_error=error[:ERROR_CHARS] if error else None,
            last_error_at=r["last_error_at"],
        )
    return found


@router.get("", summary="Partner directory with health and recent traffic")
async def list_partners(
    _: Viewer,
    ctx: Ctx,
) -> Partners:
    """Return every partner of the loaded directory."""
    assert ctx.console is not None  # context() checked it
    directory = ctx.directory
    flows = await ctx.console.flows.get(ctx.stores.console, directory)
    inbound = {i.partner: i for i in flows.inbound}
    outbound = {o.partner: o for o in flows.outbound}
    found = await health(ctx.stores.console, list(directory.partners))
    paused = await pauses(ctx.stores.console)
    views = []
    for partner in directory.partners.values():
        cert_path = _client_certificate(partner)
        state = found.get(partner.id, Health())
        if cert_path is not None:
            state = state.model_copy(update={"certificate": certificate(cert_path)})
        views.append(
            PartnerView(
                id=partner.id,
                name=partner.name,
                kind=partner.kind,
                facilities=list(partner.facilities),
                endpoint=partner.endpoint.type if partner.endpoint else "",
                address=_address(partner),
                tls=bool(getattr(partner.endpoint, "tls", False)),
                accepts=_accepts(partner),
                health=state,
                paused=paused.get(partner.id),
                inbound=inbound.get(partner.id),
                outbound=outbound.get(partner.id),
            )
        )
    return Partners(source=directory.source, digest=directory.digest, partners=views)


@router.post(
    "/reload",
    summary="Reload the partner directory (admin)",
    responses={422: {"description": "The file is invalid; the old directory stays in force."}},
)
async def reload_partners(
    who: Admin,
    ctx: Ctx,
) -> Reloaded:
    """Re-read the partner configuration and swap it in; audited either way."""
    outcome: Literal["success", "minor_failure"] = "success"
    problem: str | None = None
    changed = False
    try:
        # Stored in PostgreSQL and announced to every process; a change is
        # audited there, with the diff summary.
        changed = await ctx.reload_directory(actor=who.actor)
    except ConfigError as exc:
        outcome, problem = "minor_failure", str(exc)
    directory = ctx.directory
    if not changed:
        # Nothing was stored (refused, or the same file): the operator's action
        # is still audited, with its outcome.
        await ctx.stores.audit.record(
            [
                AuditEvent(
                    kind="partners_reloaded",
                    actor=who.actor,
                    outcome=outcome,
                    detail={
                        "source": directory.source,
                        "digest": directory.digest,
                        "partners": len(directory.partners),
                        "changed": False,
                        **({"error": problem} if problem else {}),
                    },
                )
            ]
        )
    if problem is not None:
        raise HTTPException(422, problem)
    return Reloaded(
        source=directory.source,
        digest=directory.digest,
        partners=len(directory.partners),
        changed=changed,
    )
