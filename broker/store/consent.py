"""Patient oppositions to sharing (``consent_oppositions``), as operators file and withdraw them.

Routing and replay read oppositions through the routing store
(``broker.store.work.ConsentView``); this store is the operators' side
(``carebroker consent``). Identifiers are never stored: only their digest.
Each change is audited in its transaction (``consent_changed``, and
``blocked`` for every pending delivery the opposition stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.events import AuditEvent
from broker.store import events
from broker.store.db import Pool, connection, transaction


@dataclass(frozen=True)
class Opposition:
    """One opposition as operators see it: the digest (not the identifier) and who filed it."""

    digest: str
    authority: str
    id_type: str
    note: str
    created_by: str
    created_at: datetime


class ConsentStore:
    """File, withdraw and list patient oppositions."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def add(
        self,
        digest: str,
        *,
        authority: str,
        id_type: str,
        note: str,
        actor: str,
        blocked_reason: str,
    ) -> int:
        """File an opposition and block the patient's pending deliveries; return how many."""
        async with transaction(self.pool) as conn:
            created = await conn.fetchval(
                "INSERT INTO consent_oppositions (digest, authority, id_type, note, created_by)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING RETURNING true",
                digest,
                authority,
                id_type,
                note,
                actor,
            )
            blocked = await conn.fetch(
                "UPDATE deliveries d SET status = 'blocked', last_error = $2, payload = NULL,"
                " updated_at = now()"
                " FROM messages m WHERE m.id = d.message_id"
                " AND m.received_at = d.message_received_at"
                " AND m.patient_digests @> ARRAY[$1::text] AND d.status = 'pending'"
                " RETURNING d.message_id, d.recipient",
                digest,
                blocked_reason,
            )
            await events.record(
                conn,
                [
                    AuditEvent(
                        kind="consent_changed",
                        actor=actor,
                        detail={
                            "action": "opposition_added" if created else "opposition_exists",
                            "patient": digest,
                            "authority": authority,
                            "blocked_deliveries": len(blocked),
                        },
                    ),
                    *(
                        AuditEvent(
                            kind="blocked",
                            actor=actor,
                            outcome="minor_failure",
                            message_id=r["message_id"],
                            recipient=r["recipient"],
                            detail={"reason": blocked_reason, "patient": digest},
                        )
                        for r in blocked
                    ),
                ],
            )
        return len(blocked)

    async def remove(self, digest: str, *, authority: str, actor: str) -> bool:
        """Withdraw an opposition; return whether there was one."""
        async with transaction(self.pool) as conn:
            removed = await conn.fetchval(
                "DELETE FROM consent_oppositions WHERE digest = $1 RETURNING true", digest
            )
            if removed:
                await events.record(
                    conn,
                    [
                        AuditEvent(
                            kind="consent_changed",
                            actor=actor,
                            detail={
                                "action": "opposition_removed",
                                "patient": digest,
                                "authority": authority,
                            },
                        )
                    ],
                )
        return bool(removed)

    async def list(self) -> list[Opposition]:
        """Return every opposition on file, newest first."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                "SELECT digest, authority, id_type, note, created_by, created_at"
                " FROM consent_oppositions ORDER BY created_at DESC"
            )
        return [Opposition(**dict(r)) for r in rows]
