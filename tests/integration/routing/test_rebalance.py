"""Rebalances of the router and delivery consumer groups hand work over cleanly (issue 8).

A rebalance moves partitions, and with them lanes, from one instance to
another. An instance giving partitions up must finish what it started there
and nothing more, and quickly: every member of the group waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import asyncpg
import pytest

from broker.settings import Settings
from routing.roles import DeliveryRole, RouterRole
from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.messages import ORU, variant
from tests.sinks import FhirSink, MllpSink

LANES = 10


async def test_delivery_revoke_hands_back_queued_lanes_unsent(pipeline: Pipeline) -> None:
    # One connection to a partner answering in 0.2 s: ten lanes' heads queue behind it.
    pipeline.dupont.delay_s = 0.2
    delivery = next(s for s in pipeline.services if isinstance(s, DeliveryRole))
    dispatcher = delivery.dispatcher
    assert dispatcher is not None
    accepted = await pipeline.accept(
        *((variant(ORU, f"RV-{i:03d}", f"RV{i}"), "labo-sud") for i in range(LANES))
    )
    await wait_for(lambda: pipeline.dupont.received, timeout=30, interval=0.01)
    owned = set(dispatcher.owned)

    # What the rebalance listener does when Kafka takes the partitions away.
    await dispatcher.revoke(owned)
    sent = len(pipeline.dupont.received)
    # Only the send under way at the revoke (and its answer) was waited for;
    # the queued heads went back unsent, their lanes free for the next owner.
    assert sent <= 2, pipeline.dupont.processed_ids()
    assert not [h for h in dispatcher.in_flight.values() if h.partition in owned]
    untouched = await pipeline.pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE recipient = 'cabinet-dupont'"
        " AND status = 'pending' AND attempts = 0"
    )
    assert untouched == LANES - sent  # handed back, not counted as attempts

    # The next owner (here the same instance, reassigned) delivers them, once each.
    dispatcher.assign(owned)
    await pipeline.wait_status([e.message_id for e in accepted], {"delivered"}, timeout=30)
    assert sorted(pipeline.dupont.processed_ids()) == [f"RV-{i:03d}" for i in range(LANES)]
    assert pipeline.dupont.resent == []


@pytest.fixture
async def routers(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    partners: Path,
) -> Pipeline:
    running = await start_pipeline(settings, pool, sinks, partners, roles=("relay", "router"))
    yield running  # type: ignore[misc]
    await stop_pipeline(running)


async def test_router_commits_the_batch_in_hand_before_its_partitions_move(
    routers: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pool = routers.pool

    async def router_waits_for_the_row() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
        )

    async with pool.acquire() as blocker, blocker.transaction():
        # Keep the first router's batch in hand: its row lock waits for this transaction.
        [held] = await routers.accept((variant(ORU, "RB-000", "RB1"), "labo-sud"))
        await blocker.execute("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE", held.message_id)
        await wait_for(router_waits_for_the_row, timeout=30)
        # A second instance joins the group: the first must give its partitions
        # up while the batch is still in hand.
        second = RouterRole()
        routers.services.append(second)
        # Not awaited here: starting returns once the group has re-formed, which
        # (since the first router waits for its batch) needs the row released.
        joining = asyncio.create_task(second.start(routers.ctx))
        await wait_for(lambda: "router: releasing partitions" in caplog.text, timeout=30)
    released_row_at = time.time()
    await joining

    async def routed() -> bool:
        return await routers.message_status(held.message_id) == "routed"

    await wait_for(routed, timeout=30)
    # The group settles: both instances own partitions.
    await wait_for(lambda: caplog.text.count("router: partitions owned") >= 2, timeout=30)
    # The partitions were given up only once the batch in hand was done, which
    # needed the row this test held.
    [released] = [r for r in caplog.records if r.getMessage() == "router: partitions released"]
    assert released.created >= released_row_at
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]
    # The instance that had the batch committed its offset before the partition
    # moved: no instance read the message again.
    assert "already routed" not in caplog.text
