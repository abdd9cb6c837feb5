"""The console in-process: the real FastAPI app and a real PostgreSQL, no services faked.

``console`` builds the process context the way ``carebroker up`` does for
the console role (``build_console`` + ``mount``), over the test's own
database and a copy of the example partner directory; ``client`` talks to it
through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from broker.app import mount
from broker.console.role import build_console
from broker.console.settings import ConsoleSettings
from broker.console.users import Users
from broker.context import Context
from broker.directory import load_directory
from broker.directory_sync import DirectorySync
from broker.health import Readiness
from broker.http import create_app
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings
from broker.store.db import Database
from broker.store.stores import Stores
from tests.conftest import REPO

PARTNERS = REPO / "tests" / "data" / "partners.yaml"
PASSWORD = "correct horse battery"
BASE = "http://console.test"


@dataclass
class Console:
    """The app under test, its context and the partner file it reads."""

    app: object
    ctx: Context
    config: Path


def build(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, settings: ConsoleSettings
) -> Console:
    """Build the context, the console and the app, as the console role does at start."""
    config = tmp_path / "partners.yaml"
    shutil.copy(PARTNERS, config)
    ctx = Context(
        settings=Settings(
            database_url=database_url,
            config=config,
            http_port=0,
            mllp={"port": 0},
            console=settings,
        ),
        stores=Stores.over(Database(pool)),
        directory=load_directory(config),
        pseudonymizer=Pseudonymizer(b"k" * 32),
        readiness=Readiness(),
        producer=None,  # type: ignore[arg-type]  # the console never produces to Kafka
        stop=asyncio.Event(),
    )
    ctx.directory_sync = DirectorySync(ctx)
    build_console(ctx)
    app = create_app(ctx.readiness)
    mount(app, ctx)
    return Console(app, ctx, config)


@pytest.fixture
async def console(database_url: str, pool: asyncpg.Pool, tmp_path: Path) -> Console:
    built = build(database_url, pool, tmp_path, ConsoleSettings(flows_cache_s=0))
    # As at start-up: the process's file is the stored current version.
    await built.ctx.stores.directory.store(built.ctx.directory, actor="startup")
    return built


@pytest.fixture
async def client(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


@pytest.fixture
async def users(pool: asyncpg.Pool) -> dict[str, str]:
    """One user per role, all with PASSWORD; returns name -> role."""
    store = Users(Stores.over(Database(pool)).accounts)
    made = {"vera": "viewer", "otto": "operator", "ada": "admin"}
    for name, role in made.items():
        await store.add(name, role, PASSWORD, "test")  # type: ignore[arg-type]
    return made


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Sign in as a browser would (cookie kept by the client); return the CSRF token."""
    response = await client.post("/api/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


async def cli_token(client: httpx.AsyncClient, name: str) -> str:
    """Sign in as the CLI does; return the bearer token."""
    response = await client.post(
        "/api/session", json={"name": name, "password": PASSWORD, "client": "cli"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def get_as(client: httpx.AsyncClient, path: str, name: str = "vera") -> Any:
    """GET ``path`` with a CLI token of ``name`` (a viewer by default); return the JSON."""
    token = await cli_token(client, name)
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def audit(pool: asyncpg.Pool) -> list[dict[str, object]]:
    """Return the audit events recorded so far, oldest first."""
    rows = await pool.fetch("SELECT event FROM audit_pending ORDER BY id")
    return [r["event"] for r in rows]
