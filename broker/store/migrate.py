"""Apply the versioned SQL migrations in ``migrations/``, each once, in order.

A migration is a file ``NNNN_name.sql``; applied ones are recorded in
``schema_migrations``. A PostgreSQL advisory lock serialises concurrent
runners (several instances starting at once, or the Helm migration job), so
each file runs exactly once and every runner returns with the schema current.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from broker.store.db import connection

log = logging.getLogger(__name__)

_LOCK_KEY = 0x63617265  # "care": the advisory lock all migration runners share
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """Return the migrations shipped with carebroker, by version."""
    found = []
    for entry in resources.files("broker.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a version number")
    return found


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    applied_now: list[str] = []
    async with connection(pool) as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                applied_now.append(f"{migration.version:04d}_{migration.name}")
                log.info("migration applied", extra={"migration": migration.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
