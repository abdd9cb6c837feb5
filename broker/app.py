"""Roles and the lifespan of one carebroker process.

A process runs one or more roles (``mllp``, ``fhir``, ``files``, ``relay``,
``router``, ``delivery``, ``audit``, ``console``, ``feed``) against one PostgreSQL and one Kafka:
``carebroker up`` runs them all with embedded defaults, ``carebroker run
--role R`` one of them for deployments that scale roles separately.

Start-up order is chosen so that every failure is a clear message and nothing
is left running: check the configuration, bind the ports, start (or reach)
PostgreSQL and Kafka, migrate, create topics, then start the roles. Shutdown
runs the other way round within 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI

from adapters.hl7v2.role import MllpRole, sender_check
from broker import alerts, kafka, metrics, telemetry
from broker.audit_role import AuditRole
from broker.context import Context, RoleService, TaskRole
from broker.directory import Directory, load_directory
from broker.directory_sync import DirectorySync
from broker.errors import (
    BrokerError,
    ConfigError,
    StartupError,
    StoreRefusedError,
    StoreUnavailableError,
)
from broker.health import Readiness
from broker.http import HttpServer, bind, body_limits, create_app, http_limits
from broker.local import PG_APP_ROLE, EmbeddedPostgres, LocalKafka
from broker.ops_access import METRICS_LISTENER
from broker.pseudonym import Pseudonymizer
from broker.relay import Relay, republish_unrouted
from broker.settings import ROLES, Role, Settings
from broker.store import db
from broker.store.db import Database
from broker.store.stores import Stores
from broker.strangers import StrangerRecorder

log = logging.getLogger(__name__)

# Roles whose store writes get the connections reserved for ingress.
INGRESS_ROLES = frozenset({"mllp", "fhir"})

Announce = Callable[[str], None]


class RelayRole(TaskRole):
    """Publish the outbox to Kafka."""

    name = "relay"

    async def run(self, ctx: Context) -> None:
        if ctx.kafka_is_ephemeral:
            # The local broker kept nothing: whatever was accepted but not yet
            # routed when carebroker stopped must be published again.
            count = await republish_unrouted(ctx.stores.outbox, ctx.settings.kafka_topic_prefix)
            if count:
                log.info("republished unrouted messages", extra={"count": count})
        await Relay(ctx.stores.outbox, ctx.producer).run(ctx.stop)


class ShellRole(TaskRole):
    """A role whose work lands with its issue; it starts and stops like a real one."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class FhirRole(TaskRole):
    """Serve the FHIR gateway (``/fhir``) on the process's HTTP listener.

    Its task writes the strangers' refusals the gateway counts (broker/strangers.py).
    """

    name = "fhir"

    async def start(self, ctx: Context) -> None:
        from adapters.fhir.gateway import Gateway, create_router

        fhir = ctx.settings.fhir
        self.strangers = StrangerRecorder(ctx.stores.refusals)
        ctx.routers.append(
            create_router(
                Gateway(
                    store=ctx.stores.messages,
                    directory=lambda: ctx.directory,
                    pseudonymizer=ctx.pseudonymizer,
                    max_body_bytes=ctx.settings.http_max_body_bytes,
                    cert_header=fhir.client_cert_header,
                    base_url=fhir.base_url,
                    strangers=self.strangers,
                )
            )
        )
        await super().start(ctx)

    async def run(self, ctx: Context) -> None:
        await self.strangers.run(ctx.stop)

    def endpoints(self) -> list[str]:
        return ["fhir: /fhir on the HTTP listener (FHIR R4 $process-message, REST create)"]


def role_service(role: Role) -> RoleService:
    """Return the service implementing ``role``."""
    from adapters.files.role import FilesRole
    from broker.console.role import ConsoleRole
    from routing.feed import FeedRole
    from routing.roles import DeliveryRole, RouterRole

    factories: dict[str, Callable[[], RoleService]] = {
        "audit": AuditRole,
        "relay": RelayRole,
        "mllp": MllpRole,
        "router": RouterRole,
        "delivery": DeliveryRole,
        "console": ConsoleRole,
        "fhir": FhirRole,
        "feed": FeedRole,
        "files": FilesRole,
    }
    factory = factories.get(role)
    return factory() if factory else ShellRole(role)


