"""The status API: find messages by control id, sender, status and time; see their deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.integration.routing.conftest import Pipeline
from tests.messages import ORU, REF, variant


async def test_find_messages_and_read_their_deliveries(pipeline: Pipeline) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    oru, ref = await pipeline.accept((variant(ORU, "API-1"), "labo-sud"), (REF, "cabinet-dupont"))
    await pipeline.wait_status([oru.message_id, ref.message_id], {"delivered"})

    async with pipeline.api(signed_in=False) as anonymous:
        assert (await anonymous.get("/api/messages")).status_code == 401
        assert (await anonymous.get(f"/api/messages/{oru.message_id}")).status_code == 401
    async with pipeline.api() as api:
        by_control = (await api.get("/api/messages", params={"control_id": "API-1"})).json()
        assert [m["id"] for m in by_control["messages"]] == [str(oru.message_id)]
        summary = by_control["messages"][0]
        assert (summary["sender"], summary["message_type"], summary["status"]) == (
            "labo-sud",
            "ORU^R01",
            "routed",
        )
        assert summary["deliveries"] == {"delivered": 2}
        by_sender = (await api.get("/api/messages", params={"sender": "cabinet-dupont"})).json()
        assert [m["control_id"] for m in by_sender["messages"]] == ["CD-REF-77"]
        since = (await api.get("/api/messages", params={"since": before.isoformat()})).json()
        assert [m["control_id"] for m in since["messages"]] == ["CD-REF-77", "API-1"]
        later = datetime.now(UTC) + timedelta(minutes=1)
        none = (await api.get("/api/messages", params={"since": later.isoformat()})).json()
        assert none["messages"] == []
        bad = await api.get("/api/messages", params={"status": "lost"})
        assert bad.status_code == 422

        detail = (await api.get(f"/api/messages/{oru.message_id}")).json()
        assert (detail["status"], detail["control_id"], detail["channel"]) == (
            "routed",
            "API-1",
            "mllp",
        )
        deliveries = {d["recipient"]: d for d in detail["deliveries"]}
        dupont = deliveries["cabinet-dupont"]
        assert {k: dupont[k] for k in ("status", "attempts", "last_error", "rule")} == {
            "status": "delivered",
            "attempts": 1,
            "last_error": None,
            "rule": "ordering-provider",
        }
        assert dupont["rules"] == ["ordering-provider", "patient-gp"]
        assert dupont["fields"] == [
            "OBR-16=10001234567",
            "ORC-12=10001234567",
            "PD1-4=10003456789",
        ]
        assert dupont["ack_code"] == "AA"
        assert deliveries["maison-sante-nord"]["ack_code"] == "HTTP 200"
        assert "MARTIN" not in str(detail) and "LS-PAT-42" not in str(detail)

        missing = await api.get(f"/api/messages/{uuid.uuid4()}")
        assert missing.status_code == 404
        openapi = (await api.get("/openapi.json")).json()
        assert "/api/messages/{message_id}" in openapi["paths"]
        assert "/mailbox/{partner}/messages/{delivery_id}/ack" in openapi["paths"]
