"""MSSanté settings: ``Settings.mssante``, from ``CAREBROKER_MSSANTE__*`` variables.

One application mailbox (the platform's "BAL applicative") sends over SMTP and
is read over IMAP: the outbound transport (``routing/transports/mssante.py``)
and the readers of that mailbox (delivery notices here, inbound documents in
issue 16) share these settings. The names of the eight connection settings
are fixed by issue 15: ``SMTP_URL``, ``IMAP_URL``, ``MAILBOX``, ``CERT``,
``KEY``, ``CA``, ``USERNAME``, ``PASSWORD``.

URLs say how to connect: ``smtps://host:465`` (TLS from the first byte),
``smtp+starttls://host:587`` (STARTTLS, required), ``imaps://host:993``
(the IMAP client, aioimaplib, has no STARTTLS). Plain ``smtp://`` and ``imap://`` are accepted
for a loopback host only (tests, a local relay): patient documents never
cross a network in clear. ``CERT``/``KEY`` are the application mailbox's
client certificate (IGC Santé in production), presented on both connections;
``CA`` the bundle that signs the servers' certificates (unset: the system's).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Security = Literal["tls", "starttls", "plain"]
_SCHEMES: dict[str, tuple[str, Security, int]] = {
    "smtps": ("smtp", "tls", 465),
    "smtp+starttls": ("smtp", "starttls", 587),
    "smtp": ("smtp", "plain", 25),
    "imaps": ("imap", "tls", 993),
    "imap": ("imap", "plain", 143),
}


@dataclass(frozen=True)
class Server:
    """Where a mail server is and how to reach it (read from a ``*_URL`` setting)."""

    protocol: Literal["smtp", "imap"]
    host: str
    port: int
    security: Security
    folder: str = "INBOX"  # IMAP: the path of the URL (imaps://host/Notices)


def parse_server(url: str) -> Server:
    """Return the server a URL names; raise ValueError naming what is wrong (never the URL)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(sorted(_SCHEMES))}")
    protocol, security, default_port = _SCHEMES[scheme]
    host = parts.hostname or ""
    if not host:
        raise ValueError("the URL names no host")
    if security == "plain" and not is_loopback(host):
        raise ValueError(f"{scheme}:// (no TLS) is allowed to a loopback host only")
    folder = unquote(parts.path.strip("/")) or "INBOX"
    return Server(protocol, host, parts.port or default_port, security, folder)  # type: ignore[arg-type]  # protocol is one of the two


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MssanteSettings(BaseModel):
    """The application mailbox: its servers, address, client certificate and credentials."""

    # A misspelt CAREBROKER_MSSANTE__... variable is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

    smtp_url: str | None = Field(
        default=None,
        description="SMTP submission server: smtps://host:465, smtp+starttls://host:587 "
        "(smtp:// to a loopback host only); unset: no MSSanté sending.",
    )
    imap_url: str | None = Field(
        default=None,
        description="IMAP server of the application mailbox (imaps://host:993/INBOX; "
        "imap:// to a loopback host only); unset: notices are not read.",
    )
    mailbox: str | None = Field(
        default=None,
        description="Address of the application mailbox (BAL applicative): the From of every "
        "mail, where delivery and read notices come back.",
    )
    cert: Path | None = Field(
        default=None, description="Client certificate (PEM) of the application mailbox."
    )
    key: Path | None = Field(default=None, description="Private key (PEM) of that certificate.")
    ca: Path | None = Field(
        default=None,
        description="CA bundle that signs the mail servers' certificates; unset: the system's.",
    )
    username: str | None = Field(
        default=None, description="SMTP/IMAP login; unset: the mailbox address."
    )
    password: SecretStr | None = Field(
        default=None, description="SMTP/IMAP password; unset: no password login (certificate)."
    )
    product_reference: str | None = Field(
        default=None,
        description="X-MSS-NIL header: the product reference given when the software was "
        "declared to the MSSanté trust space; unset: not sent.",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="Longest one SMTP or IMAP exchange may take (seconds)."
    )
    connections: int = Field(
        default=2, ge=1, le=32, description="SMTP connections used in parallel per process."
    )
    notice_poll_s: float = Field(
        default=30.0,
        gt=0,
        description="How often the mailbox is read for notices when the server has no IDLE, "
        "and the longest an IDLE waits before reading again (seconds).",
    )
    reception_overdue_s: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Alert when a mail asked for a delivery notice (ACK_RECEPTION) and none "
        "came this long after it was sent (seconds).",
    )

    @field_validator("smtp_url", "imap_url")
    @classmethod
    def _server(cls, url: str | None) -> str | None:
        if url is not None:
            parse_server(url)  # raises ValueError, which names the problem, never the URL
        return url

    @model_validator(mode="after")
    def _pairs(self) -> MssanteSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("CERT and KEY go together")
        if (self.smtp_url or self.imap_url) and not self.mailbox:
            raise ValueError("MAILBOX (the application mailbox address) is required with a URL")
        return self

    @property
    def smtp(self) -> Server | None:
        """Return the SMTP server, or None when MSSanté sending is not configured."""
        return parse_server(self.smtp_url) if self.smtp_url else None

    @property
    def imap(self) -> Server | None:
        """Return the IMAP server, or None when the mailbox is not read."""
        return parse_server(self.imap_url) if self.imap_url else None

    @property
    def login(self) -> str:
        """Return the login name: USERNAME, else the mailbox address."""
        return self.username or self.mailbox or ""

    @property
    def domain(self) -> str:
        """Return the mailbox's domain (the right-hand side of Message-IDs carebroker makes)."""
        return (self.mailbox or "carebroker.invalid").rpartition("@")[2]

    def tls_context(self) -> ssl.SSLContext:
        """Return the client TLS context: servers verified against CA, our certificate shown."""
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None and self.key is not None:
            context.load_cert_chain(str(self.cert), str(self.key))
        return context
