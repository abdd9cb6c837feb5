"""Search a store of 1,000,000 messages: the right rows, found through indexes (EXPLAIN).

Speed is not asserted here (the machine is shared); ``carebroker bench
search`` measures it. What is asserted is what makes it fast at any size:
the plan PostgreSQL runs for the API's own statement reads the rows through
an index, reads only the days asked for, and no sequential scan reads a row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from broker.commands.bench_search import PATIENT_AUTHORITY, RECIPIENTS, control_id, patient_id
from broker.console.settings import ConsoleSettings
from broker.store import search
from tests.integration.console.conftest import BASE, build, cli_token
from tests.integration.search.conftest import PSEUDONYMIZER, Million

pytestmark = pytest.mark.slow


async def explain(pool: asyncpg.Pool, query: search.Query) -> dict[str, Any]:
    """Run the statement under EXPLAIN ANALYZE, planned as ``search.find`` plans it."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        text = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query.sql}", *query.args)
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    return plan


def scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every node of the plan that reads a table."""
    found = [plan] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def rows_read_sequentially(plan: dict[str, Any]) -> int:
    return sum(
        node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        for node in scans(plan)
        if node["Node Type"] == "Seq Scan"
    )


def indexes_used(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


@pytest.fixture
async def api(million: Million, tmp_path: Path) -> httpx.AsyncClient:
    console = build(million.dsn, million.pool, tmp_path, ConsoleSettings(flows_cache_s=0))
    console.ctx.pseudonymizer = PSEUDONYMIZER
    transport = httpx.ASGITransport(app=console.app)  # type: ignore[arg-type]
    client = httpx.AsyncClient(transport=transport, base_url=BASE)
    token = await cli_token(client, "otto")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


async def test_the_store_holds_a_million_messages_over_thirty_daily_partitions(
    million: Million,
) -> None:
    assert await million.pool.fetchval("SELECT count(*) FROM messages") == 1_000_000
    days = await million.pool.fetchval(
        "SELECT count(DISTINCT tableoid) FROM messages WHERE received_at < $1",
        datetime.combine(million.seeded.first_day, datetime.min.time(), UTC) + timedelta(days=30),
    )
    assert days == 30


async def test_a_control_id_finds_its_message_through_the_index(
    million: Million, api: httpx.AsyncClient
) -> None:
    n = 777_777
    body = (await api.get("/api/messages", params={"control_id": control_id(n)})).json()
    [found] = body["messages"]
    assert datetime.fromisoformat(found["received_at"]) == million.seeded.received_at(n)
    assert body["next"] is None

    plan = await explain(million.pool, search.build(search.Filters(control_id=control_id(n)), 100))
    used = indexes_used(plan)
    assert used and all("control_id" in name for name in used), used
    assert rows_read_sequentially(plan) == 0


async def test_a_patient_search_finds_exactly_their_messages_through_the_index(
    million: Million, api: httpx.AsyncClient
) -> None:
    patient = 12_345
    expected = [control_id(n) for n in reversed(million.seeded.messages_of(patient))]
    assert len(expected) == 20
    params = {"patient_authority": PATIENT_AUTHORITY, "patient_id": patient_id(patient)}
    seen: list[str] = []
    cursor = None
    while True:
        page = {**params, "limit": "8", **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/api/messages", params=page)).json()
        seen += [m["control_id"] for m in body["messages"]]
        if (cursor := body["next"]) is None:
            break
    assert seen == expected  # all of them, newest first, across three pages

    searched = await million.pool.fetch(
        "SELECT event FROM audit_pending WHERE event->>'kind' = 'patient_searched'"
    )
    assert len(searched) >= 3
    assert patient_id(patient) not in str([r["event"] for r in searched])

    digest = PSEUDONYMIZER.digest(PATIENT_AUTHORITY, patient_id(patient))
    plan = await explain(million.pool, search.build(search.Filters(patient_digest=digest), 100))
    used = indexes_used(plan)
    assert used and all("patient_digests" in name for name in used), used
    assert rows_read_sequentially(plan) == 0


async def test_a_time_range_reads_only_its_days(million: Million, api: httpx.AsyncClient) -> None:
    first = datetime.combine(million.seeded.first_day, datetime.min.time(), UTC)
    since, until = first + timedelta(days=10), first + timedelta(days=12)
    filters = search.Filters(sender="labo-sud", status="rejected", since=since, until=until)
    body = (
        await api.get(
            "/api/messages",
            params={
                "sender": "labo-sud",
                "status": "rejected",
                "since": since.isoformat(),
                "until": until.isoformat(),
                "limit": "1000",
            },
        )
    ).json()
    assert body["messages"] and body["next"] is None
    for message in body["messages"]:
        assert since <= datetime.fromisoformat(message["received_at"]) < until
        assert (message["sender"], message["status"]) == ("labo-sud", "rejected")
    # All of them: the same count as a direct query of those two days' partitions.
    direct = await million.pool.fetchval(
        "SELECT count(*) FROM messages WHERE sender = 'labo-sud' AND status = 'rejected'"
        " AND received_at >= $1 AND received_at < $2",
        since,
        until,
    )
    assert len(body["messages"]) == direct

    plan = await explain(million.pool, search.build(filters, 1000))
    read = {node["Relation Name"] for node in scans(plan)}
    days = {f"messages_p{(since + timedelta(days=k)):%Y%m%d}" for k in range(2)}
    assert read == days, read  # 28 other days pruned
    assert rows_read_sequentially(plan) == 0


async def test_a_recipients_pages_are_read_in_index_order(
    million: Million, api: httpx.AsyncClient
) -> None:
    recipient = RECIPIENTS[1]
    first = (await api.get("/api/messages", params={"recipient": recipient})).json()
    second = (
        await api.get("/api/messages", params={"recipient": recipient, "cursor": first["next"]})
    ).json()
    listed = first["messages"] + second["messages"]
    assert len(listed) == 200
    assert all(recipient in m["recipients"] for m in listed)
    keys = [(m["received_at"], m["id"]) for m in listed]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 200
    # Nothing skipped: the 200 newest messages with a delivery to the recipient.
    newest = await million.pool.fetch(
        "SELECT message_id FROM deliveries WHERE recipient = $1"
        " ORDER BY message_received_at DESC, message_id DESC LIMIT 200",
        recipient,
    )
    assert [m["id"] for m in listed] == [str(r["message_id"]) for r in newest]

    cursor = search.Cursor.decode(first["next"])
    plan = await explain(
        million.pool, search.build(search.Filters(recipient=recipient), 100, cursor)
    )
    assert "deliveries_recipient_message" in indexes_used(plan)
    assert rows_read_sequentially(plan) == 0
    deliveries_read = sum(
        n["Actual Rows"] * n["Actual Loops"]
        for n in scans(plan)
        if n["Relation Name"] == "deliveries"
    )
    assert deliveries_read <= 101  # one page of index entries, not the recipient's 300,000


async def test_dead_letters_come_from_their_own_index_each_message_once(
    million: Million, api: httpx.AsyncClient
) -> None:
    body = (await api.get("/api/messages", params={"delivery_status": "dead"})).json()
    listed = body["messages"]
    assert len(listed) == 100 and len({m["id"] for m in listed}) == 100
    assert all(m["deliveries"].get("dead") for m in listed)
    newest = await million.pool.fetch(
        "SELECT DISTINCT message_received_at, message_id FROM deliveries WHERE status = 'dead'"
        " ORDER BY message_received_at DESC, message_id DESC LIMIT 100"
    )
    assert [m["id"] for m in listed] == [str(r["message_id"]) for r in newest]

    plan = await explain(million.pool, search.build(search.Filters(delivery_status="dead"), 100))
    assert "deliveries_in_trouble" in indexes_used(plan)
    assert rows_read_sequentially(plan) == 0
