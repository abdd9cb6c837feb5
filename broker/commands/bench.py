"""``carebroker bench``: measure hot paths on this machine, each against a baseline run alongside.

Figures from another day or machine do not compare; a ratio to a baseline
measured in the same run, on the same load, does. Subcommands:

- ``ingress``: N MLLP connections send ORU^R01 messages (one in flight per
  connection, as senders do) to carebroker's durable ingress (stored in
  PostgreSQL with its outbox row before each ACK), then the same load to a
  baseline MLLP server that only parses with python-hl7 and ACKs (nothing
  stored). Prints accepted msg/s and ACK latency p50/p99 for both.
- ``search``: the operators' message search on a store of a million
  messages, against the same searches as sequential scans
  (``broker/commands/bench_search.py``).

Each server runs in a process of its own; the load generator runs in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import psutil

from adapters.hl7v2.ingress import COMMIT_LINGER_S
from broker.commands.options import settings_from
from broker.store import seed

# A lab result as labs send them: MSH, PID with two identifiers, ORC, OBR, five OBX.
ORU_TEMPLATE = (
    "MSH|^~\\&|LIS|BENCH-LAB|CAREBROKER|REGION|20260101101500+0100||ORU^R01^ORU_R01|{control}|P"
    "|2.5|||||FRA|UNICODE UTF-8\r"
    "PID|1||BL-{patient}^^^BENCH-LAB&1.2.250.1.999.9&ISO^PI||TEST^PATIENT^^^^^L||19700101|F"
    "|||1 RUE DES TESTS^^MONTPELLIER^^34000^FRA\r"
    "PV1|1|O|||||10001234567^DUPONT^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO\r"
    "ORC|RE|ORD-{control}|BL-{control}||CM|||||||10001234567^DUPONT^Anne^^^^^^"
    "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO\r"
    "OBR|1|ORD-{control}|BL-{control}|24323-8^Comprehensive metabolic panel^LN|||20260101080000"
    "|||||||||10001234567^DUPONT^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO||||||"
    "20260101100000|||F|||10007777777^PETIT^Marc^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
    "||||||||||||||||||||CC\r"
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F|||20260101093000\r"
    "OBX|2|NM|2160-0^Creatinine^LN||78|umol/L|45-90|N|||F|||20260101093000\r"
    "OBX|3|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F|||20260101093000\r"
    "OBX|4|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F|||20260101093000\r"
    "OBX|5|NM|1742-6^ALT^LN||23|U/L|7-40|N|||F|||20260101093000\r"
)
BENCH_PARTNERS: dict[str, Any] = {
    "partners": [
        {
            "id": "bench-lab",
            "name": "Bench lab",
            "kind": "lab",
            "facilities": ["BENCH-LAB"],
            "networks": ["127.0.0.0/8"],  # checked on every message, as a deployment would
        }
    ]
}


def register(commands: Any) -> None:
    """Add ``bench`` and its subcommands."""
    from broker.commands import bench_convert, bench_e2e, bench_mssante

    bench = commands.add_parser(
        "bench",
        help="measure carebroker against a baseline run alongside (default: end to end)",
        description="Without a subcommand: the end-to-end bench (`bench e2e`).",
    )
    bench_e2e.add_arguments(bench)
    subcommands = bench.add_subparsers(dest="bench", metavar="BENCH", required=False)
    bench_e2e.register(subcommands)
    bench_convert.register(subcommands)
    bench_mssante.register(subcommands)
    ingress = subcommands.add_parser(
        "ingress",
        help="durable HL7 v2 ingress over MLLP vs a python-hl7 parse-and-ACK server",
        description="Send ORU^R01 messages over N MLLP connections to carebroker's durable "
        "ingress, then to a python-hl7 server that only parses and ACKs; print msg/s and "
        "ACK latency p50/p99 of both. Uses CAREBROKER_DATABASE_URL (or --database-url) "
        "to create a throwaway database, else an embedded PostgreSQL in a temporary directory.",
    )
    ingress.add_argument("--connections", type=int, default=32, metavar="N", help="default 32")
    ingress.add_argument(
        "--count", type=int, default=20000, metavar="N", help="messages measured (default 20000)"
    )
    ingress.add_argument(
        "--warmup", type=int, default=1000, metavar="N", help="messages sent first, not measured"
    )
    ingress.add_argument(
        "--database-url", metavar="DSN", help="PostgreSQL server to bench on (a database is "
        "created there and dropped after)",
    )  # fmt: skip
    ingress.add_argument(
        "--commit-concurrency", type=int, default=1, metavar="N",
        help="group commits in flight at once (default 1, as the mllp role)",
    )  # fmt: skip
    ingress.add_argument(
        "--commit-linger-ms", type=float, default=COMMIT_LINGER_S * 1000, metavar="MS",
        help=f"wait before a shared group commit (default {COMMIT_LINGER_S * 1000:g}, as the "
        "mllp role)",
    )  # fmt: skip
    ingress.add_argument("--no-baseline", action="store_true", help="skip the python-hl7 baseline")
    ingress.set_defaults(handler=_ingress)

    from broker.commands import bench_search  # imports this module: registered last

    bench_search.add_parser(subcommands)


@dataclass
class Result:
    """What one load run measured."""

    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    def line(self, label: str) -> str:
        return (
            f"{label:<34} {self.rate:>8,.0f} msg/s   ACK latency p50 {self.percentile(0.5):6.2f} ms"
            f"  p99 {self.percentile(0.99):6.2f} ms"
        )


def messages(count: int, offset: int) -> list[bytes]:
    """Return ``count`` distinct ORU^R01 messages (control ids from ``offset``), 500 patients."""
    return [
        ORU_TEMPLATE.format(control=f"B{offset + n:09d}", patient=n % 500).encode()
        for n in range(count)
    ]


async def drive(port: int, connections: int, batches: list[list[bytes]]) -> Result:
    """Send each connection's messages one at a time, awaiting each ACK; time it all."""
    from adapters.hl7v2.mllp import MllpClient

    latencies: list[float] = []
    clients = [MllpClient("127.0.0.1", port, timeout_s=60) for _ in range(connections)]
    for client in clients:
        await client.connect()

    async def run(client: MllpClient, own: list[bytes]) -> None:
        for data in own:
            sent = time.perf_counter()
            answer = await client.send(data)
            latencies.append(time.perf_counter() - sent)
            if not answer or b"MSA|AA|" not in answer:
                raise RuntimeError("bench message not accepted (MSA-1 is not AA)")

    start = time.perf_counter()
    await asyncio.gather(*(run(c, own) for c, own in zip(clients, batches, strict=True)))
    seconds = time.perf_counter() - start
    for client in clients:
        await client.close()
    return Result(sum(len(b) for b in batches), seconds, latencies)


