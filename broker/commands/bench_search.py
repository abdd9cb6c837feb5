"""``carebroker bench search``: the operators' search on a large store, against sequential scans.

It creates a throwaway database, fills it in SQL (``generate_series``, no
round trip per row) with ``--messages`` messages spread evenly over
``--days`` whole days, one daily partition each (the ``messages`` table as
production has it), with deliveries to one or two of four recipients and a
pseudonymous patient digest per message, then serves the real message API
(``broker.console.api``) on a loopback port and asks it typical searches
over HTTP with an API token, one at a time, as the console and
``carebroker messages search`` do. Each search is timed end to end (sign-in
check, search, deliveries of the page, JSON).

The baseline is the same requests, in the same run, on the same data,
answered by a second server whose PostgreSQL sessions may not use indexes
(``enable_indexscan``, ``enable_bitmapscan``, ``enable_indexonlyscan`` off):
what the searches would cost as sequential scans. It is slow, so it runs
``--baseline-repeat`` times per search only.

:func:`seed` is also what the 1,000,000-message test fills its store with.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from broker.commands.bench import scratch_database
from broker.pseudonym import Pseudonymizer
from broker.store.seed import BenchStore

SENDERS = ("chu-montpellier", "labo-sud", "clinique-est", "labo-ouest", "chu-nimes")
TYPES = ("ORU^R01", "ORU^R01", "ORU^R01", "ADT^A08", "ADT^A01", "REF^I12", "ORM^O01", "MDM^T02")
RECIPIENTS = ("cabinet-dupont", "maison-sante-nord", "cabinet-martin", "chu-montpellier")
PATIENT_AUTHORITY = "1.2.250.1.999.1"
MESSAGES_PER_PATIENT = 20
NO_INDEXES = "enable_indexscan=off&enable_bitmapscan=off&enable_indexonlyscan=off"


def control_id(n: int) -> str:
    """Return the control id of seeded message ``n`` (from 1)."""
    return f"S{n:08d}"


def patient_id(k: int) -> str:
    """Return the identifier value of seeded patient ``k`` (from 0)."""
    return f"P{k:07d}"


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` put in the store."""

    messages: int
    patients: int
    first_day: date
    days: int
    step_ms: int
    seconds: float

    def received_at(self, n: int) -> datetime:
        """Return when message ``n`` was received."""
        start = datetime.combine(self.first_day, datetime.min.time(), UTC)
        return start + timedelta(milliseconds=(n - 1) * self.step_ms)

    def messages_of(self, patient: int) -> list[int]:
        """Return the numbers of the messages about ``patient``, oldest first."""
        first = patient if patient else self.patients
        return list(range(first, self.messages + 1, self.patients))


