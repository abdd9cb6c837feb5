"""Messages per second per router and per delivery instance, each role in its own process.

    CAREBROKER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.perf.roles_bench [--count 10000] [--patients 1000] [--instances 1]

The figures behind the README's sizing table (issue 8). A fresh database on
that server and a local tansu with ``--partitions`` partitions; ``carebroker
run --role relay`` in one process, ``--instances`` processes of ``--role
router``, later as many of ``--role delivery``; two MLLP partners in this
process answering AA at once (every ORU^R01 goes to both: ``mllp_partners_yaml``).

1. **router**: ``count`` messages are stored as ingress would (with their
   outbox rows) while only the relay and the routers run; the routers' rate is
   the messages routed over the time between their first and last routing
   transaction (``deliveries.created_at``), and their CPU per message.
2. **delivery**: then the delivery instances start on the ``2 * count``
   pending deliveries; their rate is the deliveries acknowledged over the time
   between the first and last recorded outcome (``delivered_at``).

Each is printed beside a baseline measured in the same run, in a process of
its own, on the same data:

- router baseline: a plain aiokafka consumer reading the same records from
  ``care.messages.accepted.v1`` in batches of 500, decoding each envelope and
  writing one ``UPDATE messages`` per batch: the floor of consuming and
  writing back, without rules, render, deliveries, audit or outbox;
- delivery baseline: the same payloads sent over as many MLLP connections to
  the same partners, send and await the ACK, nothing read or written in
  PostgreSQL: the wire and the partners' ceiling.

"per CPU" divides by the CPU seconds the role's processes used (psutil), so a
figure holds on a node where the instance has its core to itself; the wall
rate depends on what else this 2-core machine was doing (PostgreSQL, the
partners, the other roles).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from broker import topics
from broker.local import LocalKafka
from broker.pseudonym import Pseudonymizer
from broker.store import db
from broker.store.messages import Accepted, MessageStore
from broker.store.migrate import migrate
from broker.store.partitions import ensure_partitions
from tests.conftest import scratch_database
from tests.integration.routing.conftest import mllp_partners_yaml
from tests.messages import ORU, envelope, variant
from tests.sinks import MllpSink

CONNECTIONS = 4  # per partner endpoint and delivery instance (the directory's `connections`)


@dataclass
class Process:
    """A ``carebroker run`` process of the bench, its log and its CPU so far."""

    popen: subprocess.Popen[bytes]
    log: Path
    peak_rss: int = 0

    def cpu(self) -> float:
        times = psutil.Process(self.popen.pid).cpu_times()
        return float(times.user + times.system)

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, psutil.Process(self.popen.pid).memory_info().rss)


@dataclass
class Figure:
    """What one role did: how many, over how long, at what CPU cost."""

    count: int  # timed over ``seconds``
    seconds: float
    cpu: float  # CPU seconds spent on ``cpu_count`` of them
    cpu_count: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def per_cpu(self) -> float:
        return self.cpu_count / self.cpu

    def line(self, label: str, unit: str) -> str:
        return (
            f"{label:<44} {self.rate:7,.0f} {unit}/s wall   CPU {1e3 / self.per_cpu:.3f} ms"
            f" each -> {self.per_cpu:7,.0f} {unit}/s per CPU"
        )


def start(work: Path, env: dict[str, str], partners: Path, role: str, n: int) -> Process:
    """Start ``carebroker run --role <role>``, logging into ``work``."""
    log = work / f"{role}-{n}.log"
    carebroker = str(Path(sys.executable).parent / "carebroker")
    popen = subprocess.Popen(
        [carebroker, "run", "--role", role, "--config", str(partners), "--http-port", "0"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return Process(popen, log)


async def ready(process: Process, pattern: str, timeout: float = 90.0) -> None:
    """Wait until the process's log matches ``pattern`` (its banner, its partitions)."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, process.log.read_text()):
        if process.popen.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{process.log.name} did not get ready:\n{process.log.read_text()}")
        await asyncio.sleep(0.1)


async def sampled(processes: list[Process], done: Any) -> None:
    """Poll ``done`` until it is true, sampling the processes' memory meanwhile."""
    while not await done():
        for process in processes:
            process.sample()
            if process.popen.poll() is not None:
                sys.exit(process.log.read_text())
        await asyncio.sleep(0.05)


async def span(pool: asyncpg.Pool, query: str) -> tuple[int, float, int]:
    """Return (rows after the first timestamp, seconds from first to last, timestamps).

    ``query`` groups rows by the timestamp their transaction wrote: one per
    routing transaction, one per batch of delivery outcomes.
    """
    rows = await pool.fetch(query)
    first, last = rows[0]["at"], rows[-1]["at"]
    later = sum(r["n"] for r in rows[1:])
    return later, (last - first).total_seconds(), len(rows)


async def postgres_cpu(pool: asyncpg.Pool) -> float:
    """Return the CPU seconds used so far by the PostgreSQL backends serving this database."""
    pids = await pool.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    total = 0.0
    for row in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(row["pid"]).cpu_times()
            total += times.user + times.system
    return total


