"""Keep every process's partner directory equal to the current version in PostgreSQL.

Who stores a version (``broker.store.directory.DirectoryStore.store``):

- a process started with ``--config`` stores its file at start (when it
  differs from the current version);
- ``carebroker partners reload [--config FILE]`` stores a changed file;
- SIGHUP makes a process re-read its ``--config`` file and store it.

An invalid file is refused with file, line, partner and field named, and the
running directory stays as it was. A process started without ``--config``
uses the current version from PostgreSQL. Every process follows the
``carebroker_partners`` notifications (and polls now and then, in case one
was missed) and swaps a new version in, telling ``ctx.on_reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from broker.directory import Directory, load_directory
from broker.errors import ConfigError, StoreRefusedError, StoreUnavailableError
from broker.store.directory import Version

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

POLL_S = 30.0  # also check now and then, in case a notification was missed


def summary_text(summary: dict[str, Any]) -> str:
    """Render a change summary on one line: ``partners_added: a, b; routes_changed: r``."""
    if not summary:
        return "no change"
    return "; ".join(f"{key}: {', '.join(values)}" for key, values in summary.items())


class DirectorySync:
    """Keep a process's directory equal to PostgreSQL's current version."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.stores.directory
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Store this process's file (if any) or adopt the stored version; then follow changes."""
        ctx = self.ctx
        if ctx.settings.config is not None:
            stored = await self.store.store(ctx.directory, actor="startup")
            if stored is not None:
                log.info(
                    "partner directory stored",
                    extra={"version": stored.version, "partners": len(ctx.directory.partners)},
                )
        else:
            found = await self.store.current()
            if found is not None:
                self._swap(found.directory)
        self._task = asyncio.create_task(self._follow(), name="directory-sync")

    async def stop(self) -> None:
        """Stop following changes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reload_file(self, actor: str) -> Version | None:
        """Re-read the ``--config`` file, store it, swap it in; raise ConfigError if invalid."""
        path = self.ctx.settings.config
        if path is None:
            raise ConfigError("this process was started without --config: nothing to re-read")
        directory = load_directory(path)
        stored = await self.store.store(directory, actor=actor)
        self._swap(directory)
        return stored

    def _swap(self, directory: Directory) -> None:
        if directory.digest == self.ctx.directory.digest:
            return
        self.ctx.directory = directory
        for callback in self.ctx.on_reload:
            callback(directory)
        log.info("partner directory swapped in", extra={"partners": len(directory.partners)})

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            try:
                async with self.store.changes(self._notified):
                    while True:
                        await self._check()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(POLL_S):
                                await self._wake.wait()
                        self._wake.clear()
            except (StoreUnavailableError, StoreRefusedError):
                log.warning("directory sync: message store unavailable, retrying")
                await asyncio.sleep(2.0)

    async def _check(self) -> None:
        digest = await self.store.current_digest()
        if digest is None or digest == self.ctx.directory.digest:
            return
        found = await self.store.current()
        if found is not None:
            self._swap(found.directory)