async def serve(
    settings: Settings,
    roles: Sequence[Role],
    *,
    local: bool,
    announce: Announce,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run the given roles until SIGINT/SIGTERM; ``local`` allows embedded PostgreSQL/Kafka."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cleanup: list[Callable[[], object]] = []
    try:
        await _serve(
            settings, roles, local=local, announce=announce, stop=stop, cleanup=cleanup, ready=ready
        )
    finally:
        for undo in reversed(cleanup):
            try:
                result = undo()
                if asyncio.iscoroutine(result):
                    async with asyncio.timeout(8):
                        await result
            except (BrokerError, OSError, TimeoutError):
                log.exception("shutdown step failed")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def _serve(
    settings: Settings,
    roles: Sequence[Role],
    *,
    local: bool,
    announce: Announce,
    stop: asyncio.Event,
    cleanup: list[Callable[[], object]],
    ready: Callable[[], None] | None,
) -> None:
    directory = load_directory(settings.config) if settings.config else Directory.empty()
    dsn = settings.database_dsn()
    if dsn is None and not local:
        raise ConfigError(
            "CAREBROKER_DATABASE_URL is not set (`run` needs a PostgreSQL; "
            "`carebroker up` starts an embedded one)"
        )
    if settings.kafka_bootstrap_servers is None and not local:
        raise ConfigError(
            "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS is not set (`run` needs Kafka; "
            "`carebroker up` starts a local broker)"
        )
    if dsn is None:
        _check_writable(settings.data_dir)
    if "mllp" in roles:
        from broker.local import check_port_free

        sender_check(settings.mllp, directory)  # early, on the file; the role checks its own
        check_port_free(settings.mllp.host, settings.mllp.port, "MLLP")

    readiness = Readiness("postgresql", "kafka", *roles)
    telemetry.configure(settings)
    cleanup.append(telemetry.shutdown)
    http_sock = bind(settings.http_host, settings.http_port)
    routers: list[APIRouter] = []
    app = create_app(readiness)
    http = HttpServer(app, http_sock, http_limits(settings), body_limits(settings))
    await http.start()
    cleanup.append(http.stop)
    # With port 0 the kernel chose: roles that print or publish their URL see the real one.
    settings = settings.model_copy(update={"http_port": http.port})
    announce(f"http: http://{settings.http_host}:{http.port} (health: /healthz)")
    operations: FastAPI | None = None
    if settings.metrics_port is not None:
        operations = create_app(readiness)
        setattr(operations.state, METRICS_LISTENER, True)
        listener = HttpServer(
            operations,
            bind(settings.metrics_host, settings.metrics_port, "metrics"),
            http_limits(settings),
            body_limits(settings),
        )
        await listener.start()
        cleanup.append(listener.stop)
        settings = settings.model_copy(update={"metrics_port": listener.port})
        announce(
            f"metrics: http://{settings.metrics_host}:{listener.port}/metrics "
            "(and /api/alerts, /healthz)"
        )

    owner_dsn = None  # the embedded server: migrations and upkeep as its owner
    if dsn is None:
        pg = EmbeddedPostgres(settings.data_dir)
        cleanup.append(pg.stop)
        await pg.start()
        dsn, owner_dsn = pg.app_dsn, pg.owner_dsn
        announce(
            f"database: embedded PostgreSQL at {db.describe_dsn(dsn)} (data in {pg.pgdata}; "
            f"password auth, roles run as {PG_APP_ROLE})"
        )
    else:
        announce(f"database: PostgreSQL at {db.describe_dsn(dsn)}")
    ephemeral = False
    if settings.kafka_bootstrap_servers is None:
        broker_process = LocalKafka()
        cleanup.append(broker_process.stop)
        await broker_process.start()
        # tansu holds a fetch for its whole wait even when records arrive: keep
        # it short, or every hop of a message waits for it.
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": broker_process.bootstrap,
                "kafka_fetch_max_wait_ms": min(settings.kafka_fetch_max_wait_ms, 10),
            }
        )
        ephemeral = True
        announce(f"kafka: local broker (tansu, in memory) at {broker_process.bootstrap}")
    else:
        announce(f"kafka: {settings.kafka_bootstrap_servers}")

    stores = await open_stores(settings, dsn, roles, owner_dsn)
    cleanup.append(stores.database.close)
    await stores.migrate()
    await stores.partitions.ensure()
    readiness.set("postgresql", True)
    await kafka.ensure_topics(settings)
    producer = kafka.Producer(settings)
    await producer.start()
    cleanup.append(producer.stop)
    readiness.set("kafka", True)

    key = (
        settings.pseudonym_key.get_secret_value().encode()
        if settings.pseudonym_key
        else await stores.secret("pseudonym_key", lambda: secrets.token_bytes(32))
    )
    ctx = Context(
        settings=settings,
        stores=stores,
        directory=directory,
        pseudonymizer=Pseudonymizer(key),
        readiness=readiness,
        producer=producer,
        stop=stop,
        kafka_is_ephemeral=ephemeral,
        routers=routers,
    )
    sync = ctx.directory_sync = DirectorySync(ctx)
    await sync.start()
    cleanup.append(sync.stop)
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_on_hup, sync)

    services = [role_service(role) for role in roles]
    for service in services:
        await service.start(ctx)
        cleanup.append(service.stop)
        readiness.set(service.name, True)
        for line in service.endpoints():
            announce(line)
    mount(app, ctx, operations=operations is None)
    if operations is not None:
        mount(operations, ctx, roles=False)
    monitor = asyncio.create_task(_monitor(ctx))
    cleanup.append(monitor.cancel)
    partners = len(ctx.directory.partners)
    announce(
        f"ready: roles {', '.join(roles)}; {partners} partner(s)"
        f"{f' from {settings.config}' if settings.config else ''}; Ctrl-C stops"
    )
    if ready:
        ready()
    await stop.wait()
    announce("stopping: finishing in-flight work")


