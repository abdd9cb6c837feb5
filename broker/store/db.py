"""Connect to PostgreSQL and translate its failures once, at this boundary.

Everything above this module sees :class:`StoreUnavailableError` (retry later;
answer AR / 503) or :class:`ServiceUnreachableError` (at start-up), never an
asyncpg or OSError exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from broker.errors import ServiceUnreachableError, StoreUnavailableError

Pool = asyncpg.Pool
Connection = asyncpg.Connection

# Errors that mean "the store is not there or not usable right now".
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def describe_dsn(dsn: str) -> str:
    """Return ``host:port/database`` of a DSN, without user or password, for messages."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    if parts.query and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "(default)"
    return f"{host}:{port}/{database}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # orjson: JSON columns (envelopes, audit events) are on the hot path.
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is (an open transaction is still rolled back).

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: a round trip per query on the hot
    path (a third of the ingress's store round trips). carebroker keeps no
    session state on a pooled connection: settings are ``SET LOCAL``, cursors
    live in transactions, and the two session-level users (the relay's advisory
    locks and LISTEN, the migration lock) undo them before they release.
    """


async def connect(dsn: str, size: int = 10, timeout: float = 10.0) -> asyncpg.Pool:
    """Open a connection pool; raise ServiceUnreachableError naming where it tried."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min(2, size),
            max_size=size,
            timeout=timeout,
            command_timeout=60,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"application_name": "carebroker"},
        )
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise ServiceUnreachableError(
            f"cannot reach PostgreSQL at {describe_dsn(dsn)}: {_reason(exc)}"
        ) from exc
    assert pool is not None
    return pool


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{exc.__class__.__name__} ({exc.sqlstate})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return exc.__class__.__name__


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection inside a transaction; store failures become StoreUnavailableError."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except UNAVAILABLE as exc:
        raise StoreUnavailableError(f"message store unavailable: {_reason(exc)}") from exc


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    """Tell whether PostgreSQL answers within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except (*UNAVAILABLE, asyncpg.PostgresError):
        return False
    return True


async def fetch_secret(pool: asyncpg.Pool, name: str, generate: Any) -> bytes:
    """Return a broker-generated secret, creating it once (race-free across instances)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO broker_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            generate(),
        )
        value: bytes = await conn.fetchval("SELECT value FROM broker_secrets WHERE name = $1", name)
    return value
