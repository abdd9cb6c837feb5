"""The flows API reads the spine tables: counts per partner and direction, queues, latency."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.integration.console.conftest import Console, get_as
from tests.integration.console.traffic import add_delivery, add_message


async def test_inbound_counts_per_sender_by_window(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    await add_message(pool, "chu-montpellier", ago_s=30)
    await add_message(pool, "chu-montpellier", ago_s=90, status="rejected")
    await add_message(pool, "chu-montpellier", ago_s=20 * 60)
    await add_message(pool, "chu-montpellier", ago_s=2 * 3600)  # outside the hour
    await add_message(pool, None, ago_s=10, status="rejected")  # unrecognised sender
    flows = await get_as(client, "/api/flows")
    rows = {r["partner"]: r for r in flows["inbound"]}
    chu = rows["chu-montpellier"]
    assert (chu["received_5m"], chu["received_1h"], chu["rejected_1h"]) == (2, 3, 1)
    assert chu["name"] == "CHU de Montpellier"
    assert len(chu["received"]) == 60 and sum(chu["received"]) == 3
    assert chu["received"][-1] == 1 and chu["received"][-2] == 1 and chu["received"][-21] == 1
    assert rows[""]["rejected_1h"] == 1
    # Every partner of the directory is listed, traffic or not.
    assert rows["cabinet-dupont"]["received_1h"] == 0
    assert flows["totals"]["received_1h"] == 4 and flows["totals"]["rejected_1h"] == 2
    assert flows["series"]["received"][-1] == 2


async def test_outbound_queue_latency_dead_letters_and_state(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    for latency in (1, 2, 3, 4, 10):
        await add_delivery(
            pool,
            "cabinet-dupont",
            status="delivered",
            received_ago_s=120,
            delivered_ago_s=120 - latency,
        )
    await add_delivery(pool, "cabinet-dupont", status="pending", received_ago_s=40)
    await add_delivery(
        pool,
        "chu-montpellier",
        status="failed",
        received_ago_s=900,
        last_error="connection refused",
    )
    await add_delivery(pool, "chu-montpellier", status="pending", received_ago_s=600)
    await add_delivery(
        pool, "maison-sante-nord", status="dead", received_ago_s=3000, updated_ago_s=2000
    )
    flows = await get_as(client, "/api/flows")
    rows = {r["partner"]: r for r in flows["outbound"]}

    dupont = rows["cabinet-dupont"]
    assert (dupont["delivered_5m"], dupont["delivered_1h"], dupont["queued"]) == (5, 5, 1)
    assert dupont["latency_p50_s"] == pytest.approx(3.0, abs=0.2)
    assert 4.0 < dupont["latency_p95_s"] <= 10.0
    assert 40 <= dupont["oldest_pending_age_s"] < 100
    assert dupont["state"] == "ok" and dupont["endpoint"] == "mllp"

    chu = rows["chu-montpellier"]
    # A failed delivery is still to be made: it is queued, and the oldest of the queue.
    assert (chu["queued"], chu["failed_1h"], chu["failed_5m"]) == (2, 1, 1)
    assert 900 <= chu["oldest_pending_age_s"] < 1000
    assert chu["state"] == "failing"

    nord = rows["maison-sante-nord"]
    assert (nord["dead"], nord["queued"], nord["failed_1h"], nord["failed_5m"]) == (1, 0, 1, 0)
    assert nord["state"] == "idle"

    assert rows["cabinet-sans-interface"]["state"] == "idle"  # a recipient with no traffic
    totals = flows["totals"]
    assert (totals["delivered_1h"], totals["queued"], totals["dead"], totals["failed_1h"]) == (
        5,
        3,
        1,
        2,
    )


async def test_an_old_queue_shows_backlog(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    await add_delivery(pool, "cabinet-dupont", status="pending", received_ago_s=400)
    rows = {r["partner"]: r for r in (await get_as(client, "/api/flows"))["outbound"]}
    assert rows["cabinet-dupont"]["state"] == "backlog"


async def test_flows_are_shared_between_pollers_within_the_cache_time(
    console: Console, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    from broker.console.flows import FlowsCache

    cache = FlowsCache(ttl=60)
    store = console.ctx.stores.console
    first = await cache.get(store, console.ctx.directory)
    await add_message(pool, "labo-sud")
    assert (await cache.get(store, console.ctx.directory)) is first
    fresh = await FlowsCache(ttl=0).get(store, console.ctx.directory)
    assert fresh.totals.received_1h == first.totals.received_1h + 1
