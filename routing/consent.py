"""Patient opposition to sharing: deliveries about these patients are blocked, never sent.

French law lets a patient object to their data being shared (CSP L1110-4;
domain-requirements §3.6, §4.4). carebroker keeps a table of oppositions,
managed with ``carebroker consent add/remove/list``. An opposition names one
patient identifier (assigning authority + value, as PID-3 carries it); the
value is stored only as its pseudonymous digest, the same digest the
envelope carries, so the router can match without any identifier in clear.

- The router checks every message's patient digests against the table:
  deliveries for an opposed patient are created ``blocked`` (no payload) and
  audited (``blocked``), the message's status is ``blocked``.
- Adding an opposition also blocks that patient's deliveries still pending.
- Removing one does not release anything already blocked: an operator
  decides with ``carebroker replay --message ID``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from broker.events import AuditEvent
from broker.pseudonym import Pseudonymizer
from broker.store import events
from broker.store.db import transaction

BLOCKED_REASON = "patient opposition on file"


@dataclass(frozen=True)
class Opposition:
    """One opposition as operators see it: the digest (not the identifier) and who filed it."""

    digest: str
    authority: str
    id_type: str
    note: str
    created_by: str
    created_at: datetime


async def opposed(conn: asyncpg.Connection, digests: Iterable[str]) -> set[str]:
    """Return which of these patient digests have an opposition on file."""
    wanted = list(set(digests))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT digest FROM consent_oppositions WHERE digest = ANY($1::text[])", wanted
    )
    return {r["digest"] for r in rows}


async def add(
    pool: asyncpg.Pool,
    pseudonymizer: Pseudonymizer,
    *,
    authority: str,
    value: str,
    id_type: str = "",
    note: str = "",
    actor: str,
) -> tuple[str, int]:
    """File an opposition; block the patient's pending deliveries; return (digest, blocked)."""
    digest = pseudonymizer.digest(authority, value)
    async with transaction(pool) as conn:
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
            " FROM messages m WHERE m.id = d.message_id AND m.received_at = d.message_received_at"
            " AND m.patient_digests @> ARRAY[$1::text] AND d.status = 'pending'"
            " RETURNING d.message_id, d.recipient",
            digest,
            BLOCKED_REASON,
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
                        detail={"reason": BLOCKED_REASON, "patient": digest},
                    )
                    for r in blocked
                ),
            ],
        )
    return digest, len(blocked)


async def remove(
    pool: asyncpg.Pool, pseudonymizer: Pseudonymizer, *, authority: str, value: str, actor: str
) -> bool:
    """Withdraw an opposition; return whether there was one. Blocked deliveries stay blocked."""
    digest = pseudonymizer.digest(authority, value)
    async with transaction(pool) as conn:
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


async def list_oppositions(pool: asyncpg.Pool) -> list[Opposition]:
    """Return every opposition on file, newest first."""
    rows = await pool.fetch(
        "SELECT digest, authority, id_type, note, created_by, created_at"
        " FROM consent_oppositions ORDER BY created_at DESC"
    )
    return [Opposition(**dict(r)) for r in rows]
