"""The ``console`` role: serves the status API (the web UI lands with the console issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.console.api import status_router

if TYPE_CHECKING:
    from broker.app import Context


class ConsoleRole:
    """Serve ``/api/messages`` on the process's HTTP port."""

    name = "console"

    async def start(self, ctx: Context) -> None:
        """Add the status API to the process's HTTP application."""
        ctx.routers.append(status_router(ctx.pool))

    async def stop(self) -> None:
        """Nothing to stop: the HTTP server belongs to the process."""

    def endpoints(self) -> list[str]:
        """Return the status API line for the start-up banner."""
        return ["console: /api/messages (status API)"]