def split(items: list[bytes], parts: int) -> list[list[bytes]]:
    return [items[i::parts] for i in range(parts)]


# --- servers, each in a process of its own --------------------------------------------


def _carebroker_server(
    dsn: str, concurrency: int, linger_ms: float, ports: Any, mark: EventType, stop: EventType
) -> None:
    asyncio.run(_serve_carebroker(dsn, concurrency, linger_ms, ports, mark, stop))


async def _serve_carebroker(
    dsn: str, concurrency: int, linger_ms: float, ports: Any, mark: EventType, stop: EventType
) -> None:
    from adapters.hl7v2.ingress import Ingress
    from adapters.hl7v2.mllp import Limits, MllpServer
    from broker.directory import parse_directory
    from broker.pseudonym import Pseudonymizer
    from broker.settings import Settings
    from broker.store.stores import Stores

    async with Stores.open(dsn, Settings(database_url=dsn), size=concurrency + 2) as stores:
        ingress = Ingress(
            stores.messages,
            parse_directory(BENCH_PARTNERS),
            Pseudonymizer(b"bench-key-" * 4),
            commit_concurrency=concurrency,
            commit_linger_s=linger_ms / 1000,
            senders="declared",  # as the mllp role on loopback
        )
        ingress.start()
        server = MllpServer(
            ingress.handle,
            host="127.0.0.1",
            port=0,
            # The bench's own connections, all from loopback: no per-peer cap applies.
            limits=Limits(32 << 20, 300, max_connections=100_000, max_connections_per_peer=100_000),
            on_incomplete=ingress.incomplete,
        )
        await server.start()
        ports.put(server.port)
        await asyncio.to_thread(mark.wait)  # warm-up done: measure from here
        commits = ingress._accepts  # the bench reports the group commit's work
        cpu, flushes, items = time.process_time(), commits.flushes, commits.flushed_items
        await asyncio.to_thread(stop.wait)
        ports.put(
            (commits.flushes - flushes, commits.flushed_items - items, time.process_time() - cpu)
        )
        await server.stop()
        await ingress.stop()


def _baseline_server(ports: Any, mark: EventType, stop: EventType) -> None:
    asyncio.run(_serve_baseline(ports, mark, stop))


async def _serve_baseline(ports: Any, mark: EventType, stop: EventType) -> None:
    import hl7
    from hl7.mllp import start_hl7_server

    async def answer(reader: Any, writer: Any) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                message = await reader.readmessage()
                writer.writemessage(message.create_ack())
                await writer.drain()

    server = await start_hl7_server(answer, "127.0.0.1", 0, encoding="utf-8")
    ports.put(server.sockets[0].getsockname()[1])
    await asyncio.to_thread(mark.wait)
    cpu = time.process_time()
    await asyncio.to_thread(stop.wait)
    ports.put((0, 0, time.process_time() - cpu))
    server.close()
    del hl7


