"""An operator reads, on a message's page, what became of each MSSanté mail and the ZAMs sent back.

The in-process pipeline of the MSSanté tests (MLLP in, real SMTP and IMAP
servers, the console role on its HTTP port): a CI-SIS request goes out as
three mails, the recipients' servers' notices come back through the mailbox,
and the page shows, per recipient, delivered / failed with the server's words /
sent, and the ZAM^Z02 sent to the lab.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import sign_in_with_keyboard
from tests.cisis import example
from tests.conftest import wait_for
from tests.e2e.console import users_add
from tests.integration.mssante.conftest import MailPipeline, mail_pipeline
from tests.mail import dsn

__all__ = ["mail_pipeline"]  # the MSSanté tests' pipeline, as a fixture here

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HODA = "adam.hoda@test-ci-sis.mssante.fr"
APPLI = "appliExemple@hopitalB.mssante.fr"


async def test_the_message_page_shows_each_mssante_recipient_and_the_zams(
    mail_pipeline: MailPipeline, context: BrowserContext, database_url: str
) -> None:
    users_add(database_url, "otto", "operator")
    assert "MSA|AA|" in await mail_pipeline.send(example("oru_ex0"))
    pool = mail_pipeline.pipeline.pool

    async def mails() -> dict[str, uuid.UUID] | None:
        rows = await pool.fetch(
            "SELECT d.id, d.recipient FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE m.control_id = 'ORU-EX0' AND d.kind = 'message' AND d.status = 'delivered'"
        )
        return {r["recipient"]: r["id"] for r in rows} if len(rows) == 3 else None

    sent = await wait_for(mails, timeout=30)
    hoda, appli = sent[f"mssante:{HODA}"], sent["hopital-b-appli"]
    mail_pipeline.imap.append(dsn(original_message_id=f"<{hoda}@carebroker.test>", recipient=HODA))
    mail_pipeline.imap.append(
        dsn(
            original_message_id=f"<{appli}@carebroker.test>",
            recipient=APPLI,
            action="failed",
            status="5.1.1",
            diagnostic=f"smtp; 550 5.1.1 <{APPLI}>: Recipient address rejected",
            notice_id="<dsn-2@mx.hopitalB.mssante.fr>",
        )
    )
    await wait_for(lambda: len(mail_pipeline.labo.processed) >= 2, timeout=30)
    message = await pool.fetchval("SELECT id FROM messages WHERE control_id = 'ORU-EX0'")

    page = await context.new_page()
    await sign_in_with_keyboard(
        page, f"{mail_pipeline.pipeline.url}/console/messages/{message}", "otto"
    )
    table = page.locator("#mail-table")
    await expect(table.locator(f'tr[data-mail="{hoda}"] [data-field="state"]')).to_contain_text(
        "delivered"
    )
    failed = table.locator(f'tr[data-mail="{appli}"]')
    await expect(failed.locator('[data-field="state"]')).to_contain_text("failed")
    await expect(failed.locator('[data-field="words"]')).to_contain_text("5.1.1")
    patient = table.locator("tr", has_text="patient (MSSanté)")
    await expect(patient.locator('[data-field="state"]')).to_contain_text("sent")
    await expect(page.locator("#zam-table tbody tr")).to_have_count(2)
    await expect(page.locator("#zam-table")).to_contain_text("ZAM^Z02")
    assert "146026322000196" not in await page.content()
