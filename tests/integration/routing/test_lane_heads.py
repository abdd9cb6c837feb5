"""Lane heads: which pending deliveries a delivery instance may attempt now.

The dispatcher mostly probes the lanes a wake-up named (``probe_heads``) and
now and then scans every lane (``scan_heads``). Both must agree on each
lane's head (invariant 4: never a delivery whose lane holds an older pending
one), and a delivery no wake-up named is still found.
"""

from __future__ import annotations

import random
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from broker.ids import new_id
from broker.store.routing import PgRoutingStore
from broker.store.work import LaneHead
from tests.integration.routing.conftest import ready_heads

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


async def add_rows(pool: asyncpg.Pool, rows: list[dict[str, Any]]) -> None:
    await pool.execute(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane,"
        " partition, status, next_attempt_at, posted_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[],"
        " $5::text[], $6::int[], $7::text[], $8::timestamptz[], $9::timestamptz[])",
        *[
            [r[k] for r in rows]
            for k in (
                "id",
                "message_id",
                "at",
                "recipient",
                "lane",
                "partition",
                "status",
                "next_at",
                "posted_at",
            )
        ],
    )


def row(
    lane: str,
    at: datetime,
    *,
    recipient: str | None = None,
    partition: int = 0,
    status: str = "pending",
    waits: bool = False,
    posted: bool = False,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": new_id(),
        "message_id": new_id(),
        "at": at,
        "recipient": recipient or lane.split("/")[0],
        "lane": lane,
        "partition": partition,
        "status": status,
        "next_at": now + timedelta(hours=1) if waits else now - timedelta(seconds=1),
        "posted_at": now if posted else None,
    }


def random_backlog(seed: int) -> list[dict[str, Any]]:
    """Lanes of several recipients and partitions: some heads wait, some rows are done."""
    rng = random.Random(seed)
    rows = []
    for n in range(120):
        lane = f"gp-{rng.randrange(4)}/patient-{rng.randrange(25)}"
        rows.append(
            row(
                lane,
                START + timedelta(milliseconds=n),
                partition=zlib.crc32(lane.encode()) % 3,
                status=rng.choice(["pending"] * 6 + ["delivered", "dead"]),
                waits=rng.random() < 0.15,
                posted=lane.startswith("gp-3") and rng.random() < 0.5,
            )
        )
    return rows


def oldest_pending(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each lane's head by the rule itself: its oldest pending, unposted delivery."""
    heads: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["at"], r["message_id"])):
        if r["status"] == "pending" and r["posted_at"] is None:
            heads.setdefault(r["lane"], r)
    return heads


def described(heads: list[LaneHead]) -> list[tuple[uuid.UUID, bool]]:
    return [(h.id, h.wait_s > 0) for h in heads]


@pytest.mark.parametrize("seed", range(4))
async def test_probing_named_lanes_finds_the_heads_an_exhaustive_scan_finds(
    pool: asyncpg.Pool, seed: int
) -> None:
    rows = random_backlog(seed)
    await add_rows(pool, rows)
    rng = random.Random(seed)
    truth = oldest_pending(rows)
    busy = sorted(lane for lane in truth if rng.random() < 0.1)
    open_circuits = ["gp-2"] if seed % 2 else []
    partitions = [0, 1, 2] if seed % 3 else [0, 2]
    expected = [
        (h["id"], h["next_at"] > datetime.now(UTC))
        for h in sorted(truth.values(), key=lambda r: (r["at"], r["message_id"]))
        if h["partition"] in partitions
        and h["lane"] not in busy
        and h["recipient"] not in open_circuits
    ]
    assert expected  # the backlog leaves work to do

    async with PgRoutingStore(pool).connection() as work:
        scanned = await work.deliveries.scan_heads(partitions, busy, open_circuits, 20000)
        named = [
            (r["partition"], r["lane"])
            for r in rows
            if r["partition"] in partitions and r["lane"] not in busy
        ]
        probed = await work.deliveries.probe_heads(list(dict.fromkeys(named)), open_circuits)

    assert described(scanned) == expected
    assert described(probed) == expected
    # What an exhaustive pass hands out: the ready heads, oldest first, at most `limit`.
    ready = [head_id for head_id, waits in expected if not waits]
    got = await ready_heads(pool, partitions, busy, open_circuits, 4)
    assert [h.id for h in got] == ready[:4]


async def test_a_waiting_head_holds_its_lane_and_posted_mailbox_rows_hold_none(
    pool: asyncpg.Pool,
) -> None:
    at = [START + timedelta(seconds=n) for n in range(10)]
    waiting = row("gp-a/p1", at[0], waits=True)
    behind = [row("gp-a/p1", at[n]) for n in (1, 2, 3, 4)]
    posted = row("gp-m/p1", at[5], posted=True)
    after_posted = row("gp-m/p1", at[6])
    other = row("gp-a/p2", at[7])
    await add_rows(pool, [waiting, *behind, posted, after_posted, other])

    async with PgRoutingStore(pool).connection() as work:
        probed = await work.deliveries.probe_heads(
            [(0, "gp-a/p1"), (0, "gp-m/p1"), (0, "gp-a/p2")], []
        )
    assert described(probed) == [
        (waiting["id"], True),
        (after_posted["id"], False),
        (other["id"], False),
    ]
    heads = await ready_heads(pool, [0], [], [], 100)
    assert [h.id for h in heads] == [after_posted["id"], other["id"]]
