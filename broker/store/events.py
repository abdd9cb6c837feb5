"""Record audit events in the caller's transaction (design invariant 5).

An event recorded here commits or rolls back with the state change it
describes, so the audit trail can never miss a hop that happened nor list one
that did not. The audit writer drains ``audit_pending`` into the hash-chained
audit table off the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from broker.events import AuditEvent


async def record(conn: asyncpg.Connection, events: Sequence[AuditEvent]) -> None:
    """Queue audit events in the caller's transaction."""
    if not events:
        return
    await conn.execute(
        "INSERT INTO audit_pending (event) SELECT e::jsonb FROM unnest($1::text[]) AS e",
        [e.model_dump_json() for e in events],
    )
