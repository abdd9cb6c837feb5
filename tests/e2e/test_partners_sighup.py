"""SIGHUP makes a running process apply its changed partner file, audited; a broken one not."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Running, start_carebroker
from tests.e2e.test_delivery_kill import healthy
from tests.messages import DATA

pytestmark = pytest.mark.e2e


async def test_sighup_reloads_the_file_and_refuses_a_broken_one(
    tmp_path: Path,
    carebroker: list[Running],
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    partners = tmp_path / "partners.yaml"
    partners.write_text((DATA / "partners.yaml").read_text())
    env = {
        "CAREBROKER_DATABASE_URL": database_url,
        "CAREBROKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CAREBROKER_KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds fetches: see Settings
        "CAREBROKER_KAFKA_TOPIC_PREFIX": topic_prefix,
    }
    running = start_carebroker(
        tmp_path, "--role", "console", "--config", str(partners), env=env, command="run"
    )
    carebroker.append(running)
    conn = await asyncpg.connect(database_url)
    try:
        await healthy(running)

        async def versions() -> int:
            return int(await conn.fetchval("SELECT count(*) FROM partner_directory"))

        assert await versions() == 1
        partners.write_text(partners.read_text().replace("enabled: false", "enabled: true"))
        running.process.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            return await versions() == 2

        await wait_for(reloaded, timeout=15)
        row = await conn.fetchrow(
            "SELECT loaded_by, summary FROM partner_directory ORDER BY version DESC LIMIT 1"
        )
        assert row["loaded_by"] == "signal:SIGHUP"
        assert '"routes_changed": ["all-lab-results-copy"]' in row["summary"]

        partners.write_text(partners.read_text().replace("port: 7002", "port: 99999"))
        running.process.send_signal(signal.SIGHUP)
        await wait_for(lambda: "partner directory not reloaded" in running.output(), timeout=15)
        await asyncio.sleep(0.5)
        assert await versions() == 2
        assert running.process.poll() is None  # still serving
        assert "partner 'cabinet-dupont': partners.2.endpoint.port" in running.output()
    finally:
        await conn.close()
    running.stop(signal.SIGTERM)
    assert running.process.returncode == 0, running.output()
