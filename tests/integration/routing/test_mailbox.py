"""The mailbox: a partner without an interface lists, fetches and acknowledges over HTTP."""

from __future__ import annotations

import json

from tests.conftest import wait_for
from tests.integration.routing.conftest import MAILBOX_TOKEN, Pipeline
from tests.messages import ORU

BOX = "/mailbox/cabinet-sans-interface/messages"
AUTH = {"Authorization": f"Bearer {MAILBOX_TOKEN}"}


async def test_mailbox_partner_lists_fetches_and_acknowledges(pipeline: Pipeline) -> None:
    raw = ORU.replace(b"|CAREBROKER|REGION|", b"|CAREBROKER|CAB-MAILBOX|")
    [env] = await pipeline.accept((raw, "labo-sud"))

    async def posted() -> bool:
        row = (await pipeline.deliveries(env.message_id)).get("cabinet-sans-interface")
        return row is not None and row["posted_at"] is not None

    await wait_for(posted, timeout=30)
    async with pipeline.api(signed_in=False) as api:  # the partner's own token, or nothing
        assert (await api.get(BOX)).status_code == 401
        assert (await api.get(BOX, headers={"Authorization": "Bearer wrong"})).status_code == 401
        other = await api.get("/mailbox/cabinet-dupont/messages", headers=AUTH)
        assert other.status_code == 403

        listing = (await api.get(BOX, headers=AUTH)).json()
        [entry] = listing["messages"]
        assert (entry["message_id"], entry["control_id"], entry["message_type"]) == (
            str(env.message_id),
            "LS-0001",
            "ORU^R01",
        )
        assert entry["fetched"] is False
        fetched = await api.get(f"{BOX}/{entry['id']}", headers=AUTH)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"].startswith("application/fhir+json")
        assert json.loads(fetched.content)["type"] == "message"  # it reads FHIR
        assert (await api.get(BOX, headers=AUTH)).json()["messages"][0]["fetched"] is True
        # Still pending: fetched is not acknowledged.
        assert (await pipeline.deliveries(env.message_id))["cabinet-sans-interface"][
            "status"
        ] == "pending"

        acked = await api.post(f"{BOX}/{entry['id']}/ack", headers=AUTH)
        assert acked.json() == {"id": entry["id"], "status": "delivered"}
        again = await api.post(f"{BOX}/{entry['id']}/ack", headers=AUTH)
        assert again.json()["status"] == "delivered"  # idempotent
        assert (await api.get(BOX, headers=AUTH)).json()["messages"] == []

    kinds = [
        (e["kind"], e["actor"], e["detail"].get("via"))
        for e in await pipeline.audit(env.message_id)
        if e.get("recipient") == "cabinet-sans-interface"
    ]
    assert kinds == [
        ("routed", "router", None),
        ("translated", "router", None),  # the mailbox partner reads FHIR
        ("delivery_attempted", "delivery", "mailbox"),
        ("delivery_attempted", "partner:cabinet-sans-interface", "mailbox_fetch"),
        ("delivered", "partner:cabinet-sans-interface", "mailbox_ack"),
    ]


async def test_unacknowledged_mailbox_message_is_flagged_to_operators(pipeline: Pipeline) -> None:
    raw = ORU.replace(b"|CAREBROKER|REGION|", b"|CAREBROKER|CAB-MAILBOX|")
    [env] = await pipeline.accept((raw, "labo-sud"))
    delivery = pipeline.services[2].dispatcher  # type: ignore[attr-defined]

    async def flagged() -> bool:
        return await delivery.flag_unacknowledged() == 1  # threshold is 1 s in this file

    await wait_for(flagged, timeout=30, interval=0.3)
    async with pipeline.api() as api:
        body = (await api.get(f"/api/messages/{env.message_id}")).json()
    box = next(d for d in body["deliveries"] if d["recipient"] == "cabinet-sans-interface")
    assert box["flagged"] is True and box["status"] == "pending"
    assert box["last_error"] == "not acknowledged by the partner within 1 s"
    alerts = [e for e in await pipeline.audit(env.message_id) if e["kind"] == "alert_changed"]
    assert [a["detail"]["alert"] for a in alerts] == ["mailbox_unacknowledged"]
    assert await delivery.flag_unacknowledged() == 0  # flagged once
