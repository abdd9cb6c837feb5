"""The alerts page's API: alerts with their state, acknowledged and silenced, and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from broker import alerts
from broker.store.audit import AuditWriter
from tests.integration.console.conftest import Console, audit, cli_token, get_as
from tests.integration.console.traffic import add_delivery


async def as_operator(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await cli_token(client, 'otto')}"}


async def monitor(console: Console) -> list[alerts.Alert]:
    """Run the audit role's alert check once, as it does every alert_interval_s."""
    check = alerts.AlertMonitor(
        console.ctx.stores.alerts, lambda: console.ctx.directory, console.ctx.settings
    )
    return await check.check()


def firing(state: dict[str, Any], name: str, subject: str) -> dict[str, Any]:
    return next(a for a in state["alerts"] if (a["name"], a["subject"]) == (name, subject))


async def test_acknowledge_and_silence_show_on_the_alert_and_in_its_history(
    console: Console, client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    await add_delivery(pool, "chu-montpellier", status="dead", received_ago_s=60)
    await monitor(console)
    operator = await as_operator(client)

    state = await get_as(client, "/api/alerts/state")
    dead = firing(state, "dead_letters", "chu-montpellier")
    assert dead["since"] is not None
    assert dead["acknowledged"] is None and dead["silenced"] is None

    ack = await client.post(
        "/api/alerts/acknowledge",
        json={"name": "dead_letters", "subject": "chu-montpellier", "reason": "calling the CHU"},
        headers=operator,
    )
    assert ack.status_code == 200, ack.text
    assert (ack.json()["by"], ack.json()["reason"]) == ("user:otto", "calling the CHU")
    silence = await client.post(
        "/api/alerts/silence",
        json={
            "name": "dead_letters",
            "subject": "chu-montpellier",
            "reason": "CHU interface down until tonight",
            "hours": 4,
        },
        headers=operator,
    )
    assert silence.status_code == 200, silence.text
    until = datetime.fromisoformat(silence.json()["until"])
    assert timedelta(hours=3.9) < until - datetime.now(UTC) <= timedelta(hours=4)

    await AuditWriter(pool).drain_all()  # as the audit role does, so history can read the trail
    state = await get_as(client, "/api/alerts/state")
    dead = firing(state, "dead_letters", "chu-montpellier")
    # Silenced alerts still show, marked.
    assert dead["acknowledged"]["by"] == "user:otto"
    assert dead["silenced"]["reason"] == "CHU interface down until tonight"
    assert [s["subject"] for s in state["silences"]] == ["chu-montpellier"]
    history = [
        (h["alert"], h["subject"], h["change"], h["actor"], h["reason"])
        for h in state["history"]
        if h["alert"] == "dead_letters"
    ]
    assert history == [
        (
            "dead_letters",
            "chu-montpellier",
            "silenced",
            "user:otto",
            "CHU interface down until tonight",
        ),
        ("dead_letters", "chu-montpellier", "acknowledged", "user:otto", "calling the CHU"),
        ("dead_letters", "chu-montpellier", "firing", "alerts", None),
    ]

    # A second acknowledgement keeps the first and records nothing.
    again = await client.post(
        "/api/alerts/acknowledge",
        json={"name": "dead_letters", "subject": "chu-montpellier", "reason": "me too"},
        headers=operator,
    )
    assert again.json()["reason"] == "calling the CHU"
    ended = await client.post(
        "/api/alerts/unsilence",
        json={"name": "dead_letters", "subject": "chu-montpellier", "reason": "CHU back"},
        headers=operator,
    )
    assert ended.status_code == 200 and ended.json() == []
    changes = [e["detail"] for e in await audit(pool) if e["kind"] == "alert_changed"]
    assert [c["action"] for c in changes] == ["unsilenced"]  # the rest was chained above

    # Resolved, then firing again: a new occurrence, not acknowledged.
    await pool.execute(
        "UPDATE deliveries SET status = 'delivered' WHERE recipient = $1", "chu-montpellier"
    )
    await monitor(console)
    await add_delivery(pool, "chu-montpellier", status="dead", received_ago_s=5)
    await monitor(console)
    dead = firing(await get_as(client, "/api/alerts/state"), "dead_letters", "chu-montpellier")
    assert dead["acknowledged"] is None and dead["silenced"] is None


async def test_only_recorded_alerts_can_be_acknowledged_and_silences_are_bounded(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    operator = await as_operator(client)
    missing = await client.post(
        "/api/alerts/acknowledge",
        json={"name": "queue_stale", "subject": "cabinet-dupont", "reason": "seen"},
        headers=operator,
    )
    assert missing.status_code == 404 and "recorded as firing" in missing.json()["detail"]
    for body in (
        {"name": "no_such_alert", "subject": "x", "reason": "r", "hours": 1},
        {"name": "queue_stale", "subject": "x", "reason": "", "hours": 1},
        {"name": "queue_stale", "subject": "x", "reason": "r", "hours": 0},
        {"name": "queue_stale", "subject": "x", "reason": "r", "hours": 24 * 31},
    ):
        response = await client.post("/api/alerts/silence", json=body, headers=operator)
        assert response.status_code == 422, body
    # A silence may be set before an alert fires (planned maintenance).
    planned = await client.post(
        "/api/alerts/silence",
        json={
            "name": "queue_stale",
            "subject": "cabinet-dupont",
            "reason": "maintenance",
            "hours": 1,
        },
        headers=operator,
    )
    assert planned.status_code == 200
    state = await get_as(client, "/api/alerts/state")
    assert state["alerts"] == [] and [s["subject"] for s in state["silences"]] == ["cabinet-dupont"]
