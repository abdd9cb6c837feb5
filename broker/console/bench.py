"""Time the console's queries on a large store, with and without the console's indexes.

Run it against a PostgreSQL server (it creates and drops its own database)::

    python -m broker.console.bench --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --messages 1000000

It loads ``--messages`` messages received over the last 24 hours (one
delivery each: mostly delivered, some pending, failed and dead) and three
audit events per message (one in a thousand an ``alert_changed``), times the
flows page's computation, the partners page's health query, the dead-letter
page, the alerts page's history and a message's timeline (best of
``--repeat``), drops the console's indexes (migrations 0500 and 0510) and
times them again: the ratio is what the indexes buy, measured in the same
run on the same data. The timeline reads the audit trail's own index, which
stays: its two figures show that it does not depend on the console's.
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

from broker.console.alert_actions import history as alert_history
from broker.console.dead_letters import dead_letter_page
from broker.console.flows import compute
from broker.console.partners import health as partner_health
from broker.directory import Directory, DirectoryFile, Partner
from broker.settings import Settings
from broker.store.seed import BenchStore, scratch_database
from broker.store.stores import Stores

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
    "deliveries_dead_letters",
    "audit_alert_changes",
]
AUDIT_KINDS = ("received", "routed", "delivered")
ALERT_EVERY = 1000  # one audit event in this many is an alert_changed


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


async def load(store: BenchStore, count: int, now: datetime) -> None:
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
    await store.copy(
        "messages",
        [
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
        messages,
    )
    await store.copy(
        "deliveries",
        [
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
        deliveries,
    )
    rows = _audit_rows(messages)
    # COPY has no binary jsonb encoder: the few events with a detail go in by INSERT.
    plain = [r[:-3] + r[-2:] for r in rows if r[5] != "alert_changed"]
    await store.copy("audit", [c for c in AUDIT_COLUMNS if c != "detail"], plain)
    await store.insert_audit_rows([r for r in rows if r[5] == "alert_changed"])
    await store.analyze(["messages", "deliveries", "audit"], vacuum=True)


AUDIT_COLUMNS = [
    "day",
    "seq",
    "event_id",
    "occurred_at",
    "recorded_at",
    "kind",
    "actor",
    "outcome",
    "message_id",
    "detail",
    "prev_hash",
    "hash",
]


def _audit_rows(messages: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Return three chained-looking events per message, in time order (hashes not computed)."""
    events = sorted(
        (received + timedelta(milliseconds=10 * n), message_id, kind)
        for message_id, received, *_ in messages
        for n, kind in enumerate(AUDIT_KINDS)
    )
    rows: list[tuple[Any, ...]] = []
    seq: dict[Any, int] = {}
    for i, (at, message_id, kind) in enumerate(events):
        day = at.date()
        seq[day] = seq.get(day, 0) + 1
        alert = i % ALERT_EVERY == 0
        rows.append(
            (
                day,
                seq[day],
                uuid.uuid4(),
                at,
                at,
                "alert_changed" if alert else kind,
                "alerts" if alert else "router",
                "success",
                None if alert else message_id,
                {"alert": "queue_stale", "subject": "cabinet-dupont", "state": "firing"}
                if alert
                else {},
                b"\0" * 32,
                b"\0" * 32,
            )
        )
    return rows


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
    async with (
        scratch_database(admin_dsn, "cbbench") as dsn,
        Stores.open(dsn, Settings(database_url=dsn), size=4) as stores,
    ):
        await stores.migrate()
        await stores.partitions.ensure()
        bench = stores.bench()
        now = datetime.now(UTC)
        start = time.perf_counter()
        await load(bench, count, now)
        loaded_s = time.perf_counter() - start
        directory = _directory()
        ids = list(directory.partners)
        message_id = await bench.audited_message(count)
        assert message_id is not None  # three events per message were loaded

        async def flows() -> object:
            return await compute(stores.console, directory)

        async def health() -> object:
            return await partner_health(stores.console, ids)

        async def dead_letters() -> object:
            return await dead_letter_page(stores.console, None, None, 100)

        async def alerts() -> object:
            return await alert_history(stores.alerts, now)

        async def timeline() -> object:
            return await stores.audit.message_timeline(message_id)

        timed = {"flows": flows, "health": health, "dead_letters": dead_letters}
        timed |= {"alert_history": alerts, "timeline": timeline}
        result = {"load_s": loaded_s}
        for what, action in timed.items():
            result[f"{what}_ms"] = await best_of(repeat, action)
        await bench.drop_indexes(CONSOLE_INDEXES)
        await bench.analyze(["messages", "deliveries", "audit"])
        for what, action in timed.items():
            result[f"{what}_baseline_ms"] = await best_of(repeat, action)
        return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(prog="python -m broker.console.bench")
    parser.add_argument("--database-url", required=True, help="a server's maintenance DSN")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.database_url, args.messages, args.repeat))
    out = sys.stdout
    out.write(
        f"store: {args.messages} messages over 24 h, {len(AUDIT_KINDS)} audit events each, "
        f"loaded in {r['load_s']:.1f} s\n"
    )
    for what in ("flows", "health", "dead_letters", "alert_history", "timeline"):
        with_ms, without_ms = r[f"{what}_ms"], r[f"{what}_baseline_ms"]
        out.write(
            f"{what}: {with_ms:.1f} ms with the console indexes, {without_ms:.1f} ms with the "
            f"spine's only (baseline): {without_ms / with_ms:.1f}x\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
