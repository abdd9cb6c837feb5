"""Every store of one process, over its PostgreSQL connections: what ``Context`` hands out.

Roles, the console and commands reach PostgreSQL only through these stores
(one concern each, in ``broker/store/``); none of them sees a pool or a
connection. Ingress's store (:class:`MessageStore`) uses the connections
reserved for ingress (``Database.ingress``); every other store shares the
general pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from broker.settings import Settings
from broker.store import db
from broker.store.accounts import AccountStore
from broker.store.alerts import AlertStore
from broker.store.audit import AuditStore
from broker.store.consent import ConsentStore
from broker.store.console import ConsoleStore
from broker.store.db import Database
from broker.store.directory import DirectoryStore
from broker.store.feed import FeedStore
from broker.store.files import FileStore
from broker.store.messages import MessageStore
from broker.store.metrics import MetricsStore
from broker.store.migrate import migrate
from broker.store.mssante import MssanteStore
from broker.store.outbox import OutboxStore
from broker.store.partitions import PartitionStore
from broker.store.refusals import RefusalStore
from broker.store.routing import PgRoutingStore
from broker.store.seed import BenchStore
from broker.store.throttle import ThrottleStore


@dataclass
class Stores:
    """The stores of one process."""

    database: Database
    messages: MessageStore
    routing: PgRoutingStore
    outbox: OutboxStore
    audit: AuditStore
    directory: DirectoryStore
    consent: ConsentStore
    console: ConsoleStore
    accounts: AccountStore
    alerts: AlertStore
    metrics: MetricsStore
    partitions: PartitionStore
    feed: FeedStore
    throttle: ThrottleStore
    refusals: RefusalStore
    mssante: MssanteStore
    files: FileStore

    @classmethod
    def over(cls, database: Database, *, topic_prefix: str = "", outbox_shards: int = 8) -> Stores:
        """Return the stores over ``database`` (ingress's store on its reserved pool)."""
        general = database.general
        return cls(
            database=database,
            messages=MessageStore(
                database.ingress, topic_prefix=topic_prefix, outbox_shards=outbox_shards
            ),
            routing=PgRoutingStore(general, outbox_shards=outbox_shards),
            outbox=OutboxStore(general, outbox_shards),
            audit=AuditStore(general),
            directory=DirectoryStore(general),
            consent=ConsentStore(general),
            console=ConsoleStore(general),
            accounts=AccountStore(general),
            alerts=AlertStore(general),
            metrics=MetricsStore(general),
            partitions=PartitionStore(database.upkeep),
            throttle=ThrottleStore(general),
            refusals=RefusalStore(general),
            mssante=MssanteStore(general, outbox_shards=outbox_shards),
            files=FileStore(general),
            feed=FeedStore(general),
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls, dsn: str, settings: Settings, *, size: int | None = None, ingress: bool = False
    ) -> AsyncIterator[Stores]:
        """Open a database (``size`` connections, else the configured pool size) and its stores.

        ``ingress``: also open the connections reserved for MLLP and FHIR
        ingress (``database_ingress_pool_size``). Closed on exit.
        """
        database = await Database.open(
            dsn,
            size or settings.database_pool_size,
            settings.database_ingress_pool_size if ingress else 0,
        )
        try:
            yield cls.over(
                database,
                topic_prefix=settings.kafka_topic_prefix,
                outbox_shards=settings.outbox_shards,
            )
        finally:
            await database.close()

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        return await migrate(self.database.upkeep)

    async def ping(self, timeout: float = 2.0) -> bool:
        """Tell whether PostgreSQL answers within ``timeout`` seconds."""
        return await db.ping(self.database.general, timeout)

    def bench(self) -> BenchStore:
        """Return the benches' and tests' store (synthetic data, figures): never in a role."""
        return BenchStore(self.database.general)

    async def secret(self, name: str, generate: Callable[[], bytes]) -> bytes:
        """Return a broker-generated secret, creating it once (race-free across instances)."""
        return await db.fetch_secret(self.database.general, name, generate)


__all__ = ["Stores"]
