"""Connect to PostgreSQL and translate its failures once, at this boundary.

Every statement carebroker runs goes through :func:`transaction` or
:func:`connection` (or, for a session that listens, :func:`listening`), and
each of them turns whatever asyncpg or the socket raised into the error tree
of ``broker/errors.py``:

- :class:`StoreUnavailableError` (transient: the server is not there, the
  connection broke, too many connections, a statement was cancelled): retry
  later; answer AR / 503;
- :class:`StoreRefusedError` (permanent: a constraint, bad data, a missing
  privilege or table): the same statement would fail again; with the
  subclasses :class:`StorePrivilegeError` and :class:`SchemaMissingError`;
- :class:`ServiceUnreachableError` when a pool cannot be opened at start-up.

Nothing above ``broker/store/`` imports asyncpg (``tests/unit/test_layers.py``
holds it). Messages name the error class and SQLSTATE, never the server's
text, which can quote values (design invariant 6).

A process holds one :class:`Database`: the general pool every role shares,
and the ingress pool, a few connections reserved for MLLP and FHIR ingress
(``database_ingress_pool_size``) so that no console, API, router or delivery
load can keep a sender waiting for its ACK (issue 13).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import orjson
from asyncpg.exceptions import _base as asyncpg_base

from broker.errors import (
    BrokerError,
    SchemaMissingError,
    ServiceUnreachableError,
    StorePrivilegeError,
    StoreRefusedError,
    StoreUnavailableError,
)

Pool = asyncpg.Pool
Connection = asyncpg.Connection
Record = asyncpg.Record
Isolation = Literal["read_committed", "repeatable_read", "serializable"]

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


def translate(exc: BaseException) -> BrokerError | None:
    """Return the carebroker error for an exception PostgreSQL or its socket raised, else None."""
    if isinstance(exc, asyncpg_base.DataError):
        # Client side: an argument asyncpg cannot encode. Before InterfaceError,
        # which it derives from: retrying would not help.
        return StoreRefusedError(f"store refused an argument: {type(exc).__name__}")
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailableError(f"message store unavailable: {_reason(exc)}")
    if isinstance(exc, asyncpg.exceptions.InsufficientPrivilegeError):
        return StorePrivilegeError(f"the database role may not do this: {_reason(exc)}")
    if isinstance(exc, asyncpg.exceptions.UndefinedTableError):
        return SchemaMissingError(f"no carebroker schema in this database: {_reason(exc)}")
    if isinstance(exc, asyncpg.PostgresError):
        return StoreRefusedError(f"store refused a statement: {_reason(exc)}")
    return None


def describe_dsn(dsn: str) -> str:
    """Return ``host:port/database`` of a DSN, without user or password, for messages."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    if parts.query and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "(default)"
    return f"{host}:{port}/{database}"


def with_database(dsn: str, database: str) -> str:
    """Return ``dsn`` naming another database on the same server."""
    base, _, query = dsn.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{database}" + (f"?{query}" if query else "")


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


