"""The ``mllp`` role: the MLLP listener in front of the HL7 v2 ingress pipeline."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from adapters.hl7v2.checks import SenderCheck, unverified_senders
from adapters.hl7v2.ingress import Ingress
from adapters.hl7v2.mllp import Limits, MllpServer, server_tls_context
from adapters.hl7v2.settings import MllpSettings
from broker.directory import Directory
from broker.errors import ConfigError

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)


def sender_check(settings: MllpSettings, directory: Directory) -> SenderCheck:
    """Decide how ingress verifies senders; refuse a listener anyone could spoof through.

    Beyond loopback without mutual TLS, every partner MSH-4 can name must
    declare how it connects (``certificate_cn``, ``networks``), unless the
    deployer accepts otherwise with ``CAREBROKER_MLLP__ALLOW_UNVERIFIED_SENDERS``.
    """
    if settings.is_loopback_only or settings.allow_unverified_senders or settings.tls_client_ca:
        # Mutual TLS: every connection has a certificate naming its partner.
        return "declared"
    unverified = unverified_senders(directory)
    if unverified:
        shown = ", ".join(unverified[:10]) + (
            f" and {len(unverified) - 10} more" if len(unverified) > 10 else ""
        )
        raise ConfigError(
            f"MLLP listens on {settings.host}, beyond this machine, but partner(s) {shown} "
            f"in {directory.source} declare neither certificate_cn nor networks: anyone who "
            "can connect could send as them. Declare how each one connects, or set "
            "CAREBROKER_MLLP__ALLOW_UNVERIFIED_SENDERS=true to accept that risk."
        )
    return "required"


class MllpRole:
    """Accept HL7 v2 over MLLP (optionally TLS / mutual TLS) into the message store."""

    name = "mllp"

    def __init__(self) -> None:
        self.ingress: Ingress | None = None
        self.server: MllpServer | None = None

    async def start(self, ctx: Context) -> None:
        """Check sender verification, start the group commits, then listen."""
        settings = ctx.settings.mllp
        tls = None
        if settings.tls_cert or settings.tls_key:
            if not (settings.tls_cert and settings.tls_key):
                raise ConfigError(
                    "MLLP TLS needs both CAREBROKER_MLLP__TLS_CERT and CAREBROKER_MLLP__TLS_KEY"
                )
            tls = server_tls_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        elif settings.tls_client_ca:
            raise ConfigError("CAREBROKER_MLLP__TLS_CLIENT_CA needs a server certificate and key")
        senders = sender_check(settings, ctx.directory)
        self.ingress = Ingress(
            ctx.stores.messages,
            ctx.directory,
            ctx.pseudonymizer,
            batch_max=ctx.settings.ingress_batch_max,
            senders=senders,
            ins_production=ctx.settings.ins.production,
        )
        ctx.on_reload.append(self._use_directory)
        self.ingress.start()
        self.server = MllpServer(
            self.ingress.handle,
            host=settings.host,
            port=settings.port,
            limits=limits_of(settings),
            tls=tls,
            on_incomplete=self.ingress.incomplete,
            on_overloaded=self.ingress.overloaded,
        )
        await self.server.start()

    def _use_directory(self, directory: Directory) -> None:
        assert self.ingress is not None
        if self.ingress.senders == "required" and (unverified := unverified_senders(directory)):
            # The reload stands (it is audited); their messages are refused AR meanwhile.
            log.error(
                "partners declare neither certificate_cn nor networks: their MLLP messages "
                "are refused on this listener",
                extra={"partners": ",".join(unverified)},
            )
        self.ingress.use_directory(directory)

    async def stop(self) -> None:
        """Stop listening (frames in hand are answered), then flush the group commits."""
        if self.server is not None:
            await self.server.stop()
        if self.ingress is not None:
            await self.ingress.stop()

    def endpoints(self) -> list[str]:
        """Return the banner line: where MLLP listens, and with which security."""
        if self.server is None:
            return []
        security = (
            ", mutual TLS" if self.server.mutual else ", TLS" if self.server.tls is not None else ""
        )
        return [f"mllp: {self.server.address} (HL7 v2 over MLLP{security})"]


def limits_of(settings: MllpSettings) -> Limits:
    """Return the listener's limits from its settings."""
    return Limits(
        max_frame_bytes=settings.max_frame_bytes,
        idle_timeout_s=settings.idle_timeout_s,
        max_connections=settings.max_connections,
        max_connections_per_peer=settings.max_connections_per_peer,
        max_buffered_bytes=settings.max_buffered_bytes,
        max_stray_bytes=settings.max_stray_bytes,
    )
