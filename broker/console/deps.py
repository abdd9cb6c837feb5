"""What console routes need from the process, as FastAPI dependencies.

The console role builds one :class:`Console` per process and hangs it on the
:class:`~broker.app.Context`; ``broker.app.mount`` puts the context on
``app.state``, where these dependencies find it. Routers can then be plain
module-level objects that any role appends to ``ctx.routers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request

from broker.context import Context

if TYPE_CHECKING:
    from broker.console.auth import Authenticator
    from broker.console.flows import FlowsCache
    from broker.console.oidc import OidcClient
    from broker.console.settings import ConsoleSettings


@dataclass
class Console:
    """The console's per-process state."""

    settings: ConsoleSettings
    auth: Authenticator
    flows: FlowsCache
    oidc: OidcClient | None = None


def context(request: Request) -> Context:
    """Return the process context; 503 when the console role is not running here."""
    ctx: Context | None = getattr(request.app.state, "context", None)
    if ctx is None or ctx.console is None:
        raise HTTPException(503, "the console role is not running in this process")
    return ctx


def console(request: Request) -> Console:
    """Return the console's state."""
    found = context(request).console
    assert found is not None  # context() checked it
    return found


Ctx = Annotated[Context, Depends(context)]
