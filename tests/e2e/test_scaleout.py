"""Scale-out: two routers and two delivery workers, one of each SIGKILLed mid-stream (issue 8).

Real processes, as a Deployment per role would run them: ``carebroker run
--role mllp --role relay`` (ingress), two ``--role router`` and two ``--role
delivery``, against one PostgreSQL database and the session's tansu broker,
with 8 partitions per topic. The test sends 3,000 lab results about 300
patients over MLLP, paced over several seconds (each patient's messages on
one connection, so the order they were accepted in is the order they were
sent in); every result goes to two MLLP partners (cabinet-dupont, the ordering
provider, and maison-sante-nord, copied), 6,000 deliveries. Once a quarter of
them reached the partners, one router and one delivery instance are killed
with SIGKILL (no chance to hand anything over), while ingress goes on.

What is asserted, precisely:

- **Taken over.** Before the kill each role's two instances split the 8
  partitions between them (their ``partitions owned`` log lines, and tansu's
  DescribeGroups listing both processes as members). After it, the survivor
  of each role logs an assignment of all 8 partitions, and DescribeGroups
  lists the survivor alone. The test waits for these, never for a time.
- **Every message delivered once.** Each partner processed (answered AA to a
  first copy of) exactly the 3,000 control ids it should have, each once.
  A partner may receive a second copy only as a resend it recognises: the same
  bytes (same MSH-10), of a delivery whose lane belonged to the killed
  delivery instance and whose outcome was not recorded when it died (it was in
  flight: sent, perhaps answered, not yet committed; at most one per lane);
  nothing PostgreSQL recorded as delivered by the time of the kill is sent
  again.
- **In order.** At each partner, each patient's results were processed in the
  order the lab sent them.
- **Recorded once.** In PostgreSQL every delivery is ``delivered``, no message
  is left ``accepted``, and the audit trail has exactly one ``routed`` and one
  ``delivered`` event per delivery: the two routers never routed a message
  twice, the two delivery instances never recorded a delivery twice.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from adapters.hl7v2.mllp import MllpClient
from broker import topics
from broker.store import db
from tests.conftest import wait_for
from tests.e2e.conftest import Running, start_carebroker
from tests.e2e.test_delivery_kill import healthy
from tests.integration.routing.conftest import mllp_partners_yaml
from tests.messages import ORU, variant
from tests.sinks import MllpSink

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNT = 3000
PATIENTS = 300
SENDERS = 10  # MLLP connections from the lab; a patient's messages all use one
PACE_S = 0.03  # between two messages of one connection: the stream lasts several seconds
PARTITIONS = 8
CONNECTIONS = 4  # per partner endpoint and delivery instance
ALL = set(range(PARTITIONS))
_OWNED = re.compile(r"(router: partitions|delivery: lanes) owned partitions=([\d,]*)")


def owned(running: Running, role: str, since: int = 0) -> set[int] | None:
    """Return the partitions of the last assignment ``running`` logged after ``since``."""
    kind = "router: partitions" if role == "router" else "delivery: lanes"
    found = [m[2] for m in _OWNED.finditer(running.output()[since:]) if m[1] == kind]
    if not found:
        return None
    return {int(p) for p in found[-1].split(",") if p}


async def members(bootstrap: str, group: str) -> list[str]:
    """Return the member ids of a consumer group as the broker (tansu) describes it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return [
        member[0]
        for response in described
        for entry in response.groups
        if entry[1] == group
        for member in entry[5]
    ]


def pid_of(member_id: str) -> int:
    """Return the pid in a member id (``carebroker-<role>-<host>-<pid>-<uuid>``)."""
    return int(member_id.split("-")[-6])


