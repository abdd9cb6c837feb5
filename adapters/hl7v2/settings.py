"""MLLP listener settings: ``Settings.mllp``, from ``CAREBROKER_MLLP__*`` variables.

A plain model nested in :class:`broker.settings.Settings`, which reads the
environment once at start-up; the ``mllp`` role finds it at
``ctx.settings.mllp``. The flat names these fields had before
(``CAREBROKER_MLLP_PORT``) are refused at start-up with their new name
(``CAREBROKER_MLLP__PORT``), so a deployment never silently falls back to a
default. Kept apart from the listener so that it imports nothing but pydantic.

The resource limits bound what one peer, or all of them, can make the
listener hold: connections, bytes of frames in progress, bytes outside any
frame (issue 13; ``docs/security.md``, "MLLP listener").
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class MllpSettings(BaseModel):
    """Where the MLLP listener listens, with which security, and how much it may hold."""

    # A misspelt CAREBROKER_MLLP__... variable is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="MLLP listen address.")
    port: int = Field(default=2575, ge=0, le=65535, description="MLLP listen port.")
    max_frame_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest MLLP frame accepted; a larger one is refused with AR.",
    )
    idle_timeout_s: float = Field(
        default=300.0, gt=0, description="Close an MLLP connection idle this long (seconds)."
    )
    tls_cert: Path | None = Field(default=None, description="Server certificate (PEM).")
    tls_key: Path | None = Field(default=None, description="Server private key (PEM).")
    tls_client_ca: Path | None = Field(
        default=None, description="CA for client certificates: set to require mutual TLS."
    )
    allow_unverified_senders: bool = Field(
        default=False,
        description="Listen beyond loopback although a sending partner declares neither "
        "`certificate_cn` nor `networks` (anyone who can connect may send as it); false: "
        "refused at start-up.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Most MLLP connections open at once; beyond it a new one is closed at once "
        "(counted in carebroker_mllp_connections_refused_total).",
    )
    max_connections_per_peer: int = Field(
        default=50,
        ge=1,
        description="Most MLLP connections open at once from one source address.",
    )
    max_buffered_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes of frames in progress all connections may hold beyond their first "
        "64 KiB each; a frame that would exceed it is read to its end unkept and answered AR "
        "(resend later).",
    )
    max_stray_bytes: int = Field(
        default=16 * 1024,
        ge=1,
        description="Bytes outside any MLLP frame after which a connection is closed.",
    )

    @property
    def is_loopback_only(self) -> bool:
        """Tell whether the listen address is reachable from this machine only."""
        if self.host.strip().lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False  # a host name: whatever it resolves to, assume it is reachable
