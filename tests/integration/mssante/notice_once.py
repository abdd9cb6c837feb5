"""Read the mailbox's notices once, as the delivery role's reader does; maybe die on the way.

Run by the SIGKILL test as a separate process (``python -m
tests.integration.mssante.notice_once PARTITIONS [KILL_AT]``), settings from
the ``CAREBROKER_*`` environment. ``KILL_AT``:

- ``commit``: SIGKILL inside the transaction that records the notice, before
  it commits (after the notice was read from the server);
- ``flag``: SIGKILL after the commit, before the mail is marked on the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from types import SimpleNamespace
from typing import Any

from adapters.mssante.imap import ImapMailbox
from broker import topics
from broker.directory import load_directory
from broker.settings import Settings
from broker.store import db
from broker.store.mssante import MssanteStore
from broker.store.unit import AuditPart
from routing import app_ack, notices


def die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(partitions: int, kill_at: str | None) -> None:
    settings = Settings.from_environment()
    assert settings.config is not None
    pool = await db.connect(settings.database_dsn() or "", 2)
    ctx: Any = SimpleNamespace(directory=load_directory(settings.config), settings=settings)
    acks = app_ack.Lanes(topics.DELIVERIES.full_name(settings.kafka_topic_prefix), partitions)
    store = MssanteStore(pool, outbox_shards=settings.outbox_shards)
    reader = notices.NoticeReader(ctx, acks, store)
    mailbox = ImapMailbox(settings.mssante)
    await mailbox.connect()
    if kill_at == "commit":
        record = AuditPart.record

        async def record_then_die(part: AuditPart, produced: Any) -> None:
            await record(part, produced)
            die()  # inside the transaction: the notice was read, nothing is committed

        AuditPart.record = record_then_die  # type: ignore[method-assign]
    elif kill_at == "flag":
        mailbox.flag = die  # type: ignore[method-assign, assignment]
    done = await reader.read_once(mailbox)
    print(f"notices applied: {done}")
    await mailbox.close()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
