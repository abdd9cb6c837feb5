"""The partner directory's versions in PostgreSQL (``partner_directory``), every change audited.

Design invariant 7 (configuration is data): a validated directory is stored
as a new version with a summary of what changed (partner ids and route
names) and a ``partners_reloaded`` audit event, in one transaction; ``NOTIFY
carebroker_partners`` then tells every running process to swap it in
(``broker/directory_sync.py`` follows it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.directory import Directory, describe_changes
from broker.events import AuditEvent
from broker.store import events
from broker.store.db import Pool, connection, listening, transaction

CHANNEL = "carebroker_partners"
_LOCK = 0x70617274  # "part": serialises concurrent stores of a new version


@dataclass(frozen=True)
class Version:
    """One stored version of the directory."""

    version: int
    directory: Directory
    summary: dict[str, list[str]]


@dataclass(frozen=True)
class HistoryEntry:
    """One stored version as ``carebroker partners history`` lists it."""

    version: int
    loaded_at: datetime
    loaded_by: str
    source: str
    summary: dict[str, Any]


class DirectoryStore:
    """Store, read and follow versions of the partner directory."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def current(self) -> Version | None:
        """Return the current (latest) version, or None when none was ever stored."""
        async with connection(self.pool) as conn:
            row = await conn.fetchrow(
                "SELECT version, source, document, summary FROM partner_directory"
                " ORDER BY version DESC LIMIT 1"
            )
        if row is None:
            return None
        return Version(
            row["version"], Directory.from_document(row["document"], row["source"]), row["summary"]
        )

    async def current_digest(self) -> str | None:
        """Return the digest of the current version (cheap: for polling)."""
        async with connection(self.pool) as conn:
            digest: str | None = await conn.fetchval(
                "SELECT digest FROM partner_directory ORDER BY version DESC LIMIT 1"
            )
        return digest

    async def store(self, directory: Directory, *, actor: str) -> Version | None:
        """Store ``directory`` as the new current version; return it, or None if unchanged."""
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            row = await conn.fetchrow(
                "SELECT digest, source, document FROM partner_directory"
                " ORDER BY version DESC LIMIT 1"
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

    async def history(self, limit: int) -> list[HistoryEntry]:
        """Return the latest ``limit`` versions, newest first."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT version, loaded_at, loaded_by, source, summary FROM partner_directory"
                " ORDER BY version DESC LIMIT $1",
                limit,
            )
        return [HistoryEntry(**dict(r)) for r in rows]

    @asynccontextmanager
    async def changes(self, notified: Callable[..., object]) -> AsyncIterator[None]:
        """Call ``notified`` whenever a version is stored, for as long as this is entered."""
        async with listening(self.pool, CHANNEL, notified):
            yield