async def connect(
    dsn: str, size: int = 10, timeout: float = 10.0, *, min_size: int | None = None
) -> asyncpg.Pool:
    """Open a connection pool; raise ServiceUnreachableError naming where it tried."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min(2, size) if min_size is None else min_size,
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


class Database:
    """The PostgreSQL connections of one process: the general pool and ingress's own.

    ``ingress`` is a separate pool opened whole at start (``min_size`` =
    ``max_size``): its connections exist before a flood of console sign-ins or
    a router backlog can take every connection the server allows, and nothing
    but the ingress stores (MLLP, FHIR) borrows them. Without ingress roles in
    the process, or with one shared pool (tests), ``ingress`` is ``general``.
    """

    def __init__(
        self,
        general: asyncpg.Pool,
        ingress: asyncpg.Pool | None = None,
        owner: asyncpg.Pool | None = None,
    ) -> None:
        self.general = general
        self.ingress = ingress if ingress is not None else general
        # Migrations, partitions, retention: the schema owner's connections when the
        # roles' own database role may not create or drop tables (the embedded
        # PostgreSQL runs the roles as carebroker_app), else the general pool.
        self.upkeep = owner if owner is not None else general

    @classmethod
    async def open(
        cls, dsn: str, size: int = 10, ingress_size: int = 0, owner_dsn: str | None = None
    ) -> Database:
        """Open the general pool, an ingress pool of ``ingress_size`` when above 0,
        and two connections as the schema owner with ``owner_dsn``."""
        opened: list[asyncpg.Pool] = []
        try:
            opened.append(general := await connect(dsn, size))
            ingress = owner = None
            if ingress_size > 0:
                opened.append(ingress := await connect(dsn, ingress_size, min_size=ingress_size))
            if owner_dsn is not None:
                opened.append(owner := await connect(owner_dsn, 2))
        except BaseException:
            for pool in opened:
                await pool.close()
            raise
        return cls(general, ingress, owner)

    async def close(self) -> None:
        """Close every pool (waiting for connections in use to come back)."""
        for pool in {id(p): p for p in (self.upkeep, self.ingress, self.general)}.values():
            await pool.close()


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
async def transaction(
    pool: asyncpg.Pool, isolation: Isolation | None = None, *, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection inside a transaction; every store failure is translated."""
    try:
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation=isolation, readonly=readonly),
        ):
            yield conn
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Yield a pooled connection without a transaction (reads, one statement each)."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc


@asynccontextmanager
async def listening(
    pool: asyncpg.Pool, channel: str, callback: Callable[..., object]
) -> AsyncIterator[asyncpg.Connection]:
    """Hold a connection that LISTENs on ``channel`` (calling ``callback``) until exit.

    The connection goes back to the pool without its LISTEN and advisory
    locks (the pool does not reset sessions, see ``_keep_session``).
    """
    try:
        async with pool.acquire() as conn:
            await conn.add_listener(channel, callback)
            try:
                yield conn
            finally:
                # A connection that is gone took its session (and LISTEN) with it.
                with contextlib.suppress(*UNAVAILABLE):
                    await conn.remove_listener(channel, callback)
                    await conn.execute("SELECT pg_advisory_unlock_all()")
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc


def _translated(exc: BaseException) -> BrokerError:
    translated = translate(exc)
    assert translated is not None  # only called for the exceptions translate knows
    return translated


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    """Tell whether PostgreSQL answers within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except (*UNAVAILABLE, asyncpg.PostgresError):
        return False
    return True


async def fetch_secret(pool: asyncpg.Pool, name: str, generate: Callable[[], bytes]) -> bytes:
    """Return a broker-generated secret, creating it once (race-free across instances)."""
    async with connection(pool) as conn:
        await conn.execute(
            "INSERT INTO broker_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            generate(),
        )
        value: bytes = await conn.fetchval("SELECT value FROM broker_secrets WHERE name = $1", name)
    return value


# --- the server: databases for tests, benches and the embedded PostgreSQL ---------------


async def is_up(dsn: str, timeout: float = 2.0) -> bool:
    """Tell whether a server accepts a connection at ``dsn`` now."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (*UNAVAILABLE, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def create_database(admin_dsn: str, name: str, *, template: str | None = None) -> None:
    """Create database ``name`` (a copy of ``template`` if given) on ``admin_dsn``'s server."""
    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    await _admin(admin_dsn, statement)


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` unless it exists."""
    try:
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc


async def ensure_login_role(admin_dsn: str, role: str, password: str) -> None:
    """Make ``role`` a login role with ``password``, neither superuser nor creator.

    For the embedded PostgreSQL's ``carebroker_app``: made before the migration
    that grants it (which then finds it made), its password set at every start.
    """
    literal = password.replace("'", "''")
    try:
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            await conn.execute(
                f'{"ALTER" if exists else "CREATE"} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB'
                f" NOCREATEROLE PASSWORD '{literal}'"
            )
        finally:
            await conn.close()
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing its sessions."""
    await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(admin_dsn: str, statement: str) -> None:
    try:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise _translated(exc) from exc
