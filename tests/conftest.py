"""Session-scoped real services for the whole suite.

- PostgreSQL: ``CAREBROKER_DATABASE_URL`` when it names a server (these
  machines run PostgreSQL 15 on 127.0.0.1:5432), else an embedded PostgreSQL
  started once per session. Each test gets its own database, cloned from a
  migrated template, so tests never see each other's rows.
- Kafka: one tansu broker per session on a free loopback port; each test gets
  its own topic prefix ``t.<uuid>.``.
- Mail (``tests/mail.py``): an SMTP server (aiosmtpd, STARTTLS, client
  certificate), an IMAP server (dovecot) and their test CA, started by the
  first test that asks for ``smtp_server`` / ``imap_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from adapters.hl7v2.settings import MllpSettings
from broker.local import EmbeddedPostgres, LocalKafka
from broker.settings import Settings
from broker.store import db
from broker.store.migrate import migrate
from broker.store.partitions import ensure_partitions
from broker.store.stores import Stores
from tests.mail import imap_server, mail_ca, smtp_server  # noqa: F401  # session fixtures

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"


def _with_database(dsn: str, database: str) -> str:
    base, _, query = dsn.partition("?")
    scheme_host, _, _old = base.rpartition("/")
    if "//" not in scheme_host:  # dsn had no database part
        scheme_host = base
    return f"{scheme_host}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
async def pg_admin_dsn() -> AsyncIterator[str]:
    """DSN of a PostgreSQL server's maintenance database, for creating test databases."""
    configured = os.environ.get("CAREBROKER_DATABASE_URL")
    if configured:
        yield _with_database(configured, "postgres")
        return
    # Not under pytest's basetemp: pytest resets it to 0700 when another session
    # starts, and (as root) the server runs as another user who must reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="carebroker-test-pg-"))
    server = EmbeddedPostgres(data_dir)
    await server.start()
    try:
        yield server.dsn_for("owner", "postgres")
    finally:
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A migrated database that every test database is cloned from."""
    name = f"cbtmpl_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    pool = await db.connect(_with_database(pg_admin_dsn, name), 2)
    await migrate(pool)
    await ensure_partitions(pool)
    await pool.close()
    try:
        yield name
    finally:
        conn = await asyncpg.connect(pg_admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(
    admin_dsn: str, template: str | None = None, prefix: str = "cbtest"
) -> AsyncIterator[str]:
    """Create a database (a copy of ``template`` if given), yield its DSN, drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(
        f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    )
    await conn.close()
    try:
        yield _with_database(admin_dsn, name)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest.fixture
async def database_url(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """DSN of a fresh, migrated database for one test."""
    async with scratch_database(pg_admin_dsn, template_db) as dsn:
        yield dsn


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.connect(database_url, 6)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def stores(pool: asyncpg.Pool, topic_prefix: str) -> Stores:
    """The stores of a process over this test's pool (ingress sharing it)."""
    return Stores.over(db.Database(pool), topic_prefix=topic_prefix)


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> AsyncIterator[str]:
    """Bootstrap address of the session's Kafka-protocol broker (tansu)."""
    broker = LocalKafka()
    await broker.start()
    try:
        yield broker.bootstrap
    finally:
        await broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t.{uuid.uuid4().hex[:12]}."


@pytest.fixture
def settings(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Settings:
    """Settings pointing at this test's database, the session broker and its own topics."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=4,
        kafka_fetch_max_wait_ms=10,  # tansu holds fetches for the whole wait
        data_dir=tmp_path / "data",
        mllp=MllpSettings(port=0),
        http_port=0,
    )


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests leave artefacts for humans (screenshots, reports)."""
    path = REPO / "test-output"
    path.mkdir(exist_ok=True)
    return path


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll an async or sync predicate until it returns a truthy value; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
