"""The feed role's PostgreSQL side: oppositions it honours, what it audits.

The feed publishes accepted messages on the FHIR feeds (``routing/feed.py``);
here are its reads of ``consent_oppositions`` (by patient digest, as the
router reads them), its audit events (``published``, ``withheld``) and the
consumer groups' read positions it audits (``feed_read_offsets``,
``feed_read`` events), each in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from broker.events import AuditEvent
from broker.store import events
from broker.store.db import Pool, connection, transaction


class FeedStore:
    """Oppositions, audit events and audited read positions of the FHIR feeds."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def opposed(self, digests: Iterable[str]) -> set[str]:
        """Return which of these patient digests have an opposition on file."""
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT digest FROM consent_oppositions WHERE digest = ANY($1::text[])", wanted
            )
        return {r["digest"] for r in rows}

    async def record(self, audited: Sequence[AuditEvent]) -> None:
        """Record the audit events of one published batch."""
        if not audited:
            return
        async with transaction(self.pool) as conn:
            await events.record(conn, audited)

    async def note_read(
        self, group: str, topic: str, committed: Mapping[int, int], *, actor: str
    ) -> dict[int, tuple[int, int]]:
        """Audit how far ``group`` has read ``topic`` since last time; return the advances.

        ``committed`` is the group's committed offset per partition, as Kafka
        has it now. Partitions that moved get one ``feed_read`` event naming
        (from, to) each, recorded with the new positions in one transaction;
        instances auditing the same group at once take turns (an advisory
        lock), so an advance is audited once.
        """
        async with transaction(self.pool) as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 780))", f"{group}\x1f{topic}"
            )
            rows = await conn.fetch(
                "SELECT partition, committed FROM feed_read_offsets"
                " WHERE group_id = $1 AND topic = $2",
                group,
                topic,
            )
            before = {r["partition"]: r["committed"] for r in rows}
            advanced = {
                p: (before.get(p, 0), offset)
                for p, offset in sorted(committed.items())
                if offset > before.get(p, 0)
            }
            if not advanced:
                return {}
            await conn.executemany(
                "INSERT INTO feed_read_offsets (group_id, topic, partition, committed)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition)"
                " DO UPDATE SET committed = EXCLUDED.committed, audited_at = now()",
                [(group, topic, p, to) for p, (_, to) in advanced.items()],
            )
            await events.record(
                conn,
                [
                    AuditEvent(
                        kind="feed_read",
                        actor=actor,
                        detail={
                            "group": group,
                            "topic": topic,
                            "read": {str(p): [lo, hi] for p, (lo, hi) in advanced.items()},
                            "records": sum(hi - lo for lo, hi in advanced.values()),
                        },
                    )
                ],
            )
        return advanced
