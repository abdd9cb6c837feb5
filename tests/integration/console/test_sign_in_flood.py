"""A flood of sign-ins: throttled per address and per name, no connection held while hashing.

The console in-process on a real PostgreSQL, clients at the addresses uvicorn
would report (httpx's ASGI transport sets the client address). What a user
sees is asserted: 401 for the attempts that were checked, 429 with
``Retry-After`` for the others; the database stays available to everyone
else while hashes are computed; what a stranger did is in the strangers'
record, one row per address, reason and minute.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx

from broker.console.settings import ConsoleSettings
from broker.store import db
from tests.integration.console.conftest import BASE, PASSWORD, Console, build


@asynccontextmanager
async def at(console: Console, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console at ``address``."""
    transport = httpx.ASGITransport(app=console.app, client=(address, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def sign_in(console: Console, address: str, name: str, password: str) -> httpx.Response:
    async with at(console, address) as client:
        return await client.post("/api/session", json={"name": name, "password": password})


async def test_concurrent_guesses_at_one_name_are_checked_five_times_at_most(
    console: Console, users: dict[str, str]
) -> None:
    # From 20 addresses at once, so that only the name's count holds them back.
    answers = await asyncio.gather(
        *(sign_in(console, f"203.0.113.{i}", "otto", f"guess number {i}") for i in range(20))
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {401: 5, 429: 15}, statuses
    waits = [int(a.headers["Retry-After"]) for a in answers if a.status_code == 429]
    assert all(1 <= w <= 30 for w in waits), waits
    assert all("retry in" in a.json()["detail"] for a in answers if a.status_code == 429)


async def test_a_flood_from_one_address_is_slowed_whatever_names_it_tries(
    console: Console, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    answers = await asyncio.gather(
        *(sign_in(console, "198.51.100.9", f"nobody-{i}", "whatever it is") for i in range(60))
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {401: 10, 429: 50}, statuses
    # Someone else, elsewhere, signs in meanwhile.
    assert (await sign_in(console, "192.0.2.1", "vera", PASSWORD)).status_code == 200
    assert console.ctx.console is not None
    await console.ctx.console.auth.strangers.flush()
    kept = await pool.fetch(
        "SELECT address, reason, requests, bytes FROM stranger_refusals ORDER BY reason"
    )
    assert [tuple(r) for r in kept] == [
        ("198.51.100.9", "sign_in_throttled_by_address", 50, 0),
        ("198.51.100.9", "unknown_user", 10, 0),
    ]
    # Operators read it; viewers may not (addresses are personal data).
    async with at(console, "192.0.2.1") as operator:
        token = (
            await operator.post(
                "/api/session", json={"name": "otto", "password": PASSWORD, "client": "cli"}
            )
        ).json()["token"]
        listed = await operator.get("/api/refusals", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        assert {(r["address"], r["reason"], r["requests"]) for r in listed.json()} == {
            ("198.51.100.9", "sign_in_throttled_by_address", 50),
            ("198.51.100.9", "unknown_user", 10),
        }
        assert "whatever it is" not in listed.text and "nobody-" not in listed.text
    # Nothing of it in the audit trail: strangers' noise never fills it.
    audited = await pool.fetch(
        "SELECT event->'detail'->>'action' AS action FROM audit_pending"
        " WHERE event->>'kind' = 'user_changed' AND event->'detail' ? 'via'"
    )
    assert [r["action"] for r in audited] == ["signed_in", "signed_in"]  # vera's, otto's


async def test_sign_ins_being_hashed_hold_no_database_connection(
    database_url: str, tmp_path: Path, users: dict[str, str]
) -> None:
    """With a two-connection pool, 12 sign-ins under way leave the pool free for others."""
    small = await db.connect(database_url, 2)
    try:
        console = build(database_url, small, tmp_path, ConsoleSettings(flows_cache_s=0))
        await console.ctx.stores.directory.store(console.ctx.directory, actor="startup")
        flood = asyncio.gather(
            *(sign_in(console, f"203.0.113.{i}", f"someone-{i}", "a guess") for i in range(12))
        )
        waited = []
        while not flood.done():
            start = asyncio.get_running_loop().time()
            async with small.acquire(timeout=2) as conn:
                assert await conn.fetchval("SELECT 1") == 1
            waited.append(asyncio.get_running_loop().time() - start)
            await asyncio.sleep(0.05)
        assert {a.status_code for a in await flood} == {401}
        assert len(waited) >= 3, "the check ran while the sign-ins were under way"
    finally:
        await small.close()
