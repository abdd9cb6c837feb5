"""The ``mllp`` role: the MLLP listener in front of the HL7 v2 ingress pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.hl7v2.ingress import Ingress
from adapters.hl7v2.mllp import MllpServer, server_tls_context
from broker.errors import ConfigError

if TYPE_CHECKING:
    from broker.context import Context


class MllpRole:
    """Accept HL7 v2 over MLLP (optionally TLS / mutual TLS) into the message store."""

    name = "mllp"

    def __init__(self) -> None:
        self.ingress: Ingress | None = None
        self.server: MllpServer | None = None

    async def start(self, ctx: Context) -> None:
        """Start the group commits, then listen."""
        settings = ctx.settings
        tls = None
        if settings.mllp_tls_cert or settings.mllp_tls_key:
            if not (settings.mllp_tls_cert and settings.mllp_tls_key):
                raise ConfigError(
                    "MLLP TLS needs both CAREBROKER_MLLP_TLS_CERT and CAREBROKER_MLLP_TLS_KEY"
                )
            tls = server_tls_context(
                settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca
            )
        elif settings.mllp_tls_client_ca:
            raise ConfigError("CAREBROKER_MLLP_TLS_CLIENT_CA needs a server certificate and key")
        self.ingress = Ingress(
            ctx.stores.messages,
            ctx.directory,
            ctx.pseudonymizer,
            batch_max=settings.ingress_batch_max,
        )
        ctx.on_reload.append(self.ingress.use_directory)
        self.ingress.start()
        self.server = MllpServer(
            self.ingress.handle,
            host=settings.mllp_host,
            port=settings.mllp_port,
            max_frame_bytes=settings.mllp_max_frame_bytes,
            idle_timeout_s=settings.mllp_idle_timeout_s,
            tls=tls,
            on_incomplete=self.ingress.incomplete,
        )
        await self.server.start()

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
