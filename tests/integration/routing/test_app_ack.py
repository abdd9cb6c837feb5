"""Enhanced-mode application ACKs: the sender hears what became of its message, once.

Real relay, router and delivery roles, real MLLP partners. ``cabinet-dupont``
sends referrals with MSH-15/16 valued; its MLLP endpoint (the test sink) is
where its application ACKs arrive, as deliveries: AA once chu-montpellier
acknowledged, AE with the recipient's ERR when it refused, AE with ERR 204 when
nobody could be found, nothing when MSH-16 did not ask for that outcome.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import pytest

from adapters.hl7v2.ack import read_answer
from adapters.hl7v2.er7 import Message
from broker.directory import load_directory
from broker.envelope import Envelope
from broker.store.routing import PgRoutingStore, PgWork
from routing import app_ack
from routing.delivery import Dispatcher
from tests.conftest import wait_for
from tests.integration.routing.conftest import Pipeline
from tests.messages import DATA, ORU, REF, envelope, variant


def enhanced(raw: bytes, control_id: str, accept: str = "AL", application: str = "AL") -> bytes:
    """Return the sample with MSH-15/16 valued (enhanced mode) and its own MSH-10."""
    text = variant(raw, control_id)
    return text.replace(b"|2.5|||||FRA|", f"|2.5|||{accept}|{application}|FRA|".encode())


def acks(pipeline: Pipeline) -> list[Message]:
    """Return the ACK messages cabinet-dupont's endpoint received."""
    return [
        Message(r.text)
        for r in pipeline.dupont.received
        if Message(r.text).message_type.startswith("ACK")
    ]


async def owed(pipeline: Pipeline, message_id: uuid.UUID) -> asyncpg.Record:
    row = await pipeline.pool.fetchrow("SELECT * FROM app_acks WHERE message_id = $1", message_id)
    assert row is not None
    return row


async def decided(pipeline: Pipeline, message_id: uuid.UUID) -> asyncpg.Record:
    async def done() -> bool:
        row = await pipeline.pool.fetchrow(
            "SELECT status FROM app_acks WHERE message_id = $1", message_id
        )
        return row is not None and row["status"] != "waiting"

    await wait_for(done, timeout=30)
    return await owed(pipeline, message_id)


async def test_delivered_everywhere_means_aa_to_the_senders_own_endpoint(
    pipeline: Pipeline,
) -> None:
    [ref] = await pipeline.accept((enhanced(REF, "CD-APP-1"), "cabinet-dupont"))
    await wait_for(lambda: bool(acks(pipeline)), timeout=30)
    [ack] = acks(pipeline)
    assert pipeline.chu.processed_ids() == ["CD-APP-1"]
    answer = read_answer(ack)
    assert (answer.code, answer.control_id, answer.errors) == ("AA", "CD-APP-1", ())
    # MSH-3/4 and MSH-5/6 swapped; its own control id; acknowledgements are not acknowledged.
    assert (ack.sending_application, ack.sending_facility) == ("CAREBROKER", "REGION")
    assert (ack.receiving_application, ack.receiving_facility) == ("LGC", "CAB-DUPONT")
    assert ack.control_id not in ("", "CD-APP-1")
    assert (ack.get("MSH-15"), ack.get("MSH-16")) == ("", "")
    assert ack.get("MSH-9") == "ACK^I12^ACK"

    await pipeline.wait_status([ref.message_id], {"delivered"})
    deliveries = await pipeline.pool.fetch(
        "SELECT recipient, kind, status, rules FROM deliveries WHERE message_id = $1 ORDER BY kind",
        ref.message_id,
    )
    assert [(d["recipient"], d["kind"], d["status"]) for d in deliveries] == [
        ("cabinet-dupont", "app_ack", "delivered"),
        ("chu-montpellier", "message", "delivered"),
    ]
    assert (await owed(pipeline, ref.message_id))["code"] == "AA"
    events = await pipeline.audit(ref.message_id)
    kinds = [(e["kind"], e.get("recipient")) for e in events]
    assert kinds.index(("delivered", "chu-montpellier")) < kinds.index(
        ("app_ack_sent", "cabinet-dupont")
    )
    [sent] = [e for e in events if e["kind"] == "app_ack_sent"]
    assert sent["detail"]["sent"] is True and sent["detail"]["acknowledgement"] == "AA"
    assert ("delivered", "cabinet-dupont") not in kinds  # an ACK is not counted as a message


