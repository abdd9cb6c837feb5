"""The partner directory in PostgreSQL: versions, reloads without restart, every change audited.

Design invariant 7 (configuration is data): the directory file is validated,
then stored as a new version in ``partner_directory`` with a summary of what
changed (partner ids and route names), and a ``partners_reloaded`` audit
event, in one transaction; ``NOTIFY carebroker_partners`` then tells every
running process, whatever its role or host, to swap the new version in.

Who stores a version:

- a process started with ``--config`` stores its file at start (when it
  differs from the current version);
- ``carebroker partners reload [--config FILE]`` stores a changed file;
- SIGHUP makes a process re-read its ``--config`` file and store it.

An invalid file is refused with file, line, partner and field named, and the
running directory stays as it was. A process started without ``--config``
uses the current version from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from broker.directory import Directory, describe_changes, load_directory
from broker.errors import ConfigError, StoreUnavailableError
from broker.events import AuditEvent
from broker.store import events
from broker.store.db import UNAVAILABLE, transaction

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

CHANNEL = "carebroker_partners"
_LOCK = 0x70617274  # "part": serialises concurrent stores of a new version
POLL_S = 30.0  # also check now and then, in case a notification was missed


@dataclass(frozen=True)
class Version:
    """One stored version of the directory."""

    version: int
    directory: Directory
    summary: dict[str, list[str]]


async def current(pool: asyncpg.Pool) -> Version | None:
    """Return the current (latest) version, or None when none was ever stored."""
    row = await pool.fetchrow(
        "SELECT version, source, document, summary FROM partner_directory"
        " ORDER BY version DESC LIMIT 1"
    )
    if row is None:
        return None
    return Version(
        row["version"], Directory.from_document(row["document"], row["source"]), row["summary"]
    )


async def current_digest(pool: asyncpg.Pool) -> str | None:
    """Return the digest of the current version (cheap: for polling)."""
    digest: str | None = await pool.fetchval(
        "SELECT digest FROM partner_directory ORDER BY version DESC LIMIT 1"
    )
    return digest


async def store(pool: asyncpg.Pool, directory: Directory, *, actor: str) -> Version | None:
    """Store ``directory`` as the new current version; return it, or None if unchanged."""
    async with transaction(pool) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        row = await conn.fetchrow(
            "SELECT digest, source, document FROM partner_directory ORDER BY version DESC LIMIT 1"
        )
        if row is not None and row["digest"] == directory.digest:
            return None
        previous = Directory.from_document(row["document"], row["source"]) if row else None
        summary = describe_changes(previous, directory)
        version: int = await conn.fetchval(
            "INSERT INTO partner_directory (digest, source, document, summary, loaded_by)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING version",
            directory.digest,
            directory.source,
            directory.to_document(),
            summary,
            actor,
        )
        await events.record(
            conn,
            [
                AuditEvent(
                    kind="partners_reloaded",
                    actor=actor,
                    detail={
                        "version": version,
                        "source": directory.source,
                        "digest": directory.digest,
                        "previous_digest": row["digest"] if row else None,
                        "partners": len(directory.partners),
                        "routes": len(directory.routes),
                        **summary,
                    },
                )
            ],
        )
        await conn.execute(f"NOTIFY {CHANNEL}")
    return Version(version, directory, summary)


def summary_text(summary: dict[str, Any]) -> str:
    """Render a change summary on one line: ``partners_added: a, b; routes_changed: r``."""
    if not summary:
        return "no change"
    return "; ".join(f"{key}: {', '.join(values)}" for key, values in summary.items())


class DirectorySync:
    """Keep a process's directory equal to PostgreSQL's current version."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Store this process's file (if any) or adopt the stored version; then follow changes."""
        ctx = self.ctx
        if ctx.settings.config is not None:
            stored = await store(ctx.pool, ctx.directory, actor="startup")
            if stored is not None:
                log.info(
                    "partner directory stored",
                    extra={"version": stored.version, "partners": len(ctx.directory.partners)},
                )
        else:
            found = await current(ctx.pool)
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
        stored = await store(self.ctx.pool, directory, actor=actor)
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
                async with self.ctx.pool.acquire() as conn:
                    await conn.add_listener(CHANNEL, self._notified)
                    try:
                        while True:
                            await self._check()
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(POLL_S):
                                    await self._wake.wait()
                            self._wake.clear()
                    finally:
                        with contextlib.suppress(*UNAVAILABLE):
                            await conn.remove_listener(CHANNEL, self._notified)
            except (*UNAVAILABLE, StoreUnavailableError, asyncpg.PostgresError):
                log.warning("directory sync: message store unavailable, retrying")
                await asyncio.sleep(2.0)

    async def _check(self) -> None:
        digest = await current_digest(self.ctx.pool)
        if digest is None or digest == self.ctx.directory.digest:
            return
        found = await current(self.ctx.pool)
        if found is not None:
            self._swap(found.directory)
