"""What the roles of one process share, and what a role is.

Every role module imports :class:`Context` and :class:`RoleService` from here;
``broker/app.py`` composes the roles and imports every one of them, so nothing
below it imports ``broker.app``. The context hands out stores
(``ctx.stores``, ``broker/store/stores.py``), never a pool or a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter

from broker import kafka
from broker.directory import Directory
from broker.errors import ConfigError
from broker.health import Readiness
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings
from broker.store.stores import Stores

if TYPE_CHECKING:
    from broker.console.deps import Console
    from broker.directory_sync import DirectorySync


@dataclass
class Context:
    """What every role of a process shares. Built once at start-up, passed down."""

    settings: Settings
    stores: Stores
    directory: Directory
    pseudonymizer: Pseudonymizer
    readiness: Readiness
    producer: kafka.Producer
    stop: asyncio.Event
    kafka_is_ephemeral: bool = False
    routers: list[APIRouter] = field(default_factory=list)
    on_reload: list[Callable[[Directory], None]] = field(default_factory=list)
    # Told the (partition, lane) pairs of deliveries a router of this process has
    # just committed (the delivery role's dispatcher listens when it runs here).
    on_routed: list[Callable[[list[tuple[int, str]]], None]] = field(default_factory=list)
    console: Console | None = None  # set by the console role (broker/console/deps.py)

    directory_sync: DirectorySync | None = None  # set at start-up (broker/directory_sync.py)

    async def reload_directory(self, actor: str) -> bool:
        """Re-read the partner file, store it (audited) and swap it in everywhere.

        Return whether it changed. Raise ConfigError (naming file, line, field)
        and keep the running directory when the file is invalid.
        """
        if self.directory_sync is None:
            raise ConfigError("the partner directory is not loaded in this process")
        return await self.directory_sync.reload_file(actor=actor) is not None


class RoleService(Protocol):
    """One role: ``start`` returns once it serves (ports bound), ``stop`` drains it."""

    name: str

    async def start(self, ctx: Context) -> None:
        """Start serving; raise StartupError if it cannot."""

    async def stop(self) -> None:
        """Stop, finishing or leaving for replay what is in flight."""

    def endpoints(self) -> list[str]:
        """Return lines describing what this role serves, for the start-up banner."""


class TaskRole:
    """A role that is one background task running until the process stops."""

    name = "task"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def start(self, ctx: Context) -> None:
        self._task = asyncio.create_task(self.run(ctx), name=f"role-{self.name}")

    async def run(self, ctx: Context) -> None:
        await ctx.stop.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        try:
            async with asyncio.timeout(6):
                await self._task
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def endpoints(self) -> list[str]:
        return []


__all__ = ["Context", "RoleService", "TaskRole"]
