"""Operators follow a message sent over MLLP in the browser: find it, read it, replay it, retry.

carebroker runs as deployed, in one process with every role it needs
(``carebroker run --role mllp --role relay --role router --role delivery
--role audit --role console``) on the test's database and the session's
tansu; the partners it delivers to are real MLLP and FHIR receivers in the
test (``tests/sinks.py``). The message goes in with python-hl7's MLLP client,
as a laboratory's interface would send it.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import hl7
import pytest
from hl7.mllp import open_hl7_connection
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in_with_keyboard
from tests.conftest import wait_for
from tests.e2e.conftest import Running
from tests.e2e.console import start_console, users_add
from tests.integration.routing.conftest import partners_yaml, sinks
from tests.messages import ORU, variant
from tests.sinks import FhirSink, MllpSink

__all__ = ["sinks"]  # the routing tests' partner receivers, as a fixture here

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ROLES = ("mllp", "relay", "router", "delivery", "audit", "console")
Sinks = tuple[MllpSink, MllpSink, FhirSink]


@pytest.fixture
def broker(
    tmp_path: Path,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    sinks: Sinks,
    carebroker: list[Running],
) -> Running:
    """carebroker with every role a message needs, delivering to the test's partner sinks."""
    chu, dupont, fhir = sinks
    partners = tmp_path / "partners.yaml"
    partners.write_text(partners_yaml(chu.port, dupont.port, fhir.url))
    for name, role in (("otto", "operator"), ("vera", "viewer")):
        users_add(database_url, name, role)
    running = start_console(
        tmp_path, database_url, kafka_bootstrap, topic_prefix, ROLES, config=partners
    )
    carebroker.append(running)
    running.wait_healthy(90)
    return running


async def send_over_mllp(running: Running, control_id: str) -> str:
    """Send the lab's ORU^R01 with python-hl7's MLLP client; return MSA-1 of the ACK."""
    message = hl7.parse(variant(ORU, control_id).decode())
    reader, writer = await open_hl7_connection("127.0.0.1", running.mllp_port)
    try:
        writer.writemessage(message)
        await writer.drain()
        async with asyncio.timeout(20):
            ack = await reader.readmessage()
    finally:
        writer.close()
    return str(ack.segment("MSA")[1])


async def open_message(page: Page, control_id: str) -> None:
    """Search the Messages page by control id and open the one message found."""
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.fill("#f-control_id", control_id)
    await page.keyboard.press("Enter")
    link = page.locator("#messages tbody a")
    await expect(link).to_have_count(1)
    await expect(link).to_have_text(control_id)
    await link.click()
    await expect(page.locator("#title")).to_have_text(f"Message {control_id}")


async def confirm_with_reason(page: Page, reason: str) -> None:
    dialog = page.locator("dialog")
    await expect(dialog).to_be_visible()
    await page.fill("#dialog-reason", reason)
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog).to_have_count(0)


