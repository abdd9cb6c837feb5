"""Delivery when partners fail: outages, poison messages, retries exhausted, replay."""

from __future__ import annotations

import uuid

from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline, carebroker
from tests.messages import ORU, REF, variant


def results_for(patients: list[str], prefix: str) -> list[tuple[bytes, str]]:
    """Return ORU^R01s, one per (index, patient), in the order they are accepted."""
    return [
        (variant(ORU, f"{prefix}-{i:03d}", patient), "labo-sud")
        for i, patient in enumerate(patients)
    ]


async def test_partner_down_for_a_while_gets_everything_after_in_order_once(
    pipeline: Pipeline,
) -> None:
    await pipeline.dupont.stop()
    patients = ["P1", "P2", "P3"] * 8
    accepted = await pipeline.accept(*results_for(patients, "DOWN"))
    ids = [e.message_id for e in accepted]

    async def retrying() -> bool:
        return bool(
            await pipeline.pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE recipient = 'cabinet-dupont'"
                " AND status = 'pending' AND attempts >= 2"
            )
        )

    await wait_for(retrying, timeout=30)
    # Meanwhile the FHIR partner got its copies: one partner down holds only its own lanes.
    await wait_for(lambda: len(pipeline.fhir.processed) == len(patients), timeout=30)
    assert pipeline.dupont.received == []

    await pipeline.dupont.start()
    await pipeline.wait_status(ids, {"delivered"}, timeout=60)

    got = pipeline.dupont.processed
    assert sorted(r.control_id for r in got) == sorted(f"DOWN-{i:03d}" for i in range(24))
    assert pipeline.dupont.resent == []  # nothing delivered twice with a positive ACK
    for patient in ("P1", "P2", "P3"):
        order = [r.control_id for r in got if r.patient == patient]
        assert order == sorted(order), f"{patient} out of order: {order}"
    retried = [e for e in await pipeline.audit() if e["kind"] == "retried"]
    assert retried and all(e["recipient"] == "cabinet-dupont" for e in retried)
    assert "connection refused" in retried[0]["detail"]["reason"]


async def test_poison_message_is_dead_lettered_others_flow_and_replay_delivers_it(
    pipeline: Pipeline,
) -> None:
    pipeline.dupont.answers["POISON-000"] = "AE"
    accepted = await pipeline.accept(*results_for(["P1", "P1", "P2", "P3"], "POISON"))
    ids = [e.message_id for e in accepted]
    await pipeline.wait_status(ids, {"delivered", "failed"})

    poison = (await pipeline.deliveries(ids[0]))["cabinet-dupont"]
    assert poison["status"] == "failed"
    assert poison["last_error"] == "AE: ERR 101 at PID-5"
    assert b"MSA|AE|POISON-000" in poison["response"]
    # The same patient's next result and the other patients' results all went through.
    assert sorted(pipeline.dupont.processed_ids()) == ["POISON-001", "POISON-002", "POISON-003"]
    assert (await pipeline.deliveries(ids[0]))["maison-sante-nord"]["status"] == "delivered"
    kinds = [
        e["kind"] for e in await pipeline.audit(ids[0]) if e.get("recipient") == "cabinet-dupont"
    ]
    assert kinds == ["routed", "failed", "dead_lettered"]

    async with pipeline.api() as api:
        listed = (await api.get("/api/messages", params={"delivery_status": "failed"})).json()
        assert [m["id"] for m in listed["messages"]] == [str(ids[0])]
        body = (await api.get(f"/api/messages/{ids[0]}")).json()
    dead = next(d for d in body["deliveries"] if d["recipient"] == "cabinet-dupont")
    assert (dead["status"], dead["attempts"], dead["last_error"], dead["rule"]) == (
        "failed",
        1,
        "AE: ERR 101 at PID-5",
        "ordering-provider",
    )

    del pipeline.dupont.answers["POISON-000"]  # the partner fixed its side
    replayed = await carebroker(pipeline.settings, "replay", "--message", str(ids[0]))
    assert replayed.status == 0, replayed.err
    assert "replayed 1 delivery" in replayed.out
    await pipeline.wait_status([ids[0]], {"delivered"})
    assert pipeline.dupont.processed_ids()[-1] == "POISON-000"
    assert len(pipeline.fhir.processed) == 4  # the delivered copy was not sent again
    kinds = [
        e["kind"] for e in await pipeline.audit(ids[0]) if e.get("recipient") == "cabinet-dupont"
    ]
    assert kinds[-2:] == ["replayed", "delivered"]
    replay_event = next(e for e in await pipeline.audit(ids[0]) if e["kind"] == "replayed")
    assert replay_event["actor"].startswith("user:")


async def test_retries_exhausted_become_dead_with_the_reason(pipeline: Pipeline) -> None:
    pipeline.chu.answers["CD-REF-77"] = "AR"
    [ref] = await pipeline.accept((REF, "cabinet-dupont"))
    await pipeline.wait_status([ref.message_id], {"dead"})
    dead = (await pipeline.deliveries(ref.message_id))["chu-montpellier"]
    assert dead["attempts"] == 4
    assert dead["last_error"] == "AR: no ERR segment; gave up after 4 attempts (max_attempts 4)"
    assert len(pipeline.chu.received) == 4 and pipeline.chu.processed == []


async def test_replay_needs_a_selection_and_skips_what_was_delivered(pipeline: Pipeline) -> None:
    refused = await carebroker(pipeline.settings, "replay")
    assert refused.status == 2 and "say what to replay" in refused.err
    [env] = await pipeline.accept((ORU, "labo-sud"))
    await pipeline.wait_status([env.message_id], {"delivered"})
    again = await carebroker(pipeline.settings, "replay", "--partner", "cabinet-dupont")
    assert "replayed 0 delivery" in again.out
    unknown = await carebroker(pipeline.settings, "replay", "--message", str(uuid.uuid4()))
    assert unknown.status == 0 and "replayed 0 delivery" in unknown.out
    assert pipeline.dupont.processed_ids() == ["LS-0001"]


async def test_a_delivery_no_wake_up_named_is_still_sent(pipeline: Pipeline) -> None:
    # Wake-up records name the lanes they give work; a record lost on the way
    # (a local Kafka restarted, say) must delay a delivery, never strand it.
    # Here the delivery row is written with no record at all.
    first = (await pipeline.accept(*results_for(["P1"], "NAMED")))[0]
    await pipeline.wait_status([first.message_id], {"delivered"})
    row = (await pipeline.deliveries(first.message_id))["cabinet-dupont"]
    stray_id = uuid.uuid4()
    await pipeline.pool.execute(
        "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane, partition,"
        " status, payload, content_type, control_id)"
        " VALUES ($1, $2, now(), 'cabinet-dupont', 'a lane no record named', $3, 'pending',"
        " $4, $5, 'UNNAMED-1')",
        stray_id,
        uuid.uuid4(),
        row["partition"],
        row["payload"].replace(b"NAMED-000", b"UNNAMED-1"),
        row["content_type"],
    )

    async def delivered() -> bool:
        status = await pipeline.pool.fetchval(
            "SELECT status FROM deliveries WHERE id = $1", stray_id
        )
        return bool(status == "delivered")

    await wait_for(delivered, timeout=15)
    assert pipeline.dupont.processed_ids().count("UNNAMED-1") == 1