# --- baselines, each in a process of its own ------------------------------------------


def _consume_baseline(bootstrap: str, topic: str, dsn: str, count: int, out: Any) -> None:
    out.put(asyncio.run(_consume(bootstrap, topic, dsn, count)))


async def _consume(bootstrap: str, topic: str, dsn: str, count: int) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer

    pool = await db.connect(dsn, 2)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench.baseline.{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=64 << 20,
    )
    await consumer.start()
    seen, start, cpu = 0, 0.0, 0.0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                if not seen:
                    start, cpu = time.perf_counter(), time.process_time()
                envelopes = [json.loads(r.value) for r in records]
                async with db.transaction(pool) as conn:
                    await conn.execute(
                        "UPDATE messages m SET updated_at = now()"
                        " FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at)"
                        " WHERE m.id = t.id AND m.received_at = t.at",
                        [e["message_id"] for e in envelopes],
                        [datetime.fromisoformat(e["received_at"]) for e in envelopes],
                    )
                await consumer.commit()
                seen += len(records)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        await consumer.stop()
        await pool.close()


def _send_baseline(ports: list[int], payloads: list[bytes], connections: int, out: Any) -> None:
    out.put(asyncio.run(_send(ports, payloads, connections)))


async def _send(ports: list[int], payloads: list[bytes], connections: int) -> tuple[float, float]:
    from adapters.hl7v2.mllp import MllpClient

    clients = [MllpClient("127.0.0.1", ports[i % len(ports)]) for i in range(connections)]
    for client in clients:
        await client.connect()

    async def run(client: MllpClient, own: list[bytes]) -> None:
        for payload in own:
            answer = await client.send(payload)
            assert answer is not None
            assert b"MSA|AA|" in answer

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(run(c, payloads[i::connections]) for i, c in enumerate(clients)),
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    for client in clients:
        await client.close()
    return seconds, cpu


async def in_process(target: Any, *args: Any) -> tuple[float, float]:
    """Run a baseline in a process of its own; return its (seconds, CPU seconds).

    Waited for in a thread: the partners answering it live in this event loop.
    """
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out), daemon=True)
    process.start()
    result: tuple[float, float] = await asyncio.to_thread(out.get, True, 300)
    process.join(30)
    return result


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """One role's instances working off a backlog: what they did, what PostgreSQL spent."""

    processes: list[Process]
    figure: Figure
    postgres_cpu: float  # seconds per item
    per_write: float  # items per transaction


async def work_off(
    processes: list[Process], pool: asyncpg.Pool, owned: str, left: str, written_at: str
) -> Phase:
    """Let just-started instances work off a backlog; measure them from their first write.

    ``owned`` is the log line of an instance's assignment, ``left`` counts the
    backlog, ``written_at`` groups the rows they wrote by transaction time.
    """
    await asyncio.gather(*(ready(p, owned) for p in processes))
    # Start-up (imports, joining the group) is not the role's work: CPU counts
    # from here, for what is still left.
    cpu_before = [p.cpu() for p in processes]
    pg_before = await postgres_cpu(pool)
    todo = await pool.fetchval(left)

    async def done() -> bool:
        return not await pool.fetchval(left)

    await sampled(processes, done)
    pg = await postgres_cpu(pool) - pg_before
    later, seconds, writes = await span(pool, written_at)
    cpu = sum(p.cpu() for p in processes) - sum(cpu_before)
    total = await pool.fetchval(f"SELECT sum(n) FROM ({written_at}) w")
    return Phase(processes, Figure(later, seconds, cpu, todo), pg / todo, total / writes)


async def main(count: int, patients: int, instances: int, partitions: int) -> None:
    admin = os.environ.get("CAREBROKER_DATABASE_URL")
    if not admin:
        sys.exit("set CAREBROKER_DATABASE_URL to a PostgreSQL server")
    async with scratch_database(admin, prefix="cbroles") as dsn:
        await bench(dsn, count, patients, instances, partitions)