@dataclass
class Measured:
    """One server's run: the load's result and the CPU seconds each side spent on it."""

    result: Result
    server_cpu: float
    client_cpu: float
    postgres_cpu: float
    commits: int
    committed: int

    def cpu_line(self) -> str:
        n = self.result.count
        parts = [
            f"server {self.server_cpu / n * 1e6:.0f}",
            f"load generator {self.client_cpu / n * 1e6:.0f}",
        ]
        if self.postgres_cpu:
            parts.append(f"PostgreSQL backends {self.postgres_cpu / n * 1e6:.0f}")
        return f"{'':34} CPU per message (us): {', '.join(parts)}"


async def measure(
    target: Any,
    args: tuple[Any, ...],
    connections: int,
    warmup: int,
    count: int,
    postgres: Callable[[], Awaitable[float]] | None = None,
) -> Measured:
    """Start a server process, load it (warm-up, then measured), return the figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    mark, stop = context.Event(), context.Event()
    process = context.Process(target=target, args=(*args, queue, mark, stop), daemon=True)
    process.start()
    try:
        port = queue.get(timeout=60)
        if warmup:
            await drive(port, connections, split(messages(warmup, 0), connections))
        mark.set()
        pg_before = await postgres() if postgres else 0.0
        client_before = time.process_time()
        result = await drive(port, connections, split(messages(count, warmup), connections))
        client_cpu = time.process_time() - client_before
        pg_cpu = (await postgres() - pg_before) if postgres else 0.0
    finally:
        mark.set()
        stop.set()
    commits, committed, server_cpu = queue.get(timeout=60)
    process.join(30)
    return Measured(result, server_cpu, client_cpu, pg_cpu, commits, committed)


# --- the command -------------------------------------------------------------------------


def _ingress(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    dsn = args.database_url or settings.database_dsn()
    return asyncio.run(_bench_ingress(args, dsn))


async def _bench_ingress(args: argparse.Namespace, dsn: str | None) -> int:
    from broker.settings import Settings
    from broker.store import db
    from broker.store.stores import Stores

    async with (
        scratch_database(dsn) as bench_dsn,
        Stores.open(bench_dsn, Settings(database_url=bench_dsn), size=2) as stores,
    ):
        await stores.migrate()
        await stores.partitions.ensure()
        bench = stores.bench()
        size = len(messages(1, 0)[0])
        _say(
            f"bench ingress: {args.connections} connections, {args.count} ORU^R01 of "
            f"{size} bytes (after {args.warmup} warm-up), group commits: "
            f"{args.commit_concurrency} in flight, {args.commit_linger_ms:g} ms linger; "
            f"PostgreSQL at {db.describe_dsn(bench_dsn)}"
        )

        async def postgres_cpu() -> float:
            return _cpu_of(await bench.backend_pids())

        ours = await measure(
            _carebroker_server, (bench_dsn, args.commit_concurrency, args.commit_linger_ms),
            args.connections, args.warmup, args.count,
            postgres_cpu,
        )  # fmt: skip
        stored = await bench.count_accepted()
        _say(ours.result.line("durable ingress (carebroker)"))
        _say(
            f"{'':34} {stored} stored with their outbox rows; {ours.commits} commits, "
            f"{ours.committed / max(ours.commits, 1):.1f} messages per commit"
        )
        _say(ours.cpu_line())
        if stored != args.count + args.warmup:
            _say(f"error: {args.count + args.warmup} accepted but {stored} stored")
            return 1
        if not args.no_baseline:
            base = await measure(_baseline_server, (), args.connections, args.warmup, args.count)
            _say(base.result.line("baseline (python-hl7 parse + ACK)"))
            _say(base.cpu_line())
            _say(
                f"ratio carebroker / baseline: {ours.result.rate / base.result.rate:.2f} "
                f"(p50 latency "
                f"{ours.result.percentile(0.5) / base.result.percentile(0.5):.2f}x)"
            )
    return 0


@asynccontextmanager
async def scratch_database(dsn: str | None) -> AsyncIterator[str]:
    """Yield the DSN of a throwaway database on ``dsn``'s server; drop it after.

    Without ``dsn``, the server is an embedded PostgreSQL in a temporary
    directory, stopped after too.
    """
    from broker.local import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="carebroker-bench-") as scratch:
        embedded = None
        if dsn is None:
            embedded = EmbeddedPostgres(Path(scratch) / "pg")
            await embedded.start()
            dsn = embedded.owner_dsn
        try:
            async with seed.scratch_database(dsn) as scratch_dsn:
                yield scratch_dsn
        finally:
            if embedded is not None:
                await embedded.stop()


def _cpu_of(pids: Iterable[int]) -> float:
    """Return the CPU seconds (user + system) the processes have used so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()