async def open_stores(
    settings: Settings, dsn: str, roles: Sequence[Role], owner_dsn: str | None = None
) -> Stores:
    """Open the process's PostgreSQL connections and its stores.

    The general pool (``database_pool_size``) serves every role; when the
    process runs ``mllp`` or ``fhir``, ingress gets ``database_ingress_pool_size``
    connections of its own, opened now, so that no console, API, router or
    delivery load can keep a sender waiting for its ACK. With ``owner_dsn``
    (the embedded PostgreSQL, where the roles run as ``carebroker_app``),
    migrations, partitions and retention use the schema owner's connections.
    """
    ingress = settings.database_ingress_pool_size if INGRESS_ROLES & set(roles) else 0
    database = await Database.open(dsn, settings.database_pool_size, ingress, owner_dsn)
    return Stores.over(
        database, topic_prefix=settings.kafka_topic_prefix, outbox_shards=settings.outbox_shards
    )


def mount(app: FastAPI, ctx: Context, *, roles: bool = True, operations: bool = True) -> None:
    """Serve the routes the roles added in ``start``, and /metrics and /api/alerts.

    Called once the roles have started: ``create_app`` runs before them (the
    port is bound first), so their routers are included here. Every process
    serves /metrics and /api/alerts whatever its roles: both read the shared
    state (PostgreSQL, Kafka), so any instance answers for the deployment.
    With a metrics listener (``CAREBROKER_METRICS_PORT``) they are mounted on
    its app only (``roles=False``), and not on the main one (``operations=False``);
    who may read them: :mod:`broker.ops_access`. Route handlers find the
    context at ``app.state.context``.
    """
    app.state.context = ctx
    app.state.lag_probe = metrics.LagProbe(ctx.settings)
    app.state.started = datetime.now(UTC)
    routers = [*(ctx.routers if roles else ()), *(metrics.ROUTERS if operations else ())]
    for router in (*routers, *(alerts.ROUTERS if operations else ())):
        app.include_router(router)


def _reload_on_hup(sync: DirectorySync) -> None:
    async def reload() -> None:
        try:
            stored = await sync.reload_file(actor="signal:SIGHUP")
            log.info("partner directory reloaded", extra={"changed": stored is not None})
        except ConfigError as exc:
            log.error("partner directory not reloaded: %s", exc)  # noqa: TRY400 - clear, no trace
        except StoreUnavailableError:
            log.error("partner directory not reloaded: message store unavailable")  # noqa: TRY400

    _pending_reloads.add(task := asyncio.get_running_loop().create_task(reload()))
    task.add_done_callback(_pending_reloads.discard)


_pending_reloads: set[asyncio.Task[None]] = set()


async def _monitor(ctx: Context) -> None:
    """Keep readiness true to what PostgreSQL and Kafka answer; keep partitions ahead."""
    tick = 0
    while True:
        await asyncio.sleep(2.0)
        ctx.readiness.set("postgresql", await ctx.stores.ping())
        ctx.readiness.set("kafka", await ctx.producer.is_ready())
        tick += 1
        if tick % 1800 == 0:
            with contextlib.suppress(StoreUnavailableError, StoreRefusedError):
                await ctx.stores.partitions.ensure()


def _check_writable(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data dir {data_dir} is not writable "
            f"({exc.strerror or exc.__class__.__name__}): "
            "choose another with --data-dir"
        ) from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StartupError(f"data dir {data_dir} is not writable: choose another with --data-dir")


__all__ = ["ROLES", "mount", "open_stores", "role_service", "serve"]