async def bench(dsn: str, count: int, patients: int, instances: int, partitions: int) -> None:
    kafka = LocalKafka()
    await kafka.start()
    sinks = [MllpSink("chu"), MllpSink("dupont"), MllpSink("nord")]
    for sink in sinks:
        await sink.start()
    chu, dupont, nord = sinks
    processes: list[Process] = []
    pool = await db.connect(dsn, 4)
    try:
        await migrate(pool)
        await ensure_partitions(pool)
        work = Path(tempfile.mkdtemp(prefix="carebroker-roles-bench-"))  # logs, kept
        partners = work / "partners.yaml"
        partners.write_text(
            mllp_partners_yaml(chu.port, dupont.port, nord.port).replace(
                "ack_timeout_s: 2,", f"ack_timeout_s: 30, connections: {CONNECTIONS},"
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
        env.update(
            CAREBROKER_DATABASE_URL=dsn,
            CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS="10",  # tansu holds fetches for the whole wait
            CAREBROKER_KAFKA_PARTITIONS=str(partitions),
            CAREBROKER_LOG_LEVEL="INFO",
        )

        def start_all(role: str) -> list[Process]:
            started = [start(work, env, partners, role, n) for n in range(instances)]
            processes.extend(started)
            return started

        relay = start(work, env, partners, "relay", 0)
        processes.append(relay)
        await ready(relay, "ready:")  # topics created
        key = await db.fetch_secret(pool, "pseudonym_key", lambda: secrets.token_bytes(32))
        pseudo = Pseudonymizer(key)
        envelopes = [
            envelope(variant(ORU, f"B-{i:06d}", f"BP{i % patients}"), "labo-sud", pseudo)
            for i in range(count)
        ]
        print(
            f"roles bench: {count} ORU^R01 ({len(ORU)} bytes, {patients} patients, two MLLP "
            f"recipients each), {partitions} partitions, {instances} instance(s) per role, "
            f"PostgreSQL at {db.describe_dsn(dsn)}",
            flush=True,
        )

        # 0. The relay publishes the backlog, stored as ingress would, to Kafka.
        relay_cpu = relay.cpu()
        started = time.perf_counter()
        store = MessageStore(pool)
        for i in range(0, count, 500):
            await store.accept([Accepted(e, b"A") for e in envelopes[i : i + 500]])

        async def published() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM outbox")

        await sampled([relay], published)
        relay_figure = Figure(count, time.perf_counter() - started, relay.cpu() - relay_cpu, count)

        # 1. The routers start together on that backlog (tansu assigns a group
        # formed within its first 3 s at once), then the baseline reads it again.
        routing = await work_off(
            start_all("router"),
            pool,
            r"partitions owned partitions=\d",
            "SELECT count(*) FROM messages WHERE status = 'accepted'",
            "SELECT created_at AS at, count(DISTINCT message_id) AS n FROM deliveries"
            " GROUP BY created_at ORDER BY created_at",
        )
        base_s, base_cpu = await in_process(
            _consume_baseline, kafka.bootstrap, topics.ACCEPTED.full_name(), dsn, count
        )
        consume = Figure(count, base_s, base_cpu, count)

        # 2. The delivery instances start together on the deliveries routed, then
        # the baseline sends the same payloads again.
        delivering = await work_off(
            start_all("delivery"),
            pool,
            r"lanes owned partitions=\d",
            "SELECT count(*) FROM deliveries WHERE status <> 'delivered'",
            "SELECT delivered_at AS at, count(*) AS n FROM deliveries"
            " GROUP BY delivered_at ORDER BY delivered_at",
        )
        resent = sum(len(s.resent) for s in sinks)
        payloads = [
            bytes(r["payload"])
            for r in await pool.fetch("SELECT payload FROM deliveries ORDER BY message_received_at")
        ]
        connections = 2 * CONNECTIONS * instances
        send_s, send_cpu = await in_process(
            _send_baseline, [dupont.port, nord.port], payloads, connections
        )
        wire = Figure(len(payloads), send_s, send_cpu, len(payloads))

        router, delivery = routing.figure, delivering.figure
        print(router.line(f"router x{instances}", "msgs"))
        print(consume.line("  baseline: consume + one UPDATE per batch", "msgs"))
        print(
            f"  ratio router / baseline: {router.rate / consume.rate:.2f} wall, "
            f"{router.per_cpu / consume.per_cpu:.2f} per CPU; "
            f"per router instance {router.rate / instances:,.0f} msgs/s wall"
        )
        print(
            f"  {routing.per_write:.0f} messages per routing transaction; PostgreSQL backends "
            f"{routing.postgres_cpu * 1e3:.3f} ms CPU per message"
        )
        print(relay_figure.line("relay x1 (while they were being stored)", "msgs"))
        print(delivery.line(f"delivery x{instances}", "deliveries"))
        print(wire.line(f"  baseline: MLLP send/ACK, {connections} conns", "deliveries"))
        print(
            f"  ratio delivery / baseline: {delivery.rate / wire.rate:.2f} wall; "
            f"per delivery instance {delivery.rate / instances:,.0f} deliveries/s wall"
        )
        print(
            f"  {delivering.per_write:.0f} outcomes per write; PostgreSQL backends "
            f"{delivering.postgres_cpu * 1e3:.3f} ms CPU per delivery"
        )
        for role, group in (
            ("relay", [relay]),
            ("router", routing.processes),
            ("delivery", delivering.processes),
        ):
            print(f"  peak RSS {role}: {max(p.peak_rss for p in group) / 2**20:.0f} MiB")
        print(f"  resent to partners by carebroker: {resent}")
    finally:
        for process in processes:
            process.popen.send_signal(signal.SIGTERM)
        for process in processes:
            process.popen.wait(timeout=15)
        await pool.close()
        for sink in sinks:
            await sink.stop()
        await kafka.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=1, help="processes per role")
    parser.add_argument("--partitions", type=int, default=12)
    options = parser.parse_args()
    asyncio.run(main(options.count, options.patients, options.instances, options.partitions))
