"""MLLP ACK time while the HTTP edge is flooded: unloaded, 2,500 slow connections, sign-in floods.

    CAREBROKER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.perf.edge_bench [--seconds 15] [--rate 20] [--source DIR]

The figures of issue 13 (items 1 and 2). One ``carebroker run`` process with
the roles ``carebroker up`` runs but delivery (mllp, fhir, console, relay,
router, audit) on a fresh database of that server and a local tansu, the
example partner directory. A sender in this process sends labo-sud's ORU^R01
over one MLLP connection at ``--rate`` messages per second and times each
ACK, through four phases of ``--seconds`` each:

1. **unloaded**;
2. **slowloris**: 2,500 HTTP connections from 100 loopback addresses that
   send part of a request's headers and nothing more, re-opened as the
   server closes them;
3. **sign-ins, one address**: waves of 60 concurrent ``POST /api/session``
   with unknown names from one address, a wave as soon as the last ended;
4. **sign-ins, 60 addresses**: the same from 60 addresses, so that the
   per-address throttle holds back less of it.

It prints, per phase, the ACKs received and their p50, p99 and max, and what
the HTTP side got (statuses). ``--source DIR`` runs carebroker from another
source tree (``git archive main | tar -x -C DIR``) with this environment's
packages, to measure the code before a change in the same sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from broker.local import LocalKafka
from broker.store import db
from broker.store.migrate import migrate
from broker.store.partitions import ensure_partitions
from tests.conftest import REPO, scratch_database
from tests.messages import ORU, variant

ROLES = ("mllp", "fhir", "console", "relay", "router", "audit")
VT, FS_CR = b"\x0b", b"\x1c\r"


async def start(
    source: Path | None, work: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start carebroker; return the process and its MLLP and HTTP ports (from its banner)."""
    log = work / "carebroker.log"
    command = [sys.executable, "-c", "import sys; from broker.cli import main; sys.exit(main())"]
    args = [
        "run",
        *[a for r in ROLES for a in ("--role", r)],
        "--config",
        str(REPO / "tests" / "data" / "partners.yaml"),
    ]
    args += ["--http-port", "0", "--mllp-port", "0"]
    environment = {**env, **({"PYTHONPATH": str(source)} if source else {})}
    popen = subprocess.Popen(
        [*command, *args], env=environment, cwd=work, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log.read_text()
        if "carebroker ready" in text:
            import re

            http = int(re.search(r"http: http://[^\s:]+:(\d+)", text)[1])  # type: ignore[index]
            mllp = int(re.search(r"mllp: [^\s:]+:(\d+)", text)[1])  # type: ignore[index]
            return popen, mllp, http
        if popen.poll() is not None:
            break
        await asyncio.sleep(0.2)
    sys.exit(f"carebroker did not start:\n{log.read_text()}")


async def sender(port: int, rate: float, stop: asyncio.Event, times: list[float]) -> None:
    """Send at ``rate``/s over one MLLP connection; note each ACK's round trip (seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    interval = 1.0 / rate
    n = 0
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            n += 1
            frame = VT + variant(ORU, f"EB-{uuid.uuid4().hex[:12]}") + FS_CR
            start = time.monotonic()
            writer.write(frame)
            await reader.readuntil(FS_CR)
            times.append(time.monotonic() - start)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        writer.close()


async def slowloris(
    port: int, stop: asyncio.Event, count: int = 2500, addresses: int = 100
) -> Counter[str]:
    """Hold ``count`` unfinished requests open from ``addresses`` addresses until ``stop``."""
    seen: Counter[str] = Counter()

    async def one(i: int) -> None:
        local = f"127.0.{1 + i % addresses // 250}.{2 + i % addresses % 250}"
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(local, 0)
                )
            except OSError:
                seen["refused"] += 1
                await asyncio.sleep(0.5)
                continue
            writer.write(b"POST /api/session HTTP/1.1\r\nHost: carebroker\r\nX-Slow: ")
            seen["opened"] += 1
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                answer = await _until(reader.read(64), stop)
                if answer:
                    seen[
                        answer.split(b" ")[1].decode(errors="replace")
                        if b" " in answer
                        else "closed"
                    ] += 1
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return seen


async def _until(read: object, stop: asyncio.Event) -> bytes:
    task = asyncio.ensure_future(read)  # type: ignore[arg-type]
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return b""


async def sign_ins(port: int, stop: asyncio.Event, addresses: int) -> Counter[int]:
    """Waves of 60 concurrent sign-ins with unknown names until ``stop``."""
    seen: Counter[int] = Counter()
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.2.{1 + i % addresses}"),
        )
        for i in range(60)
    ]

    async def one(client: httpx.AsyncClient, n: int) -> None:
        try:
            response = await client.post(
                "/api/session",
                json={"name": f"nobody-{n}-{uuid.uuid4().hex[:6]}", "password": "a wrong one"},
            )
            seen[response.status_code] += 1
        except httpx.HTTPError:
            seen[0] += 1

    try:
        wave = 0
        while not stop.is_set():
            wave += 1
            await asyncio.gather(*(one(c, wave * 100 + i) for i, c in enumerate(clients)))
    finally:
        for client in clients:
            await client.aclose()
    return seen


def summary(name: str, times: list[float], other: object) -> str:
    if not times:
        return f"{name:<28} no ACK"
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name:<28} {len(times):>5} ACKs  p50 {statistics.median(ordered) * 1000:7.1f} ms"
        f"  p99 {p99 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"
        f"   http: {other or '-'}"
    )


def _load(kind: str, port: int, seconds: float, out: Any) -> None:
    """Run one flood in a process of its own, so that it takes no time from the sender's loop."""

    async def run() -> object:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        if kind == "slowloris":
            return await slowloris(port, stop)
        return await sign_ins(port, stop, 1 if kind == "sign-ins-1" else 60)

    out.put(dict(asyncio.run(run())))  # type: ignore[call-overload]


async def phase(
    name: str, mllp: int, rate: float, seconds: float, load: tuple[str, int] | None
) -> str:
    stop = asyncio.Event()
    times: list[float] = []
    results: Any = None
    child = None
    if load:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=_load, args=(load[0], load[1], seconds + 3, results))
        child.start()
        await asyncio.sleep(3)  # let the flood build up
    sending = asyncio.ensure_future(sender(mllp, rate, stop, times))
    await asyncio.sleep(seconds)
    stop.set()
    await sending
    other = None
    if child is not None:
        other = await asyncio.to_thread(results.get, True, 120)
        child.join(30)
    line = summary(name, times, other)
    print(line, flush=True)
    return line


