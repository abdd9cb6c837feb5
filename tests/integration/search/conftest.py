"""A store of 1,000,000 messages, seeded once per session, for the search tests.

Seeded in SQL by ``broker.commands.bench_search.seed`` (the bench's own
store): 30 whole days, one daily partition each, 50,000 patients with 20
messages each, deliveries to one or two of four recipients. The tests only
read it (patient searches add their audit events), so they share it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from broker.commands.bench_search import Seeded, seed
from broker.console.users import Users
from broker.pseudonym import Pseudonymizer
from broker.store import db
from broker.store.accounts import AccountStore
from broker.store.seed import BenchStore
from tests.conftest import scratch_database

MESSAGES = 1_000_000
DAYS = 30
# The console test app's key (tests/integration/console/conftest.py): its API
# hashes a searched identifier to the digests seeded here.
PSEUDONYMIZER = Pseudonymizer(b"k" * 32)


@dataclass
class Million:
    """The seeded store: its DSN, a pool on it, and what was put in it."""

    dsn: str
    pool: asyncpg.Pool
    seeded: Seeded


@pytest.fixture(scope="session")
async def million(pg_admin_dsn: str, template_db: str) -> AsyncIterator[Million]:
    async with scratch_database(pg_admin_dsn, template_db, prefix="cbsearch") as dsn:
        pool = await db.connect(dsn, 4)
        try:
            seeded = await seed(BenchStore(pool), PSEUDONYMIZER, messages=MESSAGES, days=DAYS)
            await Users(AccountStore(pool)).add("otto", "operator", "correct horse battery", "test")
            yield Million(dsn, pool, seeded)
        finally:
            await pool.close()