async def test_operator_finds_a_message_reads_its_timeline_and_ack_then_replays_it(
    broker: Running,
    sinks: Sinks,
    context: BrowserContext,
    pool: asyncpg.Pool,
    output_dir: Path,
) -> None:
    _, dupont, fhir = sinks
    control_id = f"BRW-{uuid.uuid4().hex[:8]}"
    assert await send_over_mllp(broker, control_id) == "AA"
    await wait_for(lambda: control_id in dupont.processed_ids(), timeout=60)

    page = await context.new_page()
    await sign_in_with_keyboard(page, f"{broker.url}/console/messages", "otto")
    await open_message(page, control_id)
    message_url = page.url

    # Deliveries: where it went, by which rule, with the partner's ACK code.
    dupont_row = page.locator('#delivery-table tr[data-recipient="cabinet-dupont"]')
    await expect(dupont_row.locator('[data-field="status"]')).to_have_text("delivered")
    await expect(dupont_row.locator('[data-field="ack"]')).to_have_text("AA")
    await expect(dupont_row).to_contain_text("ordering-provider")
    nord_row = page.locator('#delivery-table tr[data-recipient="maison-sante-nord"]')
    await expect(nord_row.locator('[data-field="ack"]')).to_have_text("HTTP 200", timeout=30_000)
    # The timeline fills in as the audit writer chains the hops (the page polls).
    timeline = page.locator("#timeline")
    await expect(timeline.locator('li[data-kind="received"]')).to_have_count(1, timeout=30_000)
    routed = timeline.locator('li[data-kind="routed"]', has_text="cabinet-dupont")
    await expect(routed).to_contain_text("ordering-provider")
    delivered = timeline.locator('li[data-kind="delivered"]', has_text="cabinet-dupont")
    await expect(delivered).to_contain_text("ACK AA", timeout=30_000)
    await page.screenshot(path=output_dir / "console-message.png")

    # The recipient's ACK itself, labelled: needs the operator role, and is audited.
    await page.get_by_role("button", name="Show what was sent: cabinet-dupont").click()
    answer = page.locator("#answer-segments-" + await dupont_row.get_attribute("data-delivery"))
    await expect(answer.locator('tr[data-field="MSA-1"]')).to_contain_text("Acknowledgment Code")
    await expect(answer.locator('tr[data-field="MSA-1"]')).to_contain_text("AA")
    await expect(answer.locator('tr[data-field="MSA-2"]')).to_contain_text(control_id)
    await page.get_by_role("button", name="Show the original message").click()
    pid5 = page.locator('#original-segments tr[data-field="PID-5"]')
    await expect(pid5).to_contain_text("Patient Name")
    await expect(pid5).to_contain_text("Family Name")
    await page.screenshot(path=output_dir / "console-message-content.png", full_page=True)

    # Replay to cabinet-dupont: confirmed with a reason, then a new delivery of the same bytes.
    await page.get_by_role("button", name="Replay: cabinet-dupont").click()
    await confirm_with_reason(page, "practice restored its inbox from a backup")
    await expect(page.locator("#action-status")).to_have_text(
        "Replayed: 1 delivery(ies) queued again"
    )
    await expect(dupont_row.locator('[data-field="replays"]')).to_have_text("1", timeout=30_000)
    await expect(timeline.locator('li[data-kind="replayed"]')).to_contain_text(
        "practice restored its inbox from a backup", timeout=30_000
    )
    await expect(delivered).to_have_count(2, timeout=30_000)
    # The partner got the same MSH-10 again and recognised it as a resend.
    assert dupont.resent == [control_id]
    assert len(fhir.processed) == 1  # maison-sante-nord was not replayed

    viewed = await pool.fetch(
        "SELECT actor, detail->>'part' AS part FROM audit WHERE kind = 'content_viewed'"
        " UNION ALL SELECT event->>'actor', event->'detail'->>'part' FROM audit_pending"
        " WHERE event->>'kind' = 'content_viewed'"
    )
    assert sorted((r["actor"], r["part"]) for r in viewed) == [
        ("user:otto", "delivery"),
        ("user:otto", "original"),
    ]

    # A viewer sees where the message went, and is refused what it says.
    other = await context.browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[union-attr]
    viewer = await other.new_page()
    await sign_in_with_keyboard(viewer, message_url, "vera")
    await expect(viewer.locator("#title")).to_have_text(f"Message {control_id}")
    await expect(
        viewer.locator('#delivery-table tr[data-recipient="cabinet-dupont"]')
    ).to_be_visible()
    await expect(viewer.locator("#content-refused")).to_contain_text("operators only")
    await expect(viewer.get_by_role("button", name="Show the original message")).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Replay to all recipients")).to_have_count(0)
    message_id = message_url.rsplit("/", 1)[1]
    refused = await viewer.request.get(f"{broker.url}/api/messages/{message_id}/content")
    assert refused.status == 403
    assert "MARTIN" not in await refused.text()
    await other.close()


