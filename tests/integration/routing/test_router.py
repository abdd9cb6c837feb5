"""The router's transaction on a real PostgreSQL: idempotent under redelivery, lanes placed."""

from __future__ import annotations

import asyncpg
import pytest

from broker import telemetry
from broker.directory import load_directory
from broker.store.messages import Accepted, MessageStore
from broker.store.routing import PgRoutingStore
from routing.router import Router, lane_of, partition_of
from tests.messages import DATA, ORU, REF, envelope, variant


async def test_a_redelivered_batch_changes_nothing(pool: asyncpg.Pool) -> None:
    directory = load_directory(DATA / "partners.yaml")
    router = Router(
        PgRoutingStore(pool, outbox_shards=2), directory, topic_prefix="t.", partitions=4
    )
    envs = [envelope(variant(ORU, "R-1", "PA")), envelope(REF, "cabinet-dupont")]
    await MessageStore(pool, topic_prefix="t.").accept([Accepted(e, b"A") for e in envs])
    await pool.execute("DELETE FROM outbox")

    first = await router.route([*envs, envs[0]])  # a batch may repeat a record
    assert (first.routed, first.deliveries, first.skipped) == (2, 3, 0)
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM deliveries) AS d, (SELECT count(*) FROM outbox) AS o,"
        " (SELECT count(*) FROM audit_pending) AS a"
    )
    again = await router.route(envs)  # Kafka redelivers after a crash before the commit
    assert (again.routed, again.deliveries, again.skipped) == (0, 0, 2)
    assert (
        await pool.fetchrow(
            "SELECT (SELECT count(*) FROM deliveries) AS d, (SELECT count(*) FROM outbox) AS o,"
            " (SELECT count(*) FROM audit_pending) AS a"
        )
        == counts
    )

    dupont = directory.partners["cabinet-dupont"]
    row = await pool.fetchrow(
        "SELECT lane, partition, control_id, content_type FROM deliveries"
        " WHERE message_id = $1 AND recipient = 'cabinet-dupont'",
        envs[0].message_id,
    )
    assert (
        row["lane"]
        == lane_of(dupont, envs[0].ordering_key)
        == f"cabinet-dupont/{envs[0].ordering_key}"
    )
    assert row["partition"] == partition_of(row["lane"], 4)
    assert row["control_id"] == "R-1"
    outbox = await pool.fetch("SELECT topic, key, partition FROM outbox ORDER BY id")
    assert {r["topic"] for r in outbox} == {"t.care.deliveries.requested.v1"}
    assert all(r["partition"] == partition_of(r["key"].decode(), 4) for r in outbox)


@pytest.mark.parametrize("tracing", [False, True])
async def test_one_wake_up_per_partition_touched_however_many_deliveries(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, tracing: bool
) -> None:
    """The records only wake the owner of a partition: more for the same one are waste.

    With tracing on, each delivery keeps its record, so that its trace shows the hop.
    (Whether spans are collected is process-wide: another test may have installed
    a provider, so each case sets it.)
    """
    monkeypatch.setattr(telemetry, "is_recording", lambda: tracing)
    directory = load_directory(DATA / "partners.yaml")
    router = Router(
        PgRoutingStore(pool, outbox_shards=2), directory, topic_prefix="t.", partitions=4
    )
    envs = [envelope(variant(ORU, f"W-{n}", f"PAT-{n}")) for n in range(40)]
    await MessageStore(pool, topic_prefix="t.").accept([Accepted(e, b"A") for e in envs])
    await pool.execute("DELETE FROM outbox")

    stats = await router.route(envs)
    assert stats.deliveries == 80  # two recipients each
    touched = {
        r["partition"]
        for r in await pool.fetch(
            "SELECT DISTINCT partition FROM deliveries WHERE status = 'pending'"
        )
    }
    outbox = await pool.fetch("SELECT key, partition FROM outbox")
    if tracing:
        assert len(outbox) == 80
        return
    assert sorted(r["partition"] for r in outbox) == sorted(touched)
    assert len(touched) > 1  # 80 lanes over 4 partitions
    # Each record still names a real delivery of its partition (its lane is the key).
    lanes = {
        r["lane"]: r["partition"]
        for r in await pool.fetch("SELECT lane, partition FROM deliveries")
    }
    assert all(lanes[r["key"].decode()] == r["partition"] for r in outbox)


async def test_the_lanes_of_a_committed_batch_are_told_to_this_process(
    pool: asyncpg.Pool,
) -> None:
    # A delivery role in the same process starts on them at once (the Kafka
    # record is for instances elsewhere); a batch that adds nothing tells nothing.
    told: list[list[tuple[int, str]]] = []
    directory = load_directory(DATA / "partners.yaml")
    router = Router(
        PgRoutingStore(pool, outbox_shards=2),
        directory,
        topic_prefix="t.",
        partitions=4,
        on_routed=told.append,
    )
    envs = [envelope(variant(ORU, f"T-{n}", f"P{n}")) for n in range(3)]
    await MessageStore(pool, topic_prefix="t.").accept([Accepted(e, b"A") for e in envs])

    await router.route(envs)

    pending = await pool.fetch("SELECT partition, lane FROM deliveries WHERE status = 'pending'")
    assert len(pending) == 6  # two recipients each
    assert sorted(lane for batch in told for lane in batch) == sorted(
        (r["partition"], r["lane"]) for r in pending
    )
    told.clear()
    await router.route(envs)  # redelivered by Kafka: routed already
    assert told == []