async def test_a_recipient_refusal_comes_back_as_ae_with_its_err(pipeline: Pipeline) -> None:
    pipeline.chu.answers["CD-APP-2"] = "AE"
    [ref] = await pipeline.accept((enhanced(REF, "CD-APP-2", application="ER"), "cabinet-dupont"))
    await wait_for(lambda: bool(acks(pipeline)), timeout=30)
    [ack] = acks(pipeline)
    answer = read_answer(ack)
    assert (answer.code, answer.control_id) == ("AE", "CD-APP-2")
    # chu-montpellier's own ERR (101 at PID-5) tells the sender what to correct.
    assert [(e.code, e.location) for e in answer.errors] == [(101, "PID-5")]
    assert "not accepted by chu-montpellier" in ack.get("ERR-8")
    row = await owed(pipeline, ref.message_id)
    assert (row["status"], row["code"]) == ("queued", "AE")


async def test_an_unroutable_referral_gets_ae_204_naming_the_field(pipeline: Pipeline) -> None:
    raw = enhanced(REF, "CD-APP-3", application="ER").replace(b"10009999999", b"19999999999")
    [ref] = await pipeline.accept((raw, "cabinet-dupont"))
    await wait_for(lambda: bool(acks(pipeline)), timeout=30)
    [ack] = acks(pipeline)
    answer = read_answer(ack)
    assert (answer.code, answer.control_id) == ("AE", "CD-APP-3")
    assert [(e.code, e.location) for e in answer.errors] == [(204, "PRD")]
    assert "19999999999 is not in the directory" in ack.get("ERR-8")
    assert await pipeline.message_status(ref.message_id) == "unroutable"
    assert pipeline.chu.received == []


async def test_msh16_conditions_are_honoured(pipeline: Pipeline) -> None:
    # SU: only success is acknowledged; this one is unroutable, so nothing is sent.
    raw = enhanced(REF, "CD-APP-4", application="SU").replace(b"10009999999", b"19999999999")
    # NE: never; nothing is even noted.
    never = enhanced(REF, "CD-APP-5", application="NE")
    [su, ne] = await pipeline.accept((raw, "cabinet-dupont"), (never, "cabinet-dupont"))
    row = await decided(pipeline, su.message_id)
    assert (row["status"], row["code"]) == ("not_due", "AE")
    await pipeline.wait_status([ne.message_id], {"delivered"})
    assert (
        await pipeline.pool.fetchval(
            "SELECT count(*) FROM app_acks WHERE message_id = $1", ne.message_id
        )
        == 0
    )
    await asyncio.sleep(0.5)  # give a wrongly queued ACK the time to arrive
    assert acks(pipeline) == []


async def test_a_sender_without_an_endpoint_gets_none_and_the_trail_says_so(
    pipeline: Pipeline,
) -> None:
    raw = enhanced(ORU, "LS-APP-1").replace(b"10001234567", b"19999999999")
    raw = raw.replace(b"10007777777", b"19999999998").replace(b"10003456789", b"19999999997")
    [oru] = await pipeline.accept((raw, "labo-sud"))
    row = await decided(pipeline, oru.message_id)
    assert (row["status"], row["code"]) == ("unsendable", "AE")
    assert row["reason"] == "sender labo-sud has no endpoint"
    [event] = [e for e in await pipeline.audit(oru.message_id) if e["kind"] == "app_ack_sent"]
    assert event["outcome"] == "minor_failure"
    assert event["detail"] == {
        "sent": False,
        "acknowledgement": "AE",
        "reason": "sender labo-sud has no endpoint",
    }


