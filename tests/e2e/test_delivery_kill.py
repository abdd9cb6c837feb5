"""Killing the delivery role (SIGKILL) mid-stream loses nothing and duplicates nothing acknowledged.

Real processes: ``carebroker run --role relay --role router --role delivery``
against this test's PostgreSQL database and the session's Kafka, delivering
to a real MLLP partner and a real FHIR partner in this test.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import httpx
import pytest

from broker.pseudonym import Pseudonymizer
from broker.store import db
from broker.store.messages import Accepted, MessageStore
from tests.conftest import wait_for
from tests.e2e.conftest import Running, run_env, start_carebroker
from tests.integration.routing.conftest import partners_yaml
from tests.messages import ORU, envelope, variant
from tests.sinks import FhirSink, MllpSink

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
COUNT = 240
PATIENTS = [f"K{i}" for i in range(8)]


async def healthy(running: Running, timeout: float = 60.0) -> None:
    async def ok() -> bool:
        if running.process.poll() is not None:
            raise AssertionError(f"carebroker exited:\n{running.output()}")
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(f"{running.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(ok, timeout=timeout, interval=0.2)


async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    chu, dupont, fhir = MllpSink("chu"), MllpSink("dupont"), FhirSink()
    for sink in (chu, dupont, fhir):
        await sink.start()
    dupont.delay_s = 0.01  # slow enough that the kill lands mid-stream
    partners = tmp_path / "partners.yaml"
    partners.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
    env = run_env(database_url, kafka_bootstrap, topic_prefix)
    roles = ("--role", "relay", "--role", "router", "--role", "delivery")
    args = (*roles, "--config", str(partners))
    pool = await db.connect(database_url, 4)
    try:
        first = start_carebroker(tmp_path, *args, env=env, command="run")
        carebroker.append(first)
        await healthy(first)

        key = await db.fetch_secret(pool, "pseudonym_key", lambda: secrets.token_bytes(32))
        pseudonymizer = Pseudonymizer(key)
        sent = [
            envelope(
                variant(ORU, f"K-{i:04d}", PATIENTS[i % len(PATIENTS)]), "labo-sud", pseudonymizer
            )
            for i in range(COUNT)
        ]
        await MessageStore(pool, topic_prefix=topic_prefix).accept(
            [Accepted(e, b"ACK") for e in sent]
        )
        await wait_for(lambda: len(dupont.processed) >= COUNT // 4, timeout=60)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        assert len(dupont.processed) < COUNT, "the kill came too late to be mid-stream"
        recorded = {
            r["control_id"]
            for r in await pool.fetch(
                "SELECT control_id FROM deliveries WHERE status = 'delivered'"
                " AND recipient = 'cabinet-dupont'"
            )
        }

        second = start_carebroker(tmp_path, *args, env=env, command="run")
        carebroker.append(second)
        await healthy(second)

        async def all_delivered() -> bool:
            return (
                not await pool.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status <> 'delivered'"
                )
                and await pool.fetchval("SELECT count(*) FROM deliveries") == 2 * COUNT
            )

        await wait_for(all_delivered, timeout=120, interval=0.5)
        second.stop(signal.SIGTERM)
        assert second.process.returncode == 0, second.output()
    finally:
        await pool.close()
        for sink in (chu, dupont, fhir):
            await sink.stop()

    print("resent", dupont.resent, "recorded before kill", len(recorded))
    expected = sorted(f"K-{i:04d}" for i in range(COUNT))
    # Each message processed exactly once by each partner: nothing lost, nothing twice.
    assert sorted(dupont.processed_ids()) == expected
    assert len(fhir.processed) == COUNT == len(set(fhir.processed))
    # What carebroker had recorded as acknowledged before the kill was never sent again;
    # only the few in flight at the kill were resent, and the partner recognised them.
    assert not set(dupont.resent) & recorded, sorted(set(dupont.resent) & recorded)
    assert len(dupont.resent) <= 10, dupont.resent
    for patient in PATIENTS:
        order = [r.control_id for r in dupont.processed if r.patient == patient]
        assert order == sorted(order), f"{patient} out of order"
    assert chu.received == []
    assert "Traceback" not in first.output() + second.output()
