"""Retention: drop whole daily partitions once they are older than each kind of data may live.

Three kinds, each with its own setting (``retention_*_days``), so original
bytes can go long before the audit trail that proves what happened to them
(domain-requirements §4.3: payloads under a short policy, audit trails kept
6 months to 1 year, 1 year by default):

- ``payloads``: the original bytes (``payloads``), 30 days by default;
- ``messages``: message metadata (``messages``), 180 days by default;
- ``audit``: the hash-chained audit trail (``audit``), 365 days by default.

Dropping a partition is one catalog change, not millions of row deletes, so
it frees the space at once and leaves no bloat (peer-systems §4.5: pruning
that does not reclaim space). A day is dropped only when all of it is older
than the limit. The audit trail's chain is per day, so what remains still
verifies (``broker.store.audit.verify`` starts from the oldest day left).
Dropping needs the table owner's rights (the role that runs migrations), not
the application role's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from broker.settings import Settings
from broker.store.partitions import PartitionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """How long one kind of data is kept, and in which partitioned table."""

    kind: str
    table: str
    days: int

    def cutoff(self, today: date) -> date:
        """Return the first day kept: partitions of earlier days go."""
        return today - timedelta(days=self.days)


def policies(settings: Settings) -> list[Policy]:
    """Return the retention policy of each kind of data."""
    return [
        Policy("payloads", "payloads", settings.retention_payload_days),
        Policy("messages", "messages", settings.retention_message_days),
        Policy("audit", "audit", settings.retention_audit_days),
    ]


async def apply(
    store: PartitionStore,
    settings: Settings,
    *,
    today: date | None = None,
    dry_run: bool = False,
) -> dict[str, list[str]]:
    """Drop (or with ``dry_run`` only list) the expired partitions; return them per kind."""
    today = today or datetime.now(UTC).date()
    result: dict[str, list[str]] = {}
    for policy in policies(settings):
        cutoff = policy.cutoff(today)
        if dry_run:
            result[policy.kind] = await store.before(policy.table, cutoff)
        else:
            result[policy.kind] = await store.drop_before(policy.table, cutoff)
            if result[policy.kind]:
                log.info(
                    "retention applied",
                    extra={"kind": policy.kind, "dropped": len(result[policy.kind])},
                )
    return result
