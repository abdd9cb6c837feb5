"""Patient opposition: nothing is delivered, the block is visible in the API and the audit."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline, carebroker
from tests.messages import ORU, variant

LOCAL = ("--authority", "1.2.250.1.999.1", "--id")  # PID-3 LS-PAT-42^^^LABO-SUD&1.2.250.1.999.1


async def test_opposition_on_file_blocks_every_delivery_visibly(pipeline: Pipeline) -> None:
    added = await carebroker(
        pipeline.settings, "consent", "add", *LOCAL, "LS-PAT-42", "--note", "ticket 123"
    )
    assert added.status == 0, added.err
    assert "0 pending delivery(ies) blocked" in added.out
    listed = await carebroker(pipeline.settings, "consent", "list")
    assert "1.2.250.1.999.1" in listed.out and "ticket 123" in listed.out
    assert "LS-PAT-42" not in listed.out  # only the digest is kept

    [env] = await pipeline.accept((ORU, "labo-sud"))

    async def blocked() -> bool:
        return await pipeline.message_status(env.message_id) == "blocked"

    await wait_for(blocked, timeout=30)
    deliveries = await pipeline.deliveries(env.message_id)
    assert {r: d["status"] for r, d in deliveries.items()} == {
        "cabinet-dupont": "blocked",
        "maison-sante-nord": "blocked",
    }
    assert all(d["payload"] is None for d in deliveries.values())
    assert pipeline.dupont.received == [] and pipeline.fhir.bundles == []
    assert (
        await pipeline.pool.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE '%deliveries%'")
        == 0
    )

    async with pipeline.api() as api:
        body = (await api.get(f"/api/messages/{env.message_id}")).json()
        listed_api = (await api.get("/api/messages", params={"status": "blocked"})).json()
    assert body["status"] == "blocked" and body["reason"] == "patient opposition on file"
    assert {d["status"] for d in body["deliveries"]} == {"blocked"}
    assert [m["id"] for m in listed_api["messages"]] == [str(env.message_id)]
    assert listed_api["messages"][0]["deliveries"] == {"blocked": 2}

    events = await pipeline.audit()
    blocked_events = [e for e in events if e["kind"] == "blocked"]
    assert {e["recipient"] for e in blocked_events} == {"cabinet-dupont", "maison-sante-nord"}
    changed = [e for e in events if e["kind"] == "consent_changed"]
    assert changed[0]["detail"]["action"] == "opposition_added"
    assert "LS-PAT-42" not in str(events)


async def test_opposition_blocks_pending_deliveries_and_replay_waits_for_its_removal(
    pipeline: Pipeline,
) -> None:
    await pipeline.dupont.stop()
    [env] = await pipeline.accept((variant(ORU, "C-1", "PAT-7"), "labo-sud"))

    async def waiting() -> bool:
        rows = await pipeline.deliveries(env.message_id)
        return rows.get("cabinet-dupont", {}).get("attempts", 0) >= 1

    await wait_for(waiting, timeout=30)
    added = await carebroker(pipeline.settings, "consent", "add", *LOCAL, "PAT-7")
    assert "1 pending delivery(ies) blocked" in added.out
    await pipeline.dupont.start()
    assert (await pipeline.deliveries(env.message_id))["cabinet-dupont"]["status"] == "blocked"

    early = await carebroker(
        pipeline.settings, "replay", "--message", str(env.message_id), "--status", "blocked"
    )
    assert "replayed 0 delivery" in early.out and "opposition still on file" in early.out
    removed = await carebroker(pipeline.settings, "consent", "remove", *LOCAL, "PAT-7")
    assert removed.status == 0
    assert (await pipeline.deliveries(env.message_id))["cabinet-dupont"]["status"] == "blocked"
    again = await carebroker(
        pipeline.settings, "replay", "--message", str(env.message_id), "--status", "blocked"
    )
    assert "replayed 1 delivery" in again.out, again.out
    await pipeline.wait_status([env.message_id], {"delivered"})
    assert pipeline.dupont.processed_ids() == ["C-1"]
    missing = await carebroker(pipeline.settings, "consent", "remove", *LOCAL, "PAT-7")
    assert missing.status == 1