async def test_two_instances_finishing_the_last_deliveries_at_once_queue_one_ack(
    pool: asyncpg.Pool,
) -> None:
    """The app_acks row lock serialises the decision: neither misses it, only one sends it."""
    directory = load_directory(DATA / "partners.yaml")
    env: Envelope = envelope(enhanced(ORU, "LS-RACE-1").replace(b"|LABO-SUD|", b"|CHU-MTP|"))
    env = env.model_copy(update={"sender": "chu-montpellier"})
    lanes = app_ack.Lanes("t.deliveries", 4)
    async with PgRoutingStore(pool).transaction() as work:
        await app_ack.expect(work, [env], {})
        for recipient in ("cabinet-dupont", "maison-sante-nord"):
            await work.conn.execute(
                "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane,"
                " partition, status) VALUES ($1, $2, $3, $4, $4, 0, 'pending')",
                uuid.uuid4(),
                env.message_id,
                env.received_at,
                recipient,
            )
    first, second = await pool.acquire(), await pool.acquire()
    try:
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        for conn, recipient in ((first, "cabinet-dupont"), (second, "maison-sante-nord")):
            await conn.execute(
                "UPDATE deliveries SET status = 'delivered' WHERE recipient = $1", recipient
            )
        # The first sees the other delivery still pending: nothing to send yet, row locked.
        settled = app_ack.settle(PgWork(first, 2), [env.message_id], directory, lanes, actor="t")
        assert await settled == []
        racing = asyncio.create_task(
            app_ack.settle(PgWork(second, 2), [env.message_id], directory, lanes, actor="t")
        )
        await asyncio.sleep(0.3)
        assert not racing.done()  # waits for the first to commit
        await one.commit()
        await racing
        await two.commit()
    finally:
        await pool.release(first)
        await pool.release(second)
    rows = await pool.fetch(
        "SELECT recipient, kind, payload FROM deliveries WHERE kind = 'app_ack'"
    )
    assert [(r["recipient"], r["kind"]) for r in rows] == [("chu-montpellier", "app_ack")]
    assert read_answer(Message(rows[0]["payload"].decode())).code == "AA"
    assert await pool.fetchval("SELECT status FROM app_acks") == "queued"


@pytest.mark.parametrize(
    ("condition", "code", "due"),
    [("AL", "AA", True), ("AL", "AE", True), ("ER", "AA", False), ("ER", "AR", True),
     ("SU", "AA", True), ("SU", "AE", False)],
)  # fmt: skip
def test_table_0155_decides_what_is_due(condition: str, code: str, due: bool) -> None:
    assert app_ack.is_due(condition, code) is due


async def test_an_ack_whose_deliveries_ended_elsewhere_is_decided_by_the_sweep(
    pool: asyncpg.Pool,
) -> None:
    """A consent change blocks pending deliveries without deciding the ACK: the sweep does."""
    directory = load_directory(DATA / "partners.yaml")
    env = envelope(enhanced(REF, "CD-SWEEP-1"), "cabinet-dupont")
    env = env.model_copy(update={"received_at": env.received_at - timedelta(minutes=2)})
    store = PgRoutingStore(pool, outbox_shards=2)
    async with store.transaction() as work:
        await app_ack.expect(work, [env], {})
        await work.conn.execute(
            "INSERT INTO deliveries (id, message_id, message_received_at, recipient, lane,"
            " partition, status) VALUES ($1, $2, $3, 'chu-montpellier', 'l', 0, 'blocked')",
            uuid.uuid4(),
            env.message_id,
            env.received_at,
        )
    dispatcher = Dispatcher(store, lambda: directory, acks=app_ack.Lanes("t.deliveries", 4))
    assert await dispatcher.settle_stale_app_acks() == 1
    row = await pool.fetchrow("SELECT status, code FROM app_acks")
    assert tuple(row) == ("queued", "AA")  # blocked by an opposition: nothing to correct
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE kind = 'app_ack'") == 1
    assert await dispatcher.settle_stale_app_acks() == 0