async def test_a_dead_letter_is_retried_from_the_page(
    broker: Running, sinks: Sinks, context: BrowserContext, pool: asyncpg.Pool
) -> None:
    _, dupont, _ = sinks
    control_id = f"DLQ-{uuid.uuid4().hex[:8]}"
    dupont.answers[control_id] = "AE"  # the practice refuses it: a dead letter
    assert await send_over_mllp(broker, control_id) == "AA"

    async def failed() -> bool:
        status = await pool.fetchval(
            "SELECT status FROM deliveries WHERE control_id = $1 AND recipient = 'cabinet-dupont'",
            control_id,
        )
        return status == "failed"

    await wait_for(failed, timeout=60)

    page = await context.new_page()
    await sign_in_with_keyboard(page, f"{broker.url}/console/dead-letters", "otto")
    row = page.locator(f'#dead-letters tr[data-control-id="{control_id}"]')
    await expect(row).to_contain_text("cabinet-dupont")
    await expect(row).to_contain_text("AE")
    retry = page.locator("#retry-selected")
    await expect(retry).to_be_disabled()
    await row.get_by_role("checkbox").check()
    await expect(retry).to_have_text("Retry selected (1)")

    dupont.answers.pop(control_id)  # the practice fixed its side
    await retry.click()
    # The reason is required: confirming without one says so and keeps the dialog open.
    await page.locator("dialog").get_by_role("button", name="Confirm").click()
    await expect(page.locator("#dialog-problem")).to_be_visible()
    await confirm_with_reason(page, "practice fixed its PID-5 check")
    await expect(page.locator("#action-status")).to_have_text("Queued again: 1")
    await expect(row).to_have_count(0)
    await wait_for(lambda: control_id in dupont.processed_ids(), timeout=60)
    await expect(page.locator("#no-dead-letters")).to_be_visible()

    # The message page shows the refusal, the retry and the delivery, in order.
    await page.goto(f"{broker.url}/console/dead-letters")
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.fill("#f-control_id", control_id)
    await page.keyboard.press("Enter")
    await page.locator("#messages tbody a").click()
    kinds = page.locator("#timeline li")
    await expect(page.locator('#timeline li[data-kind="delivered"]')).to_have_count(
        2, timeout=30_000
    )
    listed = await kinds.evaluate_all("items => items.map(i => i.dataset.kind)")
    dupont_events = [k for k in listed if k in ("failed", "dead_lettered", "replayed", "delivered")]
    assert dupont_events.index("failed") < dupont_events.index("replayed")
    assert dupont_events[-1] == "delivered"

    # Pause delivery to the practice from the Partners page: its messages wait, others flow.
    await page.get_by_role("link", name="Partners").click()
    card = page.locator('section.partner[data-partner="cabinet-dupont"]')
    await card.get_by_role("button", name="Pause delivery: Cabinet médical Dupont").click()
    await confirm_with_reason(page, "practice software upgrade")
    await expect(card.locator("button.pause")).to_have_text("Resume delivery")
    await expect(card).to_contain_text("practice software upgrade")
    held = f"HLD-{uuid.uuid4().hex[:8]}"
    assert await send_over_mllp(broker, held) == "AA"

    async def status_of(recipient: str) -> tuple[str, int] | None:
        row = await pool.fetchrow(
            "SELECT status, attempts FROM deliveries WHERE control_id = $1 AND recipient = $2",
            held,
            recipient,
        )
        return (row["status"], row["attempts"]) if row else None

    async def nord_delivered() -> bool:
        return await status_of("maison-sante-nord") == ("delivered", 1)

    # maison-sante-nord's delivery was routed in the same transaction and is delivered:
    # the dispatcher has looked at both since, and left the paused practice's alone.
    await wait_for(nord_delivered, timeout=60)
    assert await status_of("cabinet-dupont") == ("pending", 0)
    assert held not in [r.control_id for r in dupont.received]
    await card.get_by_role("button", name="Resume delivery: Cabinet médical Dupont").click()
    await confirm_with_reason(page, "upgrade done")
    await expect(card.locator("button.pause")).to_have_text("Pause delivery")
    await wait_for(lambda: held in dupont.processed_ids(), timeout=60)
