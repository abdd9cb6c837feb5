"""Order per patient per recipient: a retrying delivery holds its own lane (strict: all)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from broker.settings import Settings
from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.messages import ORU, variant
from tests.sinks import FhirSink, MllpSink


async def hold_then_release(pipeline: Pipeline, *, strict: bool) -> None:
    pipeline.dupont.answers["HOLD-000"] = "AR"  # the partner cannot take it for now
    # P1 and P2 travel on different partitions of the accepted topic, so the
    # router may route HOLD-002 before HOLD-000; a strict endpoint is held
    # behind a failing delivery, not behind messages not routed yet. Delivery
    # to the partner waits (an operator's pause) until all three are routed.
    await pipeline.pool.execute(
        "INSERT INTO delivery_pauses (recipient, reason, paused_by) VALUES ($1, $2, $3)",
        "cabinet-dupont",
        "until all three are routed",
        "test",
    )
    accepted = await pipeline.accept(
        (variant(ORU, "HOLD-000", "P1"), "labo-sud"),
        (variant(ORU, "HOLD-001", "P1"), "labo-sud"),
        (variant(ORU, "HOLD-002", "P2"), "labo-sud"),
    )

    async def all_routed() -> bool:
        routed = await pipeline.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE recipient = 'cabinet-dupont'"
        )
        return bool(routed == 3)

    await wait_for(all_routed, timeout=30)
    await pipeline.pool.execute("DELETE FROM delivery_pauses")

    async def retried_twice() -> bool:
        rows = await pipeline.deliveries(accepted[0].message_id)
        return rows.get("cabinet-dupont", {}).get("attempts", 0) >= 2

    await wait_for(retried_twice, timeout=30)
    if strict:
        await asyncio.sleep(0.5)
        assert pipeline.dupont.processed_ids() == []  # the whole endpoint waits
    else:
        await wait_for(lambda: pipeline.dupont.processed_ids() == ["HOLD-002"], timeout=30)
    assert "HOLD-001" not in pipeline.dupont.processed_ids()  # never overtakes HOLD-000

    del pipeline.dupont.answers["HOLD-000"]
    await pipeline.wait_status([e.message_id for e in accepted], {"delivered"})
    order = pipeline.dupont.processed_ids()
    assert order.index("HOLD-000") < order.index("HOLD-001")
    if strict:
        assert order == ["HOLD-000", "HOLD-001", "HOLD-002"]


async def test_a_retrying_delivery_holds_only_its_patients_lane(pipeline: Pipeline) -> None:
    await hold_then_release(pipeline, strict=False)
    lanes = await pipeline.pool.fetch(
        "SELECT DISTINCT lane FROM deliveries WHERE recipient = 'cabinet-dupont'"
    )
    assert len(lanes) == 2


@pytest.fixture
async def strict_pipeline(
    settings: Settings,
    pool: asyncpg.Pool,
    sinks: tuple[MllpSink, MllpSink, FhirSink],
    partners: Path,
) -> AsyncIterator[Pipeline]:
    text = partners.read_text().replace(
        "    kind: gp\n    facilities: [CAB-DUPONT]",
        "    kind: gp\n    ordering: strict\n    facilities: [CAB-DUPONT]",
    )
    assert "ordering: strict" in text
    partners.write_text(text)
    running = await start_pipeline(settings, pool, sinks, partners)
    try:
        yield running
    finally:
        await stop_pipeline(running)


async def test_strict_partner_is_held_as_a_whole(strict_pipeline: Pipeline) -> None:
    await hold_then_release(strict_pipeline, strict=True)
    lanes = await strict_pipeline.pool.fetch(
        "SELECT DISTINCT lane FROM deliveries WHERE recipient = 'cabinet-dupont'"
    )
    assert [r["lane"] for r in lanes] == ["cabinet-dupont"]
