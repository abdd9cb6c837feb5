"""Time the flows and partners queries on a large store, with and without migration 0500.

Run it against a PostgreSQL server (it creates and drops its own database)::

    python -m broker.console.bench --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --messages 1000000

It loads ``--messages`` messages received over the last 24 hours (one
delivery each: mostly delivered, some pending, failed and dead), times the
flows page's computation and the partners page's health query (best of
``--repeat``), drops the console's indexes and times them again: the ratio is
what the indexes buy, measured in the same run on the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from broker.console.flows import compute
from broker.console.partners import health as partner_health
from broker.store import db
from broker.store.migrate import migrate
from broker.store.partitions import ensure_partitions
from routing.directory import Directory, DirectoryFile, Partner

SENDERS = ["chu-montpellier", "labo-sud", "clinique-est", "labo-ouest", "chu-nimes"]
RECIPIENTS = ["cabinet-dupont", "maison-sante-nord", "chu-montpellier", "cabinet-martin"]
CONSOLE_INDEXES = [
    "messages_recent",
    "deliveries_delivered",
    "deliveries_failed",
    "deliveries_queued",
    "deliveries_dead",
    "deliveries_last_delivered",
    "deliveries_last_error",
]


def _uuid7(at: datetime) -> uuid.UUID:
    ms = int(at.timestamp() * 1000)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | random.getrandbits(12) << 64
    value |= 0b10 << 62 | random.getrandbits(62)
    return uuid.UUID(int=value)


def _directory() -> Directory:
    ids = sorted(set(SENDERS) | set(RECIPIENTS))
    partners = [
        Partner.model_validate(
            {
                "id": p,
                "name": p,
                "kind": "other",
                **(
                    {
                        "endpoint": {"type": "mllp", "host": "127.0.0.1", "port": 7000 + i},
                        "accepts": {"format": "hl7v2"},
                    }
                    if p in RECIPIENTS
                    else {}
                ),
            }
        )
        for i, p in enumerate(ids)
    ]
    return Directory(DirectoryFile(partners=partners))


async def load(pool: asyncpg.Pool, count: int, now: datetime) -> None:
    """Fill messages and deliveries with ``count`` rows each over the last 24 hours."""
    rng = random.Random(7)  # noqa: S311 - synthetic test data, not a secret
    messages: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    for i in range(count):
        received = now - timedelta(seconds=rng.uniform(0, 86_400))
        message_id = _uuid7(received)
        rejected = rng.random() < 0.01
        messages.append(
            (
                message_id,
                received,
                "mllp",
                "hl7v2",
                rng.choice(SENDERS),
                f"C{i}",
                "ORU^R01",
                "rejected" if rejected else "routed",
                800,
            )
        )
        if rejected:
            continue
        roll = rng.random()
        age = (now - received).total_seconds()
        status = "delivered"
        if age < 900 and roll < 0.05:
            status = "pending"
        elif roll < 0.005:
            status = "failed"
        elif roll < 0.01:
            status = "dead"
        delivered_at = received + timedelta(seconds=rng.uniform(0.2, 5))
        deliveries.append(
            (
                _uuid7(received),
                message_id,
                received,
                rng.choice(RECIPIENTS),
                "lane",
                0,
                status,
                1,
                "connection refused" if status in ("failed", "dead") else None,
                received,
                delivered_at if status == "delivered" else received + timedelta(seconds=30),
                delivered_at if status == "delivered" else None,
            )
        )
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "messages",
            records=messages,
            columns=[
                "id",
                "received_at",
                "channel",
                "format",
                "sender",
                "control_id",
                "message_type",
                "status",
                "size",
            ],
        )
        await conn.copy_records_to_table(
            "deliveries",
            records=deliveries,
            columns=[
                "id",
                "message_id",
                "message_received_at",
                "recipient",
                "lane",
                "partition",
                "status",
                "attempts",
                "last_error",
                "created_at",
                "updated_at",
                "delivered_at",
            ],
        )
        await conn.execute("VACUUM ANALYZE messages")
        await conn.execute("VACUUM ANALYZE deliveries")


async def best_of(repeat: int, action: Callable[[], Awaitable[object]]) -> float:
    """Return the fastest of ``repeat`` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await action()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


async def run(admin_dsn: str, count: int, repeat: int) -> dict[str, float]:
    """Create a database, load it, time with and without the console indexes, drop it."""
    name = f"cbbench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base, _, _ = admin_dsn.rpartition("/")
    pool = await db.connect(f"{base}/{name}", 4)
    try:
        await migrate(pool)
        await ensure_partitions(pool)
        now = datetime.now(UTC)
        start = time.perf_counter()
        await load(pool, count, now)
        loaded_s = time.perf_counter() - start
        directory = _directory()
        ids = list(directory.partners)

        async def flows() -> object:
            return await compute(pool, directory)

        async def health() -> object:
            return await partner_health(pool, ids)

        result = {
            "load_s": loaded_s,
            "flows_ms": await best_of(repeat, flows),
            "health_ms": await best_of(repeat, health),
        }
        async with pool.acquire() as conn:
            for index in CONSOLE_INDEXES:
                await conn.execute(f'DROP INDEX "{index}"')
            await conn.execute("ANALYZE messages")
            await conn.execute("ANALYZE deliveries")
        result["flows_baseline_ms"] = await best_of(repeat, flows)
        result["health_baseline_ms"] = await best_of(repeat, health)
        return result
    finally:
        await pool.close()
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(prog="python -m broker.console.bench")
    parser.add_argument("--database-url", required=True, help="a server's maintenance DSN")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.database_url, args.messages, args.repeat))
    out = sys.stdout
    out.write(f"store: {args.messages} messages over 24 h, loaded in {r['load_s']:.1f} s\n")
    for what in ("flows", "health"):
        with_ms, without_ms = r[f"{what}_ms"], r[f"{what}_baseline_ms"]
        out.write(
            f"{what}: {with_ms:.1f} ms with the console indexes, {without_ms:.1f} ms with the "
            f"spine's only (baseline): {without_ms / with_ms:.1f}x\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
