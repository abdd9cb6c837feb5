"""Helpers for the audit trail tests: events through the real store, the CLI as a user runs it."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime

import asyncpg

from broker.events import AuditEvent
from broker.ids import new_id_at
from broker.store.db import transaction
from broker.store.events import record
from broker.store.messages import Accepted, MessageStore, Rejected
from tests.e2e.conftest import carebroker_command
from tests.integration.test_store import envelope


async def accept(
    pool: asyncpg.Pool, *control_ids: str, sender: str = "labo-sud"
) -> list[uuid.UUID]:
    """Accept messages through the real MessageStore (which records `received`)."""
    envs = [envelope(c, sender=sender) for c in control_ids]
    await MessageStore(pool).accept([Accepted(e, b"ACK") for e in envs])
    return [e.message_id for e in envs]


async def reject(pool: asyncpg.Pool, reason: str = "MSH-9 missing") -> uuid.UUID:
    message_id, at = new_id_at()
    await MessageStore(pool).reject(
        [Rejected(message_id, at, "mllp", "hl7v2", b"garbage", reason, sender="labo-sud")]
    )
    return message_id


async def hops(pool: asyncpg.Pool, message_id: uuid.UUID, recipient: str) -> None:
    """Record routing and delivery events for one message and recipient (seed data).

    For counters, exports and the chain's mechanics. What the real router and
    delivery record for a message, hop by hop and in order, is checked end to
    end in ``tests/e2e/test_pipeline_run.py``.
    """
    async with transaction(pool) as conn:
        await record(
            conn,
            [
                AuditEvent(
                    kind="routed",
                    actor="router",
                    message_id=message_id,
                    recipient=recipient,
                    rule="ordering-provider",
                ),
                AuditEvent(
                    kind="delivery_attempted",
                    actor="delivery",
                    message_id=message_id,
                    recipient=recipient,
                ),
                AuditEvent(
                    kind="delivered",
                    actor="delivery",
                    message_id=message_id,
                    recipient=recipient,
                    detail={"ack_code": "AA"},
                ),
            ],
        )


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `carebroker` command against a test database."""
    return subprocess.run(
        [*carebroker_command(), *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=UTC)