async def main(seconds: float, rate: float, source: Path | None) -> None:
    admin = os.environ.get("CAREBROKER_DATABASE_URL")
    if not admin:
        sys.exit(
            "set CAREBROKER_DATABASE_URL to a PostgreSQL server (the bench makes its own database)"
        )
    kafka = LocalKafka()
    await kafka.start()
    work = Path(tempfile.mkdtemp(prefix="carebroker-edge-bench-"))
    try:
        async with scratch_database(admin) as dsn:
            pool = await db.connect(dsn, 2)
            await migrate(pool)
            await ensure_partitions(pool)
            await pool.close()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
            env.update(
                CAREBROKER_DATABASE_URL=dsn,
                CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
                CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS="10",
                CAREBROKER_LOG_LEVEL="WARNING",
            )
            process, mllp, http = await start(source, work, env)
            try:
                print(
                    f"carebroker from {source or REPO}; {rate:g} ORU^R01/s over MLLP, "
                    f"{seconds:g} s per phase",
                    flush=True,
                )
                await phase("warm-up", mllp, rate, 3, None)
                await phase("unloaded", mllp, rate, seconds, None)
                for name, load in (
                    ("2,500 slow HTTP connections", "slowloris"),
                    ("60 sign-ins, one address", "sign-ins-1"),
                    ("60 sign-ins, 60 addresses", "sign-ins-60"),
                ):
                    await phase(name, mllp, rate, seconds, (load, http))
                await phase("unloaded again", mllp, rate, seconds, None)
            finally:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=15)
                if process.poll() is None:
                    process.kill()
                    process.wait()
                conn = await asyncpg.connect(dsn)
                await conn.close()
    finally:
        await kafka.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=20.0, help="ORU^R01 per second over MLLP")
    parser.add_argument(
        "--source", type=Path, default=None, help="run carebroker from this source tree"
    )
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.rate, options.source))
