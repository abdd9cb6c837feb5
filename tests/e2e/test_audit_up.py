"""`carebroker up` with its audit role: alerts, /metrics, `audit verify` and `audit export`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Running, carebroker_command, start_carebroker

pytestmark = pytest.mark.e2e
PARTNERS = REPO / "tests" / "data" / "partners.yaml"
# The commands must find `up`'s embedded PostgreSQL by --data-dir, not a configured one.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}


def _until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def test_a_silent_sender_is_alerted_audited_and_the_trail_verifies(
    tmp_path: Path, carebroker: list[Running]
) -> None:
    config = tmp_path / "partners.yaml"
    config.write_text(
        PARTNERS.read_text().replace(
            "    facilities: [LABO-SUD]\n",
            "    facilities: [LABO-SUD]\n    expected_interval_s: 1\n",
        )
    )
    running = start_carebroker(
        tmp_path, "--config", str(config), env={"CAREBROKER_ALERT_INTERVAL_S": "0.5"}
    )
    carebroker.append(running)
    running.wait_healthy(60)
    assert "carebroker audit: writer chaining audit_pending" in running.output()

    def silent_alert() -> dict | None:
        body = httpx.get(f"{running.url}/api/alerts", timeout=5).json()
        return next((a for a in body["alerts"] if a["name"] == "sender_silent"), None)

    alert = _until(silent_alert)
    assert alert["subject"] == "labo-sud" and "has sent nothing for" in alert["summary"]
    _until(
        lambda: (
            'carebroker_alerts_firing{alert="sender_silent",subject="labo-sud"} 1.0'
            in httpx.get(f"{running.url}/metrics", timeout=5).text
        )
    )
    metrics = httpx.get(f"{running.url}/metrics", timeout=10).text
    assert "carebroker_store_up 1.0" in metrics and "carebroker_outbox_backlog" in metrics

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        """Run `carebroker audit ...` against this running instance, found by its data dir."""
        return subprocess.run(
            [*carebroker_command(), "audit", *args, "--data-dir", str(running.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
            env=ENV,
        )

    def verified() -> str | None:
        done = audit("verify")
        assert done.returncode == 0, done.stderr
        return done.stdout if "audit trail intact: 0 event" not in done.stdout else None

    assert "audit trail intact:" in _until(verified)  # the alert_changed event, chained
    exported = audit("export", "--format", "fhir")
    assert exported.returncode == 0, exported.stderr
    assert '"code": "alert_changed"' in exported.stdout
    running.stop(signal.SIGTERM, timeout=10)
    assert running.process.returncode == 0, running.output()
    assert "Traceback" not in running.output()
