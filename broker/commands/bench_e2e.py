"""``carebroker bench`` (end to end): MLLP senders -> carebroker -> MLLP partners that ACK.

What a region cares about: how many results per second reach the GPs, durable
and audited, and how long each takes from the lab's send to the GP's ACK.

- ``carebroker`` runs as real processes (``carebroker run --role ...``)
  against one PostgreSQL and a local Kafka-compatible broker, with the audit
  writer on. ``--layout one`` runs every role in one process (as ``up``);
  ``--layout split`` (default) runs ingress + relay in one process and router
  + delivery + audit in another, so the two cores both work.
- N sender connections send ORU^R01 messages (one in flight per connection, as
  senders do). Each result goes to two GP practices (OBR-16 and OBR-28), each
  an MLLP partner that ACKs AA.
- Measured: accepted msg/s (all ACKed to the senders), delivered msg/s (all
  ACKed by both partners), end-to-end latency p50/p99 (send to the later
  partner ACK), peak memory per carebroker process, and whether every message
  reached each partner exactly once, in order per patient.
- Baseline, same run, same machine: a pass-through relay in one Python process
  (parse with python-hl7, forward to both partners, wait for their ACKs, then
  ACK the sender). Nothing is stored, audited or retried: the cost of the
  relaying alone. The ratio carebroker / baseline is the figure to compare.
- ``--feed``: the ``feed`` role runs too (a process of its own) and the lab's
  results go on both FHIR feeds (``care.fhir.canonical.v1`` and, pseudonymised,
  ``care.fhir.research.v1``): compare delivered msg/s with and without it; the
  feed's CPU per message and when it caught up are printed. ``--feed-nice 10``
  gives the feed a lower CPU priority, as a smaller CPU request does in
  Kubernetes: routing and delivery come first, the feed catches up after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from adapters.hl7v2.framing import FrameReader, frame
from broker.commands.bench import ORU_TEMPLATE, _cpu_of, _say, scratch_database
from broker.commands.options import settings_from
from broker.store.seed import BenchStore

if TYPE_CHECKING:
    from broker.local import LocalKafka

LAYOUTS = {
    "one": [["mllp", "relay", "router", "delivery", "audit"]],
    "split": [["mllp", "relay"], ["router", "delivery", "audit"]],
}
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
FEED_WAIT_S = 300.0


def register(bench: Any) -> None:
    """Add ``bench e2e`` (also what ``carebroker bench`` runs with no subcommand)."""
    e2e = bench.add_parser(
        "e2e",
        help="MLLP senders -> carebroker -> two MLLP partners, audit on, vs a pass-through relay",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(e2e)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the e2e bench's options (shared by ``bench`` and ``bench e2e``)."""
    parser.add_argument("--connections", type=int, default=16, metavar="N", help="default 16")
    parser.add_argument(
        "--count", type=int, default=10000, metavar="N", help="messages measured (default 10000)"
    )
    parser.add_argument(
        "--patients", type=int, default=500, metavar="N", help="distinct patients (default 500)"
    )
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="split",
        help="roles per process: one (as `up`) or split over two (default)",
    )
    parser.add_argument(
        "--partner-connections",
        type=int,
        default=4,
        metavar="N",
        help="MLLP connections carebroker opens to each partner (default 4)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="MSG/S",
        help="offer this many messages per second in all (paced), to read latency below "
        "saturation; default: as fast as the ACKs come back",
    )
    parser.add_argument("--database-url", metavar="DSN", help="PostgreSQL server to bench on")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline relay")
    parser.add_argument(
        "--feed",
        action="store_true",
        help="also run the feed role (own process), the results published on both FHIR feeds",
    )
    parser.add_argument(
        "--feed-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the feed's process at this niceness (as a pod with a smaller CPU request "
        "gets a smaller share of a busy node); default 0",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the end-to-end bench; return the exit status."""
    settings = settings_from(args)
    dsn = args.database_url or settings.database_dsn()
    return asyncio.run(_bench(args, dsn))


# --- partners and senders ---------------------------------------------------------------


@dataclass
class Partner:
    """An MLLP partner that ACKs AA and records when each control id arrived."""

    name: str
    port: int = 0
    arrived: dict[str, float] = field(default_factory=dict)
    order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    duplicates: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def reset(self) -> None:
        self.arrived.clear()
        self.order.clear()
        self.duplicates = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, 64 << 20)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while (got := await frames.read()) is not None:
                msh = got.data.split(b"\r", 1)[0].split(b"|")
                control = msh[9].decode() if len(msh) > 9 else ""
                patient = _patient_of(got.data)
                if control in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[control] = time.perf_counter()
                    self.order[patient].append(control)
                writer.write(frame(_ack(control)))
                await writer.drain()


def _patient_of(data: bytes) -> str:
    start = data.find(b"\rPID|")
    if start < 0:
        return ""
    fields = data[start + 1 : data.find(b"\r", start + 1)].split(b"|")
    return fields[3].split(b"^")[0].decode() if len(fields) > 3 else ""


def _ack(control: str) -> bytes:
    return (
        f"MSH|^~\\&|GP|GP|CAREBROKER|REGION|20260101||ACK^R01^ACK|A{control}|P|2.5\r"
        f"MSA|AA|{control}\r"
    ).encode()


def _messages(count: int, offset: int, patients: int) -> list[tuple[str, str, bytes]]:
    out = []
    for n in range(offset, offset + count):
        control = f"E{n:09d}"
        patient = f"BL-{n % patients}"
        out.append((control, patient, ORU_TEMPLATE.format(control=control, patient=n % patients)
                    .encode()))  # fmt: skip
    return out


@dataclass
class Sent:
    """What the senders measured."""

    started: dict[str, float]
    seconds: float


async def _send(
    port: int, connections: int, items: list[tuple[str, str, bytes]], rate: float | None = None
) -> Sent:
    """Send one patient's messages on one connection, in order; one in flight per connection.

    With ``rate``, sends are paced to that many per second in all (a connection
    that falls behind sends at once: the offered load is then what it can do).
    """
    from adapters.hl7v2.mllp import MllpClient

    by_connection: list[list[tuple[str, str, bytes]]] = [[] for _ in range(connections)]
    for item in items:  # a patient always on the same connection: its order is the send order
        by_connection[hash(item[1]) % connections].append(item)
    started: dict[str, float] = {}
    clients = [MllpClient("127.0.0.1", port, timeout_s=120) for _ in range(connections)]
    for client in clients:
        await client.connect()

    async def drive(index: int, client: MllpClient, own: list[tuple[str, str, bytes]]) -> None:
        # Patients do not spread evenly over connections: each connection paces
        # its own share so that all of them finish together, at ``rate`` in all.
        interval = len(items) / (rate * len(own)) if rate and own else 0.0
        for k, (control, _, data) in enumerate(own):
            if interval:  # connections take turns: an even stream, not bursts
                delay = begin + (k + index / connections) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            started[control] = time.perf_counter()
            answer = await client.send(data)
            if not answer or b"MSA|AA|" not in answer:
                raise RuntimeError(f"{control} not accepted")

    begin = time.perf_counter()
    await asyncio.gather(
        *(drive(i, c, own) for i, (c, own) in enumerate(zip(clients, by_connection, strict=True)))
    )
    seconds = time.perf_counter() - begin
    for client in clients:
        await client.close()
    return Sent(started, seconds)


# --- the baseline: a pass-through relay -------------------------------------------------


async def _baseline_relay(partners: list[Partner]) -> tuple[asyncio.Server, list[Any]]:
    """Start a relay that forwards each message to both partners before ACKing the sender."""
    import hl7

    from adapters.hl7v2.mllp import MllpClient

    pool: list[list[MllpClient]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outs = [MllpClient("127.0.0.1", p.port, timeout_s=60) for p in partners]
        for out in outs:
            await out.connect()
        pool.append(outs)
        frames = FrameReader(reader, 64 << 20)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while (got := await frames.read()) is not None:
                message = hl7.parse(got.data.decode())
                await asyncio.gather(*(out.send(got.data) for out in outs))
                writer.write(frame(str(message.create_ack()).encode()))
                await writer.drain()
        for out in outs:
            await out.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, pool


# --- carebroker processes ---------------------------------------------------------------


def _partners_file(
    path: Path, gp_a: Partner, gp_b: Partner, connections: int, *, feed: bool = False
) -> None:
    def endpoint(port: int) -> str:
        return f"{{type: mllp, host: 127.0.0.1, port: {port}, connections: {connections}}}"

    feeds = ", feed: {canonical: ['*'], research: ['*']}" if feed else ""
    path.write_text(
        "partners:\n"
        f"  - {{id: bench-lab, name: Bench lab, kind: lab, facilities: [BENCH-LAB]{feeds}}}\n"
        "  - id: gp-dupont\n    name: GP Dupont\n    kind: gp\n    facilities: [GP-DUPONT]\n"
        f'    practitioners: [{{system: "{RPPS}", value: "10001234567"}}]\n'
        f"    endpoint: {endpoint(gp_a.port)}\n"
        '    accepts: {format: hl7v2, version: "2.5"}\n'
        "  - id: gp-petit\n    name: GP Petit\n    kind: gp\n    facilities: [GP-PETIT]\n"
        f'    practitioners: [{{system: "{RPPS}", value: "10007777777"}}]\n'
        f"    endpoint: {endpoint(gp_b.port)}\n"
        '    accepts: {format: hl7v2, version: "2.5"}\n'
    )


@dataclass
class Process:
    """One ``carebroker run`` process of the bench."""

    roles: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    peak_rss: int = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def _start(
    roles: list[str], env: dict[str, str], config: Path, work: Path, index: int, nice: int = 0
) -> Process:
    log = work / f"carebroker-{index}.log"
    command = [str(Path(sys.executable).parent / "carebroker"), "run", "--config", str(config)]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    for role in roles:
        command += ["--role", role]
    command += ["--http-port", "0", "--mllp-port", "0"]
    with log.open("w") as handle:
        popen = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
            command, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    process = Process(roles, popen, log)
    deadline = time.monotonic() + 60
    while "carebroker ready:" not in process.output():
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"carebroker {roles} did not start:\n{process.output()}")
        await asyncio.sleep(0.1)
    return process


def _mllp_port(process: Process) -> int:
    for line in process.output().splitlines():
        if line.startswith("carebroker mllp: "):
            return int(line.split()[2].rsplit(":", 1)[1])
    raise RuntimeError("no MLLP listener in the bench processes")


# --- the run ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What one side of the bench measured."""

    accepted_rate: float
    delivered_rate: float
    p50_ms: float
    p99_ms: float
    exactly_once: bool
    in_order: bool

    def lines(self, label: str) -> list[str]:
        return [
            f"{label:<40} accepted {self.accepted_rate:>7,.0f} msg/s   delivered "
            f"{self.delivered_rate:>7,.0f} msg/s",
            f"{'':40} end-to-end latency p50 {self.p50_ms:8.1f} ms   p99 {self.p99_ms:8.1f} ms",
            f"{'':40} each partner got each message once: {'yes' if self.exactly_once else 'NO'};"
            f" in order per patient: {'yes' if self.in_order else 'NO'}",
        ]


async def _measure(
    port: int,
    connections: int,
    items: list[tuple[str, str, bytes]],
    partners: list[Partner],
    watch: list[Process],
    rate: float | None = None,
) -> Figures:
    for partner in partners:
        partner.reset()
    expected = {control for control, _, _ in items}
    begin = time.perf_counter()
    sent = await _send(port, connections, items, rate)
    deadline = time.monotonic() + 600
    while any(len(p.arrived) < len(expected) for p in partners):
        for process in watch:
            with contextlib.suppress(psutil.Error):
                process.peak_rss = max(process.peak_rss, psutil.Process(process.popen.pid)
                                       .memory_info().rss)  # fmt: skip
            if process.popen.poll() is not None:
                raise RuntimeError(f"carebroker {process.roles} exited:\n{process.output()}")
        if time.monotonic() > deadline:
            raise RuntimeError("not every message was delivered within 10 minutes")
        await asyncio.sleep(0.02)
    delivered_at = max(max(p.arrived[c] for c in expected) for p in partners)
    latencies = sorted(
        max(p.arrived[c] for p in partners) - sent.started[c] for c in expected
    )  # fmt: skip
    order_sent: dict[str, list[str]] = defaultdict(list)
    for control, patient, _ in sorted(items, key=lambda i: sent.started[i[0]]):
        order_sent[patient].append(control)
    in_order = all(
        [c for c in p.order[patient] if c in expected] == controls
        for p in partners
        for patient, controls in order_sent.items()
    )
    return Figures(
        accepted_rate=len(items) / sent.seconds,
        delivered_rate=len(items) / (delivered_at - begin),
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        exactly_once=all(p.duplicates == 0 and set(p.arrived) == expected for p in partners),
        in_order=in_order,
    )


async def _bench(args: argparse.Namespace, dsn: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="carebroker-bench-e2e-") as scratch:
        async with scratch_database(dsn) as bench_dsn:
            return await _bench_in(args, bench_dsn, Path(scratch))


async def _bench_in(args: argparse.Namespace, bench_dsn: str, work: Path) -> int:
    from broker.local import LocalKafka
    from broker.settings import Settings
    from broker.store.stores import Stores

    async with Stores.open(bench_dsn, Settings(database_url=bench_dsn), size=1) as stores:
        return await _bench_with(args, bench_dsn, work, stores.bench(), LocalKafka())


async def _bench_with(
    args: argparse.Namespace, bench_dsn: str, work: Path, admin: BenchStore, kafka: LocalKafka
) -> int:
    await kafka.start()
    partners = [Partner("gp-dupont"), Partner("gp-petit")]
    for partner in partners:
        await partner.start()
    processes: list[Process] = []
    try:
        config = work / "partners.yaml"
        _partners_file(config, partners[0], partners[1], args.partner_connections, feed=args.feed)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
        env.update(
            CAREBROKER_DATABASE_URL=bench_dsn,
            CAREBROKER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS="10",  # tansu holds fetches for the whole wait
            CAREBROKER_LOG_LEVEL="WARNING",
        )
        subprocess.run(  # noqa: ASYNC221 - once, before anything runs
            [str(Path(sys.executable).parent / "carebroker"), "migrate"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        layout = LAYOUTS[args.layout] + ([["feed"]] if args.feed else [])
        for index, roles in enumerate(layout):
            nice = args.feed_nice if roles == ["feed"] else 0
            processes.append(await _start(roles, env, config, work, index, nice))
        port = _mllp_port(processes[0])
        offered = f"offered {args.rate:g} msg/s" if args.rate else "as fast as ACKed"
        _say(
            f"bench e2e ({offered}): {args.connections} sender connections, "
            f"{args.count} ORU^R01 for "
            f"{args.patients} patients, each to 2 MLLP partners ({args.partner_connections} "
            f"connections each); carebroker layout {args.layout}: "
            + " | ".join("+".join(p.roles) for p in processes)
        )
        warm = _messages(min(1000, args.count), 0, args.patients)
        await _measure(port, args.connections, warm, partners, processes)
        pids = [p.popen.pid for p in processes]
        if args.feed:
            await _wait_fed(env, len(warm))  # its CPU below is then the measured messages'
        feed_before = _cpu_of([p.popen.pid for p in processes if p.roles == ["feed"]])
        cpu_before = _cpu_of(pids)
        pg_before = _cpu_of(await _postgres_pids(admin))
        harness_before = time.process_time()
        items = _messages(args.count, len(warm), args.patients)
        ours = await _measure(port, args.connections, items, partners, processes, args.rate)
        cpu = _cpu_of(pids) - cpu_before
        pg_cpu = _cpu_of(await _postgres_pids(admin)) - pg_before
        harness = time.process_time() - harness_before
        for line in ours.lines("carebroker (durable, routed, audited)"):
            _say(line)
        _say(
            f"{'':40} CPU per message: carebroker {cpu / args.count * 1e3:.2f} ms, "
            f"PostgreSQL {pg_cpu / args.count * 1e3:.2f} ms, senders and partners "
            f"{harness / args.count * 1e3:.2f} ms; peak memory "
            + ", ".join(f"{'+'.join(p.roles)} {p.peak_rss / 2**20:.0f} MiB" for p in processes)
        )
        if args.feed:
            feed = next(p for p in processes if p.roles == ["feed"])
            waited = await _wait_fed(env, len(warm) + len(items))
            if waited >= FEED_WAIT_S:
                raise RuntimeError(f"the feed did not catch up:\n{feed.output()[-3000:]}")
            feed_cpu = _cpu_of([feed.popen.pid]) - feed_before
            _say(
                f"{'':40} feed: {len(warm) + len(items)} records on each FHIR feed, caught up "
                f"{waited:.1f} s after the last delivery; CPU {feed_cpu / len(items) * 1e3:.2f} "
                f"ms per message ({len(items) / feed_cpu:,.0f} msg/s per CPU)"
            )
        _say(f"{'':40} audit events chained: {await _wait_audited(admin, len(items))}")
        if not args.no_baseline:
            server, _ = await _baseline_relay(partners)
            base_port = server.sockets[0].getsockname()[1]
            await _measure(base_port, args.connections, warm, partners, [])
            base = await _measure(base_port, args.connections, items, partners, [], args.rate)
            server.close()
            for line in base.lines("baseline (pass-through relay, no store)"):
                _say(line)
            _say(
                f"ratio carebroker / baseline: delivered "
                f"{ours.delivered_rate / base.delivered_rate:.2f}, p50 latency "
                f"{ours.p50_ms / base.p50_ms:.2f}x"
            )
        return 0 if ours.exactly_once and ours.in_order else 1
    finally:
        for process in processes:
            process.popen.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=15)
        for partner in partners:
            await partner.stop()
        await kafka.stop()


async def _wait_fed(env: dict[str, str], records: int) -> float:
    """Wait (bounded) until the canonical feed holds ``records``; return the seconds waited.

    Counted by reading the records: a Kafka-compatible broker's end offsets may
    lag (tansu reports the base offset of a partition's last batch).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from broker import topics

    begin = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env["CAREBROKER_KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        name = topics.CANONICAL.name
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        while seen < records and time.monotonic() - begin < FEED_WAIT_S:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(found) for found in batch.values())
    finally:
        await consumer.stop()
    return time.monotonic() - begin


async def _postgres_pids(admin: BenchStore) -> list[int]:
    return await admin.backend_pids()


async def _wait_audited(admin: BenchStore, messages: int) -> str:
    """Wait (bounded) until the audit writer caught up; describe how far it got."""
    deadline = time.monotonic() + 120
    while True:
        pending, chained = await admin.audit_backlog()
        if pending == 0 or time.monotonic() > deadline:
            return f"{chained} in all ({messages} messages measured), {pending} still pending"
        await asyncio.sleep(0.5)


__all__ = ["add_arguments", "register", "run"]