async def test_two_routers_two_deliveries_one_of_each_killed_mid_stream(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    chu, dupont, nord = MllpSink("chu"), MllpSink("dupont"), MllpSink("nord")
    sinks = (chu, dupont, nord)
    for sink in sinks:
        await sink.start()
        sink.delay_s = 0.02  # a partner's answer time: the survivor alone falls behind
    partners = tmp_path / "partners.yaml"
    # No ACK timeout under this load: a resend must come from the kill alone.
    partners.write_text(
        mllp_partners_yaml(chu.port, dupont.port, nord.port).replace(
            "ack_timeout_s: 2,", f"ack_timeout_s: 30, connections: {CONNECTIONS},"
        )
    )
    env = {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CAREBROKER_KAFKA_PARTITIONS": str(PARTITIONS),
        "CAREBROKER_DATABASE_POOL_SIZE": "4",
    }
    config = ("--config", str(partners))

    def start(*roles: str) -> Running:
        args = [a for role in roles for a in ("--role", role)]
        running = start_carebroker(tmp_path, *args, *config, env=env, command="run")
        carebroker.append(running)
        return running

    pool = await db.connect(database_url, 2)
    try:
        ingress = start("mllp", "relay")
        await healthy(ingress)  # created the topics: the others find them
        routers = [start("router"), start("router")]
        deliveries = [start("delivery"), start("delivery")]
        await asyncio.gather(*(healthy(r, timeout=90) for r in [*routers, *deliveries]))

        # Both instances of each role hold partitions before anything flows.
        for role, pair, group in (
            ("router", routers, "router.route"),
            ("delivery", deliveries, "delivery.dispatch"),
        ):

            async def split(pair: list[Running] = pair, role: str = role) -> bool:
                first, second = owned(pair[0], role), owned(pair[1], role)
                return bool(first and second and not first & second and first | second == ALL)

            await wait_for(split, timeout=60, interval=0.2)
            ids = await members(kafka_bootstrap, topics.group_id(topic_prefix, group))
            assert sorted(pid_of(m) for m in ids) == sorted(r.process.pid for r in pair), ids

        sent = 0

        async def send(connection: int) -> None:
            nonlocal sent
            client = MllpClient("127.0.0.1", ingress.mllp_port, timeout_s=30)
            for i in range(COUNT):
                if (i % PATIENTS) % SENDERS != connection:
                    continue
                answer = await client.send(variant(ORU, f"S-{i:05d}", f"P{i % PATIENTS:03d}"))
                assert answer is not None
                assert b"MSA|AA|" in answer
                sent += 1
                await asyncio.sleep(PACE_S)
            await client.close()

        feed = asyncio.gather(*(send(c) for c in range(SENDERS)))
        await wait_for(lambda: len(dupont.processed) >= COUNT // 4, timeout=60, interval=0.02)

        killed_router, killed_delivery = routers[0], deliveries[0]
        router, delivery = routers[1], deliveries[1]
        killed_lanes = owned(killed_delivery, "delivery")
        assert killed_lanes
        marks = {id(r): len(r.output()) for r in (router, delivery)}
        for victim in (killed_router, killed_delivery):
            os.kill(victim.process.pid, signal.SIGKILL)
        for victim in (killed_router, killed_delivery):
            victim.process.wait(timeout=10)
        recorded = {
            (r["recipient"], r["control_id"])
            for r in await pool.fetch(
                "SELECT recipient, control_id FROM deliveries WHERE status = 'delivered'"
            )
        }
        assert sent < COUNT, "the kill came after the lab had sent everything"
        assert len(recorded) < 2 * COUNT

        # The survivors take the killed instances' partitions: their logs and tansu agree.
        for survivor, role, group in (
            (router, "router", "router.route"),
            (delivery, "delivery", "delivery.dispatch"),
        ):
            await wait_for(
                lambda s=survivor, r=role: owned(s, r, marks[id(s)]) == ALL,
                timeout=60,
                interval=0.2,
            )
            ids = await members(kafka_bootstrap, topics.group_id(topic_prefix, group))
            assert [pid_of(m) for m in ids] == [survivor.process.pid], ids

        await feed
        assert sent == COUNT

        async def all_delivered() -> bool:
            return (
                await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
                == 2 * COUNT
            )

        await wait_for(all_delivered, timeout=120, interval=0.5)
        lanes = {
            (r["recipient"], r["control_id"]): (r["lane"], r["partition"])
            for r in await pool.fetch(
                "SELECT recipient, control_id, lane, partition FROM deliveries"
            )
        }
        assert not await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'accepted'")
        audit = Counter(
            (r["kind"], r["delivery_id"])
            for r in await pool.fetch(
                "SELECT event->>'kind' AS kind, event->'detail'->>'delivery_id' AS delivery_id"
                " FROM audit_pending WHERE event->>'kind' IN ('routed', 'delivered')"
            )
        )
        for survivor in (ingress, router, delivery):
            survivor.stop(signal.SIGTERM)
            assert survivor.process.returncode == 0, survivor.output()
    finally:
        await pool.close()
        for sink in sinks:
            await sink.stop()

    expected = sorted(f"S-{i:05d}" for i in range(COUNT))
    resent = 0
    for sink, recipient in ((dupont, "cabinet-dupont"), (nord, "maison-sante-nord")):
        # Every message processed by each partner, once.
        assert sorted(sink.processed_ids()) == expected, sink.name
        # In the order the lab sent them, patient by patient.
        by_patient: dict[str, list[str]] = defaultdict(list)
        for item in sink.processed:
            by_patient[item.patient].append(item.control_id)
        assert len(by_patient) == PATIENTS
        for patient, order in by_patient.items():
            assert order == sorted(order), f"{sink.name}: {patient} out of order"
        # Second copies: recognised resends of what the killed instance had in flight.
        copies: dict[str, set[str]] = defaultdict(set)
        for item in sink.received:
            copies[item.control_id].add(item.text)
        for control_id in sink.resent:
            assert len(copies[control_id]) == 1, f"{control_id}: a resend differs"
            assert (recipient, control_id) not in recorded, f"{control_id} recorded, sent again"
            assert lanes[recipient, control_id][1] in killed_lanes, f"{control_id}: not its lane"
        # Each resent once, and at most one per lane: a lane has one delivery in flight.
        assert len(sink.resent) == len(set(sink.resent)), sink.resent
        resent_lanes = [lanes[recipient, c][0] for c in sink.resent]
        assert len(resent_lanes) == len(set(resent_lanes)), sink.resent
        resent += len(sink.resent)
    assert chu.received == []
    # PostgreSQL recorded each delivery once, routed by one router only.
    assert len(audit) == 4 * COUNT
    assert set(audit.values()) == {1}
    # The survivor read again what the killed router had routed but not committed.
    reread = sum(
        int(n) for n in re.findall(r"already routed, skipped count=(\d+)", router.output())
    )
    print(f"after the kill: {resent} resent (recognised), {reread} read again by the router")
    for running in carebroker:
        assert " ERROR " not in running.output(), running.output()
        assert "Traceback" not in running.output(), running.output()
