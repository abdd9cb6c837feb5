"""Units of work: one transaction (or one connection) whose parts share it.

A store whose callers make several changes that must commit together (a
change and its audit event, a batch of routing decisions) derives from
:class:`UnitStore` and names the unit it hands out; the unit's parts, one per
table family, are built on the same connection::

    async with stores.console.transaction() as work:
        row = await work.pauses.add(partner, reason, actor)
        await work.audit.record([event])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from broker.events import AuditEvent
from broker.store import events
from broker.store.db import Connection, Pool, connection, transaction

W = TypeVar("W")


class AuditPart:
    """Audit events, recorded in the unit of work's transaction (design invariant 5)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def record(self, recorded: Sequence[AuditEvent]) -> None:
        """Record these events with the change they describe."""
        await events.record(self.conn, recorded)


class UnitStore(Generic[W]):
    """A store on a pool that hands out units of work of type ``W``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def unit(self, conn: Connection) -> W:
        """Return the unit of work on ``conn`` (each store names its own)."""
        raise NotImplementedError

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[W]:
        """Yield a unit of work in one transaction: committed on exit, rolled back on error."""
        async with transaction(self.pool) as conn:
            yield self.unit(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[W]:
        """Yield a unit of work on one connection, without a transaction (reads)."""
        async with connection(self.pool) as conn:
            yield self.unit(conn)
