"""Alerts carebroker evaluates itself, on a real PostgreSQL: silence, stale queues, dead letters,
certificates; shown at /api/alerts and as a metric, each start and end audited once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from broker import alerts
from broker.directory import parse_directory
from broker.settings import Settings
from broker.store import audit
from broker.store.alerts import AlertStore
from broker.store.audit import AuditWriter
from tests.certs import self_signed_certificate
from tests.integration.audit.conftest import accept
from tests.integration.observe.conftest import http_get
from tests.integration.observe.test_metrics import insert_delivery, scrape, value

DIRECTORY = parse_directory(
    {
        "partners": [
            {"id": "labo-sud", "name": "Labo", "kind": "lab", "expected_interval_s": 600},
            {"id": "chu-montpellier", "name": "CHU", "kind": "hospital", "expected_interval_s": 60},
            {"id": "cabinet-dupont", "name": "Cabinet", "kind": "gp"},
        ]
    }
)


def test_evaluate_is_pure_and_applies_each_threshold() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    settings = Settings(alert_queue_age_minutes=30, alert_certificate_days=30)
    facts = alerts.Facts(
        now=now,
        watching_since=now - timedelta(hours=1),
        last_received={"labo-sud": now - timedelta(minutes=5), "chu-montpellier": None},
        oldest_pending={"cabinet-dupont": now - timedelta(minutes=31), "labo-sud": now},
        dead={"chu-montpellier": 2},
        certificates={
            "/etc/ok.pem": now + timedelta(days=90),
            "/etc/soon.pem": now + timedelta(days=3),
        },
    )
    found = {(a.name, a.subject): a for a in alerts.evaluate(facts, DIRECTORY, settings)}
    # chu-montpellier never sent, is watched for an hour and expected every 60 s.
    assert set(found) == {
        ("sender_silent", "chu-montpellier"),
        ("queue_stale", "cabinet-dupont"),
        ("dead_letters", "chu-montpellier"),
        ("certificate_expiring", "/etc/soon.pem"),
    }
    assert (
        found[("dead_letters", "chu-montpellier")].summary
        == "chu-montpellier: 2 dead-lettered deliveries"
    )
    assert found[("certificate_expiring", "/etc/soon.pem")].summary == (
        "certificate /etc/soon.pem expires in 3 d"
    )
    quiet = Settings(alert_dead_letters=False, alert_queue_age_minutes=60)
    names = {a.name for a in alerts.evaluate(facts, DIRECTORY, quiet)}
    assert "dead_letters" not in names and "queue_stale" not in names


async def test_alerts_fire_show_and_resolve_once_each(pool: asyncpg.Pool, tmp_path: Path) -> None:
    soon, _ = self_signed_certificate(tmp_path / "soon", days=2)
    settings = Settings(
        alert_queue_age_minutes=5, mllp={"tls_cert": soon}, audit_syslog_ca=tmp_path / "missing.pem"
    )
    monitor = alerts.AlertMonitor(AlertStore(pool), lambda: DIRECTORY, settings)
    monitor.started = datetime.now(UTC) - timedelta(minutes=2)
    await accept(pool, "C1", sender="labo-sud")  # labo-sud sent recently: not silent
    await insert_delivery(pool, "cabinet-dupont", "pending", timedelta(minutes=6))
    await insert_delivery(pool, "chu-montpellier", "dead")

    firing = await monitor.check()
    assert {(a.name, a.subject) for a in firing} == {
        ("sender_silent", "chu-montpellier"),
        ("queue_stale", "cabinet-dupont"),
        ("dead_letters", "chu-montpellier"),
        ("certificate_expiring", str(tmp_path / "soon" / "cert.pem")),
        ("certificate_expiring", str(tmp_path / "missing.pem")),
    }
    await monitor.check()  # still firing: no new audit event, no new row
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 5

    response = await http_get("/api/alerts", pool, settings=settings, directory=DIRECTORY)
    assert response.status_code == 200
    body = response.json()
    shown = {(a["name"], a["subject"]): a for a in body["alerts"]}
    stale = shown[("queue_stale", "cabinet-dupont")]
    assert stale["since"] is not None and stale["detail"]["limit_s"] == 300
    assert shown[("certificate_expiring", str(tmp_path / "missing.pem"))]["summary"].endswith(
        "cannot be read"
    )
    _, samples = await scrape(pool)
    assert (
        value(samples, "carebroker_alerts_firing", alert="dead_letters", subject="chu-montpellier")
        == 1
    )

    # The queue drains and the dead letter is dealt with: both resolve, once.
    await pool.execute("UPDATE deliveries SET status = 'delivered'")
    firing = await monitor.check()
    assert {a.name for a in firing} == {"sender_silent", "certificate_expiring"}
    await AuditWriter(pool).drain_all()
    changes = [
        (r.detail["alert"], r.detail["subject"], r.detail["state"])
        for r in await audit.read(pool)
        if r.kind == "alert_changed"
    ]
    assert sorted(changes) == sorted(
        [
            ("sender_silent", "chu-montpellier", "firing"),
            ("queue_stale", "cabinet-dupont", "firing"),
            ("dead_letters", "chu-montpellier", "firing"),
            ("certificate_expiring", str(tmp_path / "soon" / "cert.pem"), "firing"),
            ("certificate_expiring", str(tmp_path / "missing.pem"), "firing"),
            ("queue_stale", "cabinet-dupont", "resolved"),
            ("dead_letters", "chu-montpellier", "resolved"),
        ]
    )
    assert await pool.fetchval("SELECT count(*) FROM alerts WHERE resolved_at IS NULL") == 3


def test_a_bundle_expires_with_its_first_certificate_to_expire(tmp_path: Path) -> None:
    late, _ = self_signed_certificate(tmp_path / "late", days=400)
    soon, _ = self_signed_certificate(tmp_path / "soon", days=2)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(late.read_bytes() + soon.read_bytes())
    expires = alerts.certificate_expiry(bundle)
    assert expires is not None and expires == alerts.certificate_expiry(soon)
    (tmp_path / "not-a-cert.pem").write_text("hello")
    assert alerts.certificate_expiry(tmp_path / "not-a-cert.pem") is None
