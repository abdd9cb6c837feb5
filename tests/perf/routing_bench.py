"""Routing + delivery throughput, with a same-run baseline (a benchmark, not a test).

    CAREBROKER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.perf.routing_bench [--count 10000] [--patients 1000] [--fhir]

Starts ``carebroker run --role relay --role router --role delivery`` as a
separate process against a fresh database on that server and a local tansu,
with two MLLP partners (this process ACKs with AA). Stores ``count`` ORU^R01
messages as ingress would (each goes to two recipients), then measures how
fast deliveries are acknowledged. The baseline, measured first in the same
run on the same machine, is one MLLP connection doing send/ACK in a loop
against the same sink (with ``MllpClient``, the client delivery uses): the
ceiling of one partner connection. With ``--fhir`` the copies-to partner stays
a FHIR partner (a ``$process-message`` server in this process), so every
message is also translated into a FHIR message Bundle at routing.

The end-to-end ``carebroker bench`` (MLLP senders in, audit on) is the lead's,
after ingress is merged; this measures the part issue 4 owns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import psutil

from adapters.hl7v2.mllp import MllpClient
from broker.local import LocalKafka, free_port
from broker.pseudonym import Pseudonymizer
from broker.store import db
from broker.store.messages import Accepted, MessageStore
from broker.store.migrate import migrate
from broker.store.partitions import ensure_partitions
from tests.integration.routing.conftest import mllp_partners_yaml, partners_yaml
from tests.messages import ORU, envelope, variant
from tests.sinks import FhirSink, MllpSink


async def baseline(port: int, count: int) -> float:
    """Return send/ACK round trips per second over one MLLP connection to the sink."""
    async with MllpClient("127.0.0.1", port, timeout_s=30) as client:
        start = time.perf_counter()
        for i in range(count):
            await client.send(variant(ORU, f"BASE-{i}"))
        elapsed = time.perf_counter() - start
    return count / elapsed


async def main(count: int, patients: int, fhir_partner: bool = False) -> None:
    admin = os.environ.get("CAREBROKER_DATABASE_URL")
    if not admin:
        sys.exit("set CAREBROKER_DATABASE_URL to a PostgreSQL server")
    name = f"cbbench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = admin.rsplit("/", 1)[0] + f"/{name}"
    kafka = LocalKafka()
    await kafka.start()
    chu, dupont, fhir = MllpSink("chu"), MllpSink("dupont"), FhirSink()
    await chu.start()
    await dupont.start()
    await fhir.start()
    process: subprocess.Popen[bytes] | None = None
    pool = await db.connect(dsn, 4)
    try:
        await migrate(pool)
        await ensure_partitions(pool)
        reference = MllpSink("baseline")
        await reference.start()
        base = await baseline(reference.port, 3000)
        await reference.stop()

        work = Path(f"/tmp/{name}")
        work.mkdir()
        partners = work / "partners.yaml"
        if fhir_partner:
            partners.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
        else:
            # Copies-to goes over MLLP too here: both recipients are MLLP sinks.
            partners.write_text(mllp_partners_yaml(chu.port, dupont.port, chu.port))
        second = fhir.processed if fhir_partner else chu.processed
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
        env.update(
            CAREBROKER_DATABASE_URL=dsn,
            CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS="10",  # tansu holds fetches for the whole wait
            CAREBROKER_LOG_LEVEL="WARNING",
        )
        log = (work / "carebroker.log").open("w")
        carebroker = str(Path(sys.executable).parent / "carebroker")
        process = subprocess.Popen(
            [
                carebroker,
                "run",
                "--role",
                "relay",
                "--role",
                "router",
                "--role",
                "delivery",
                "--config",
                str(partners),
                "--http-port",
                str(free_port()),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        key = await db.fetch_secret(pool, "pseudonym_key", lambda: secrets.token_bytes(32))
        pseudo = Pseudonymizer(key)
        envelopes = [
            envelope(variant(ORU, f"B-{i:06d}", f"BP{i % patients}"), "labo-sud", pseudo)
            for i in range(count)
        ]
        while "ready:" not in (work / "carebroker.log").read_text():
            await asyncio.sleep(0.2)
        store = MessageStore(pool)
        broker_process = psutil.Process(process.pid)
        cpu_before = sum(broker_process.cpu_times()[:2])
        start = time.perf_counter()
        for i in range(0, count, 500):
            await store.accept([Accepted(e, b"A") for e in envelopes[i : i + 500]])
        accepted_s = time.perf_counter() - start
        peak_rss = 0
        tick = time.perf_counter()
        while len(dupont.processed) < count or len(second) < count:
            await asyncio.sleep(0.05)
            if os.environ.get("BENCH_TRACE") and time.perf_counter() - tick > 1:
                tick = time.perf_counter()
                routed = await pool.fetchval(
                    "SELECT count(*) FROM messages WHERE status <> 'accepted'"
                )
                waiting = await pool.fetchval("SELECT count(*) FROM outbox")
                done = len(dupont.processed) + len(second)
                print(f"  t={tick - start:5.1f} routed={routed} outbox={waiting} delivered={done}")
            peak_rss = max(peak_rss, psutil.Process(process.pid).memory_info().rss)
            if process.poll() is not None:
                sys.exit((work / "carebroker.log").read_text())
        delivered_s = time.perf_counter() - start
        recorded = 0
        while recorded < 2 * count:
            recorded = await pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
            )
            await asyncio.sleep(0.05)
        recorded_s = time.perf_counter() - start
        cpu_s = sum(broker_process.cpu_times()[:2]) - cpu_before
        print(f"baseline: one MLLP connection send/ACK loop     {base:8.0f} msg/s")
        print(f"stored {count} messages ({patients} patients) in {accepted_s:.2f} s")
        print(
            f"delivered (partner ACKed) {2 * count} deliveries in {delivered_s:.2f} s: "
            f"{2 * count / delivered_s:8.0f} deliveries/s, {count / delivered_s:8.0f} msg/s"
        )
        print(f"  all recorded delivered in PostgreSQL after {recorded_s:.2f} s")
        print(f"  ratio deliveries/s to baseline: {2 * count / delivered_s / base:.2f}")
        print(
            f"  broker process peak RSS {peak_rss / 2**20:.0f} MiB, CPU {cpu_s:.1f} s: "
            f"{cpu_s / count * 1000:.2f} ms per message (relay + router + delivery)"
        )
        print(f"  resent to partners: {len(dupont.resent) + len(chu.resent)}")
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
        await pool.close()
        await chu.stop()
        await dupont.stop()
        await fhir.stop()
        await kafka.stop()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument(
        "--fhir", action="store_true", help="keep the copies-to partner a FHIR partner"
    )
    options = parser.parse_args()
    asyncio.run(main(options.count, options.patients, options.fhir))
