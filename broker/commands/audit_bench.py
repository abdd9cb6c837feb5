"""``carebroker audit bench``: how fast the audit trail records, chains and verifies.

Runs in a scratch database created next to the configured one (and dropped
after), so no benchmark event ever enters a real audit trail. Each figure is
given with a baseline measured in the same run on the same server, so the
ratio is what to compare across machines:

- ``record``: events queued by ``broker.store.events.record`` in the callers'
  transactions (the hot-path cost), against a plain multi-row INSERT of the
  same JSON into an unindexed table;
- ``chain``: events moved by the audit writer (hash chain, heads, counters,
  delete), against moving the same rows without chaining
  (INSERT ... SELECT then DELETE, same batch size);
- ``verify``: events walked and re-hashed by ``audit verify``, against a
  plain ordered read of the same rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from broker.events import AuditEvent
from broker.ids import new_id
from broker.settings import Settings
from broker.store.seed import scratch_database
from broker.store.stores import Stores


@dataclass(frozen=True)
class Figure:
    """One measured rate, with its baseline from the same run."""

    name: str
    events: int
    seconds: float
    baseline_seconds: float
    baseline: str

    def line(self) -> str:
        """Return the figure as one human line."""
        rate = self.events / self.seconds
        base = self.events / self.baseline_seconds
        return (
            f"{self.name}: {rate:,.0f} events/s ({self.events} in {self.seconds:.2f} s); "
            f"baseline {self.baseline}: {base:,.0f} events/s; ratio {rate / base:.2f}"
        )


def _events(count: int) -> list[AuditEvent]:
    message_id = new_id()
    return [
        AuditEvent(
            kind="delivered" if i % 3 else "received",
            actor="delivery",
            message_id=message_id if i % 7 else new_id(),
            control_id=f"C{i}",
            partner="labo-sud",
            recipient="cabinet-dupont",
            rule="ordering-provider",
            detail={"message_type": "ORU^R01", "ack_code": "AA"},
        )
        for i in range(count)
    ]


async def run(admin_dsn: str, events: int = 20_000, batch: int = 500) -> list[Figure]:
    """Measure in a scratch database on the server of ``admin_dsn``; drop it afterwards."""
    async with (
        scratch_database(admin_dsn, "cbbench") as dsn,
        Stores.open(dsn, Settings(database_url=dsn), size=4) as stores,
    ):
        await stores.migrate()
        await stores.partitions.ensure()
        return await _measure(stores, _events(events), batch)


async def _measure(stores: Stores, events: list[AuditEvent], batch: int) -> list[Figure]:
    bench = stores.bench()
    baselines = await bench.audit_baselines(events, batch)
    plain_insert, recorded = baselines["plain_insert"], baselines["record"]
    plain_move = baselines["plain_move"]
    start = time.perf_counter()
    chained = await stores.audit.writer(batch=1000).drain_all()
    chaining = time.perf_counter() - start

    start = time.perf_counter()
    await bench.read_audit()
    plain_read = time.perf_counter() - start
    start = time.perf_counter()
    verified = await stores.audit.verify()
    verifying = time.perf_counter() - start
    if not verified.intact or verified.events != len(events) or chained != len(events):
        raise RuntimeError(f"benchmark chain is wrong: {verified.broken}")
    n = len(events)
    return [
        Figure("record", n, recorded, plain_insert, "plain INSERT of the same JSON"),
        Figure("chain", n, chaining, plain_move, "moving the rows without chaining"),
        Figure("verify", n, verifying, plain_read, "plain ordered read"),
    ]
