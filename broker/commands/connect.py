"""Reach the store from a command (``consent``, ``replay``, ``partners``) as the roles do.

The DSN comes from ``--database-url`` / ``CAREBROKER_DATABASE_URL``; without
one, a command finds the embedded PostgreSQL of a running ``carebroker up``
in ``--data-dir`` (its ``postmaster.pid`` names the port, its
``postgres.secret`` the owner's password, readable by the account that runs
``up``), so operators of a single-machine installation need no DSN at all.
"""

from __future__ import annotations

import getpass
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker.errors import ConfigError
from broker.local import embedded_dsn
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings
from broker.store.stores import Stores


def database_dsn(settings: Settings) -> str:
    """Return the DSN to use; raise ConfigError naming what to set when there is none."""
    dsn = settings.database_dsn()
    if dsn is not None:
        return dsn
    embedded = embedded_dsn(settings.data_dir)
    if embedded is None:
        raise ConfigError(
            "CAREBROKER_DATABASE_URL (or --database-url) is not set and no running "
            f"`carebroker up` was found in {settings.data_dir} (set --data-dir)"
        )
    return embedded


@asynccontextmanager
async def stores(settings: Settings) -> AsyncIterator[Stores]:
    """Yield the stores over two connections; close them after."""
    async with Stores.open(database_dsn(settings), settings, size=2) as opened:
        yield opened


async def pseudonymizer(settings: Settings, found: Stores) -> Pseudonymizer:
    """Return the deployment's pseudonymizer (configured key, else the one kept in the store)."""
    key = (
        settings.pseudonym_key.get_secret_value().encode()
        if settings.pseudonym_key
        else await found.secret("pseudonym_key", lambda: secrets.token_bytes(32))
    )
    return Pseudonymizer(key)


def operator() -> str:
    """Return the actor name of the person running a command, for the audit trail."""
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"
