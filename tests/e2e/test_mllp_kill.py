"""SIGKILL right after an AA: the message survives and reaches Kafka exactly once in effect.

carebroker runs as a user would run an ingress deployment (`carebroker run
--role mllp --role relay`) against a PostgreSQL and a Kafka that outlive it.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import pytest

from adapters.hl7v2.er7 import Message
from adapters.hl7v2.mllp import MllpClient
from tests.conftest import REPO, wait_for
from tests.e2e.conftest import Running, start_carebroker
from tests.integration.mllp.kafka_records import accepted_records

pytestmark = pytest.mark.e2e
PARTNERS = REPO / "tests" / "data" / "partners.yaml"
ORU = (REPO / "tests" / "data" / "oru_labo_sud.hl7").read_bytes().replace(b"\n", b"\r")


def _start(tmp_path: Path, env: dict[str, str]) -> Running:
    return start_carebroker(
        tmp_path, "--role", "mllp", "--role", "relay", "--config", str(PARTNERS),
        command="run", env=env,
    )  # fmt: skip


async def test_sigkill_after_aa_loses_nothing(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    env = {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CAREBROKER_KAFKA_PARTITIONS": "2",
    }
    first = _start(tmp_path, env)
    carebroker.append(first)
    await asyncio.to_thread(first.wait_healthy, 60)
    async with MllpClient("127.0.0.1", first.mllp_port, timeout_s=20) as client:
        answers = [await client.send(ORU.replace(b"LS-0001", f"K-{n}".encode())) for n in range(3)]
        first.process.send_signal(signal.SIGKILL)  # right after the last AA
    first.process.wait(10)
    assert [Message((a or b"").decode()).get("MSA-1") for a in answers] == ["AA"] * 3

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT m.id, m.control_id, p.data FROM messages m JOIN payloads p"
            " ON p.message_id = m.id WHERE m.status = 'accepted' ORDER BY m.control_id"
        )
        assert [r["control_id"] for r in rows] == ["K-0", "K-1", "K-2"]
        assert rows[2]["data"] == ORU.replace(b"LS-0001", b"K-2")

        again = _start(tmp_path, env)
        carebroker.append(again)
        await asyncio.to_thread(again.wait_healthy, 60)
        await wait_for(lambda: conn.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=30)
        again.stop(signal.SIGTERM)
    finally:
        await conn.close()

    records = await accepted_records(kafka_bootstrap, topic_prefix)
    # At least once on Kafka, one message id per control id: exactly once for a
    # consumer that is idempotent by message id (design invariant 3).
    by_control = {}
    for record in records:
        by_control.setdefault(record.control_id, set()).add(record.message_id)
    assert by_control == {r["control_id"]: {r["id"]} for r in rows}
