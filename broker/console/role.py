"""The ``console`` role: the operator API and web UI on the process's HTTP port."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from broker.console import (
    actions,
    alert_actions,
    api,
    auth,
    content,
    dead_letters,
    flows,
    mssante,
    oidc,
    partners,
    refusals,
    ui,
    users_api,
)
from broker.console.deps import Console
from broker.context import Context, TaskRole
from broker.errors import StoreUnavailableError

log = logging.getLogger(__name__)

ROUTERS = (
    auth.router,
    users_api.router,
    flows.router,
    partners.router,
    api.router,
    mssante.router,
    content.router,
    actions.router,
    dead_letters.router,
    alert_actions.router,
    refusals.router,
    oidc.router,
    ui.router,
)


def build_console(ctx: Context) -> Console:
    """Build the console's state for this process (``ctx.settings.console``) and hang it on ctx."""
    settings = ctx.settings.console
    ctx.console = Console(
        settings=settings,
        auth=auth.Authenticator(
            ctx.stores.accounts,
            settings,
            ctx.pseudonymizer,
            ctx.stores.throttle,
            ctx.stores.refusals,
        ),
        flows=flows.FlowsCache(settings.flows_cache_s),
        oidc=oidc.OidcClient(settings)
        if settings.oidc_issuer and settings.oidc_client_id
        else None,
    )
    ctx.routers.extend(ROUTERS)
    return ctx.console


class ConsoleRole(TaskRole):
    """Serve the console; hourly, forget sessions that ended a week ago and idle throttle keys.

    Meanwhile, write the strangers' refusals it noted every few seconds.
    """

    name = "console"

    async def start(self, ctx: Context) -> None:
        build_console(ctx)
        self._where = f"http://{ctx.settings.http_host}:{ctx.settings.http_port}/console/"
        await super().start(ctx)

    async def run(self, ctx: Context) -> None:
        assert ctx.console is not None
        strangers = asyncio.create_task(ctx.console.auth.strangers.run(ctx.stop))
        while not ctx.stop.is_set():
            with contextlib.suppress(StoreUnavailableError):
                purged = await ctx.console.auth.sessions.purge()
                if purged:
                    log.info("ended sessions purged", extra={"count": purged})
                await ctx.console.auth.throttle.purge()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3600):
                    await ctx.stop.wait()
        await strangers

    def endpoints(self) -> list[str]:
        return [f"console: {self._where} (operator web UI and API)"]
