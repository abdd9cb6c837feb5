"""A running routing pipeline for a test: relay + router + delivery + console, real services.

Messages are injected as ingress stores them (``MessageStore.accept`` with
``build_envelope``), then the real roles take over: the relay publishes to
the session's tansu, the router consumes and writes deliveries, the delivery
role sends to real MLLP and HTTP partner sinks. The partner file is the
shared example with the sinks' ports and fast retry settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from broker import kafka
from broker.app import mount, role_service
from broker.console.sessions import Sessions
from broker.console.users import UserRole, Users
from broker.context import Context, RoleService
from broker.directory import load_directory
from broker.directory_sync import DirectorySync
from broker.envelope import Envelope
from broker.health import Readiness
from broker.http import HttpServer, bind, create_app
from broker.pseudonym import Pseudonymizer
from broker.settings import Settings
from broker.store import db
from broker.store.db import Database
from broker.store.messages import Accepted
from broker.store.routing import PgRoutingStore
from broker.store.stores import Stores
from broker.store.work import Head
from tests.conftest import wait_for
from tests.messages import DATA, envelope
from tests.sinks import FhirSink, MllpSink, partner_sinks

MAILBOX_TOKEN = "mailbox-token-of-cabinet-sans-interface"
FAST_RETRY = "retry: {base_s: 0.05, max_s: 0.3, circuit_failures: 3, circuit_open_s: 0.5}"


def partners_yaml(chu: int, dupont: int, fhir_url: str, extra: str = "") -> str:
    """Return the shared example pointed at the sinks, with fast retries and a mailbox token."""
    text = (DATA / "partners.yaml").read_text()
    text = text.replace(
        "endpoint: {type: mllp, host: 127.0.0.1, port: 7001}",
        f"endpoint: {{type: mllp, host: 127.0.0.1, port: {chu}, ack_timeout_s: 2, "
        f"{FAST_RETRY.replace('}', ', max_attempts: 4}')}}}",
    )
    text = text.replace(
        "endpoint: {type: mllp, host: 127.0.0.1, port: 7002}",
        f"endpoint: {{type: mllp, host: 127.0.0.1, port: {dupont}, ack_timeout_s: 2, "
        f"{FAST_RETRY}}}",
    )
    text = text.replace(
        'endpoint: {type: fhir, url: "http://127.0.0.1:7003/fhir"}',
        f'endpoint: {{type: fhir, url: "{fhir_url}", timeout_s: 2, {FAST_RETRY}}}',
    )
    token = hashlib.sha256(MAILBOX_TOKEN.encode()).hexdigest()
    text = text.replace(
        "    endpoint: {type: mailbox}",
        f"    token_sha256: [{token}]\n    endpoint: {{type: mailbox, unacked_alert_after_s: 1}}",
    )
    return text + extra


def mllp_partners_yaml(chu: int, dupont: int, nord: int) -> str:
    """Return ``partners_yaml`` with maison-sante-nord (the results' copies-to) on MLLP too.

    A lab result then goes to two MLLP partners (cabinet-dupont, the ordering
    provider, and maison-sante-nord, copied): load and scale-out tests count
    and order everything at MLLP sinks. Every MLLP endpoint keeps the
    ``ack_timeout_s: 2,`` text, so a caller can replace it to tune them all.
    """
    unused = "http://127.0.0.1:9/fhir"
    return (
        partners_yaml(chu, dupont, unused)
        .replace(
            f'endpoint: {{type: fhir, url: "{unused}", timeout_s: 2,',
            f"endpoint: {{type: mllp, host: 127.0.0.1, port: {nord}, ack_timeout_s: 2,",
        )
        .replace(
            "accepts: {format: fhir}\n\n  - id: cabinet-sans",
            "accepts: {format: hl7v2}\n\n  - id: cabinet-sans",
        )
    )


@dataclass
class Pipeline:
    """The running roles, their sinks, and helpers to inject and observe."""

    settings: Settings
    ctx: Context
    pool: asyncpg.Pool
    chu: MllpSink
    dupont: MllpSink
    fhir: FhirSink
    http_port: int
    partners: Path
    services: list[RoleService] = field(default_factory=list)
    api_token: str | None = None  # an operator's, when the console role runs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def accept(self, *items: tuple[bytes, str]) -> list[Envelope]:
        """Store messages as ingress does (raw bytes, sender partner id); return envelopes."""
        envelopes = [envelope(raw, sender, self.ctx.pseudonymizer) for raw, sender in items]
        await self.ctx.stores.messages.accept([Accepted(e, b"ACK") for e in envelopes])
        return envelopes

    async def deliveries(self, message_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM deliveries WHERE message_id = $1", message_id)
        return {r["recipient"]: dict(r) for r in rows}

    async def wait_status(
        self, message_ids: list[uuid.UUID], statuses: set[str], timeout: float = 30.0
    ) -> None:
        """Wait until every delivery of these messages has one of ``statuses``."""

        async def done() -> bool:
            rows = await self.pool.fetch(
                "SELECT status FROM deliveries WHERE message_id = ANY($1::uuid[])", message_ids
            )
            return bool(rows) and all(r["status"] in statuses for r in rows)

        await wait_for(done, timeout=timeout)

    async def message_status(self, message_id: uuid.UUID) -> str:
        row = await self.ctx.stores.messages.get(message_id)
        assert row is not None
        return str(row["status"])

    async def audit(self, message_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT event FROM audit_pending ORDER BY id")
        events = [r["event"] for r in rows]
        if message_id is None:
            return events
        return [e for e in events if e.get("message_id") == str(message_id)]

    def api(self, *, signed_in: bool = True) -> httpx.AsyncClient:
        """Return a client of the HTTP API, signed in as an operator unless told not to."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if signed_in else {}
        return httpx.AsyncClient(base_url=self.url, timeout=10, headers=headers)


async def api_token(pool: asyncpg.Pool, name: str, role: UserRole) -> str:
    """Add a console user and return an API token of theirs (``carebroker users token``)."""
    accounts = Stores.over(Database(pool)).accounts
    await Users(accounts).add(name, role, None, "test")
    sessions = Sessions(accounts, idle_timeout_s=1800, lifetime_s=3600)
    async with accounts.transaction() as work:
        token, _ = await sessions.open(work, name, "api")
    return token


@pytest.fixture
async def sinks() -> AsyncIterator[tuple[MllpSink, MllpSink, FhirSink]]:
    async with partner_sinks() as running:
        yield running


async def start_pipeline(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    partners: Path,
    roles: tuple[str, ...] = ("relay", "router", "delivery", "console"),
) -> Pipeline:
    """Start the given roles against this test's database and topics."""
    chu, dupont, fhir = sinks
    settings = settings.model_copy(update={"config": partners})
    await kafka.ensure_topics(settings)
    producer = kafka.Producer(settings)
    await producer.start()
    readiness = Readiness("postgresql", "kafka")
    stores = Stores.over(
        Database(pool),
        topic_prefix=settings.kafka_topic_prefix,
        outbox_shards=settings.outbox_shards,
    )
    ctx = Context(
        settings=settings,
        stores=stores,
        directory=load_directory(partners),
        # The deployment's key, as `carebroker consent` reads it from the store.
        pseudonymizer=Pseudonymizer(
            await stores.secret("pseudonym_key", lambda: secrets.token_bytes(32))
        ),
        readiness=readiness,
        producer=producer,
        stop=asyncio.Event(),
    )
    sync = DirectorySync(ctx)
    await sync.start()
    services: list[RoleService] = [role_service(role) for role in roles]  # type: ignore[arg-type]
    # Concurrently: each consumer group takes a few seconds to form.
    await asyncio.gather(*(service.start(ctx) for service in services))
    app = create_app(readiness)
    mount(app, ctx)  # as `carebroker up`: the console's routes find the context there
    http = HttpServer(app, bind("127.0.0.1", 0))
    await http.start()
    pipeline = Pipeline(settings, ctx, pool, chu, dupont, fhir, http.port, partners, services)
    if "console" in roles:
        pipeline.api_token = await api_token(pool, "routing-tests", "operator")
    pipeline._cleanup = (sync, http, producer)  # type: ignore[attr-defined]
    # The consumer groups must have their partitions before messages flow.
    for service in services:
        dispatcher = getattr(service, "dispatcher", None)
        if dispatcher is not None:
            await wait_for(lambda d=dispatcher: bool(d.owned), timeout=30)
    return pipeline


async def stop_pipeline(pipeline: Pipeline) -> None:
    pipeline.ctx.stop.set()
    for service in reversed(pipeline.services):
        await service.stop()
    sync, http, producer = pipeline._cleanup  # type: ignore[attr-defined]
    await http.stop()
    await sync.stop()
    await producer.stop()


@pytest.fixture
def partners(tmp_path: Path, sinks: tuple[MllpSink, MllpSink, FhirSink]) -> Path:
    chu, dupont, fhir = sinks
    path = tmp_path / "partners.yaml"
    path.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
    return path


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool large enough for every role of a process (relay, router, delivery, sync, API)."""
    pool = await db.connect(database_url, 12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pipeline(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    partners: Path,
) -> AsyncIterator[Pipeline]:
    running = await start_pipeline(settings, pool, sinks, partners)
    try:
        yield running
    finally:
        await stop_pipeline(running)


@dataclass
class CommandResult:
    """What a ``carebroker`` command printed and returned."""

    status: int
    out: str
    err: str


async def carebroker(settings: Settings, *args: str) -> CommandResult:
    """Run the installed ``carebroker`` command against this test's database and topics.

    Asynchronously, so the partner sinks in this event loop keep answering meanwhile.
    """
    from tests.e2e.conftest import carebroker_command

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
    env["CAREBROKER_DATABASE_URL"] = settings.database_dsn() or ""
    env["CAREBROKER_KAFKA_TOPIC_PREFIX"] = settings.kafka_topic_prefix
    process = await asyncio.create_subprocess_exec(
        *carebroker_command(),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return CommandResult(process.returncode, out.decode(), err.decode())


async def ready_heads(
    pool: asyncpg.Pool,
    partitions: list[int],
    busy_lanes: list[str],
    open_circuits: list[str],
    limit: int,
) -> list[Head]:
    """What an exhaustive dispatch pass would attempt now: ready heads, oldest first."""
    async with PgRoutingStore(pool).connection() as work:
        heads = await work.deliveries.scan_heads(partitions, busy_lanes, open_circuits, 20000)
        return await work.deliveries.load_heads([h.id for h in heads if h.wait_s == 0][:limit])