async def seed(
    store: BenchStore,
    pseudonymizer: Pseudonymizer,
    *,
    messages: int,
    days: int,
    last_day: date | None = None,
) -> Seeded:
    """Fill an empty, migrated store with ``messages`` over the ``days`` days up to ``last_day``.

    Every day gets its partition first, as ``ensure_partitions`` keeps them
    ahead in production, so rows land where a search by time prunes to.
    """
    started = time.perf_counter()
    last_day = last_day or datetime.now(UTC).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    patients = max(1, messages // MESSAGES_PER_PATIENT)
    digests = [pseudonymizer.digest(PATIENT_AUTHORITY, patient_id(k)) for k in range(patients)]
    # The digest of message n's patient is digests[n % patients] (ordinality from 1).
    step_ms = days * 86_400_000 // messages
    start = datetime.combine(first_day, datetime.min.time(), UTC)
    await store.seed_messages(
        first_day=first_day,
        days=days,
        start_ms=int(start.timestamp() * 1000),
        step_ms=step_ms,
        senders=SENDERS,
        types=TYPES,
        messages=messages,
        digests=digests,
        recipients=RECIPIENTS,
    )
    return Seeded(messages, patients, first_day, days, step_ms, time.perf_counter() - started)


# --- the benchmark ---------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """One typical search: a label and the query parameters of a run, drawn from ``rng``.

    Run k of a search draws from a generator seeded by (label, k), so the
    baseline asks exactly what the indexed server was asked.
    """

    label: str
    params: Callable[[random.Random], dict[str, str]]

    def run(self, k: int) -> dict[str, str]:
        """Return the parameters of run ``k`` (-1: the warm-up)."""
        return self.params(random.Random(f"{self.label}/{k}"))  # noqa: S311 - not a secret


def searches(seeded: Seeded, ids: list[str]) -> list[Search]:
    """Return the searches operators make most, each varied from run to run.

    ``ids`` are carebroker ids present in the store (a sample).
    """
    from broker.store.search import Cursor

    def any_message(rng: random.Random) -> int:
        return rng.randint(1, seeded.messages)

    def a_day(rng: random.Random) -> dict[str, str]:
        day = seeded.received_at(any_message(rng)).date()
        start = datetime.combine(day, datetime.min.time(), UTC)
        return {"since": start.isoformat(), "until": (start + timedelta(days=1)).isoformat()}

    def deep(rng: random.Random) -> str:
        at = seeded.received_at(any_message(rng))
        return Cursor(at, uuid.UUID(int=(1 << 128) - 1)).encode()

    return [
        Search("control id", lambda r: {"control_id": control_id(any_message(r))}),
        Search("carebroker id", lambda r: {"id": r.choice(ids)}),
        Search(
            "patient identifier (operator, audited)",
            lambda r: {
                "patient_authority": PATIENT_AUTHORITY,
                "patient_id": patient_id(r.randrange(seeded.patients)),
            },
        ),
        Search("sender, newest 100", lambda r: {"sender": r.choice(SENDERS)}),
        Search(
            "sender + type, one day",
            lambda r: {**a_day(r), "sender": r.choice(SENDERS), "message_type": "REF^I12"},
        ),
        Search("recipient, newest 100", lambda r: {"recipient": r.choice(RECIPIENTS)}),
        Search(
            "recipient, a page deep in the store",
            lambda r: {"recipient": r.choice(RECIPIENTS), "cursor": deep(r)},
        ),
        Search("rejected, one day", lambda r: {**a_day(r), "status": "rejected"}),
        Search("dead letters", lambda r: {"delivery_status": "dead"}),
        Search("everything, newest 100", lambda r: {}),
    ]


@dataclass
class Timing:
    """Latencies of one search, in milliseconds, and how many rows the first run found."""

    latencies: list[float]
    rows: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


@asynccontextmanager
async def serve_api(dsn: str, pseudonymizer: Pseudonymizer) -> AsyncIterator[tuple[str, str]]:
    """Serve the message API on a loopback port; yield its URL and an operator's API token."""
    from adapters.hl7v2.settings import MllpSettings
    from broker.app import mount
    from broker.console.role import build_console
    from broker.context import Context
    from broker.directory import Directory
    from broker.health import Readiness
    from broker.http import HttpServer, bind, create_app
    from broker.settings import Settings
    from broker.store.stores import Stores

    settings = Settings(database_url=dsn, http_port=0, mllp=MllpSettings(port=0))
    async with Stores.open(dsn, settings, size=4) as stores:
        ctx = Context(
            settings=settings,
            stores=stores,
            directory=Directory.empty(),
            pseudonymizer=pseudonymizer,
            readiness=Readiness(),
            producer=None,  # type: ignore[arg-type]  # the console never produces to Kafka
            stop=asyncio.Event(),
        )
        console = build_console(ctx)
        app = create_app(ctx.readiness)
        mount(app, ctx)
        server = HttpServer(app, bind("127.0.0.1", 0))
        await server.start()
        try:
            name = "bench-operator"
            if not await stores.bench().has_user(name):
                await console.auth.users.add(name, "operator", None, "bench")
            async with stores.accounts.transaction() as work:
                token, _ = await console.auth.sessions.open(work, name, "api")
            yield f"http://127.0.0.1:{server.port}", token
        finally:
            await server.stop()


async def time_searches(url: str, token: str, plan: list[Search], repeat: int) -> dict[str, Timing]:
    """Run each search ``repeat`` times (after one warm-up), one request at a time."""
    timings: dict[str, Timing] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
        for search in plan:
            latencies, rows = [], -1
            # One unmeasured run first: the first request of a statement plans it
            # and reads the catalogue into the backend's caches.
            await http.get("/api/messages", params=search.run(-1))
            for k in range(repeat):
                params = search.run(k)
                sent = time.perf_counter()
                response = await http.get("/api/messages", params=params)
                latencies.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{search.label}: HTTP {response.status_code}")
                if rows < 0:
                    rows = len(response.json()["messages"])
            timings[search.label] = Timing(latencies, rows)
    return timings


async def run(
    dsn: str, messages: int, days: int, repeat: int, baseline_repeat: int
) -> tuple[Seeded, dict[str, Timing], dict[str, Timing]]:
    """Seed the empty database ``dsn``, time the searches with and without indexes."""
    from broker.settings import Settings
    from broker.store.stores import Stores

    pseudonymizer = Pseudonymizer(b"bench-search-key" * 2)
    async with Stores.open(dsn, Settings(database_url=dsn), size=2) as stores:
        await stores.migrate()
        bench = stores.bench()
        seeded = await seed(bench, pseudonymizer, messages=messages, days=days)
        sample = await bench.sample_message_ids(1000)
    plan = searches(seeded, [str(i) for i in sample] or [str(uuid.uuid4())])
    async with serve_api(dsn, pseudonymizer) as (url, token):
        indexed = await time_searches(url, token, plan, repeat)
    # The same searches (their first runs) answered without indexes.
    async with serve_api(f"{dsn}?{NO_INDEXES}", pseudonymizer) as (url, token):
        baseline = await time_searches(url, token, plan, baseline_repeat)
    return seeded, indexed, baseline


# --- the command -------------------------------------------------------------------


def add_parser(subcommands: Any) -> None:
    """Add ``bench search`` to the ``bench`` group."""
    parser = subcommands.add_parser(
        "search",
        help="message search on a large store vs the same searches as sequential scans",
        description="Seed a throwaway database with N messages over D days, serve the message "
        "API, time typical searches over HTTP (p50/p99), then the same searches with "
        "PostgreSQL told not to use indexes. Uses CAREBROKER_DATABASE_URL (or "
        "--database-url), else an embedded PostgreSQL in a temporary directory.",
    )
    parser.add_argument(
        "--messages", type=int, default=1_000_000, metavar="N", help="default 1000000"
    )
    parser.add_argument("--days", type=int, default=30, metavar="D", help="default 30")
    parser.add_argument(
        "--repeat", type=int, default=200, metavar="N", help="runs per search (default 200)"
    )
    parser.add_argument(
        "--baseline-repeat", type=int, default=5, metavar="N",
        help="runs per search without indexes (default 5; each reads the whole store)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", metavar="DSN", help="PostgreSQL server to bench on (a database is "
        "created there and dropped after)",
    )  # fmt: skip
    parser.set_defaults(handler=_search)


def _search(args: argparse.Namespace) -> int:
    from broker.commands.options import settings_from
    from broker.errors import ConfigError

    if args.days < 1 or args.messages < args.days or args.repeat < 1:
        raise ConfigError("bench search needs --days >= 1, --messages >= --days, --repeat >= 1")
    dsn = args.database_url or settings_from(args).database_dsn()
    return asyncio.run(_bench(args, dsn))


async def _bench(args: argparse.Namespace, dsn: str | None) -> int:
    async with scratch_database(dsn) as bench_dsn:
        seeded, indexed, baseline = await run(
            bench_dsn, args.messages, args.days, args.repeat, max(1, args.baseline_repeat)
        )
    _say(
        f"bench search: {seeded.messages:,} messages over {seeded.days} days (one partition "
        f"per day), {seeded.patients:,} patients, seeded in {seeded.seconds:.0f} s; each search "
        f"over HTTP, one at a time: {args.repeat} runs with indexes, "
        f"{max(1, args.baseline_repeat)} as sequential scans (baseline)"
    )
    header = ("search", "rows", "p50 ms", "p99 ms", "baseline p50", "ratio")
    _say("{:<40} {:>5} {:>8} {:>8} {:>13} {:>7}".format(*header))
    for label, timing in indexed.items():
        base = baseline[label]
        _say(
            f"{label:<40} {timing.rows:>5} {timing.p50:>8.1f} {timing.percentile(0.99):>8.1f} "
            f"{base.p50:>10.0f} ms {base.p50 / timing.p50:>6.0f}x"
        )
    return 0


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()
