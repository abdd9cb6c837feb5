"""Operators, viewers and admins use the console in a real browser."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import BrowserContext, expect

from tests.browser.conftest import sign_in_with_keyboard
from tests.e2e.conftest import Running
from tests.e2e.console import PASSWORD, users_add
from tests.integration.console.traffic import add_delivery, add_message

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


async def test_operator_watches_flows_update_without_reloading(
    console_server: Running,
    context: BrowserContext,
    pool: asyncpg.Pool,
    output_dir: Path,
) -> None:
    for _ in range(3):
        await add_message(pool, "chu-montpellier", ago_s=20)
    await add_delivery(
        pool, "cabinet-dupont", status="delivered", received_ago_s=90, delivered_ago_s=88
    )
    await add_delivery(pool, "cabinet-dupont", status="pending", received_ago_s=400)
    await add_delivery(
        pool, "chu-montpellier", status="failed", received_ago_s=60, last_error="connection refused"
    )
    page = await context.new_page()
    await sign_in_with_keyboard(page, f"{console_server.url}/console/flows", "otto")
    assert "/console/flows" in page.url
    await expect(page.locator("#user")).to_have_text("otto")
    await expect(page.locator("#role")).to_have_text("operator")
    received = page.locator("#total-received_5m")
    # 3 from the hospital, 2 behind the deliveries (the third arrived 400 s ago)
    await expect(received).to_have_text("5")
    chu_in = page.locator('#inbound tr[data-partner="chu-montpellier"]')
    await expect(chu_in.locator('[data-field="received_5m"]')).to_have_text("3")
    dupont = page.locator('#outbound tr[data-partner="cabinet-dupont"]')
    await expect(dupont.locator('[data-field="state"]')).to_have_text("backlog")
    await expect(dupont.locator('[data-field="queued"]')).to_have_text("1")
    chu_out = page.locator('#outbound tr[data-partner="chu-montpellier"]')
    await expect(chu_out.locator('[data-field="state"]')).to_have_text("failing")
    assert await page.locator("figure.chart svg rect").count() == 180  # 3 charts x 60 minutes
    await page.screenshot(path=output_dir / "console-flows.png", full_page=True)

    # New traffic appears without a reload.
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    for _ in range(4):
        await add_message(pool, "chu-montpellier")
    await expect(received).to_have_text("9", timeout=15_000)
    await expect(chu_in.locator('[data-field="received_5m"]')).to_have_text("7")
    assert navigations == []

    # Every page has the navigation.
    await page.get_by_role("link", name="Messages").click()
    await expect(page.locator("h1")).to_have_text("Messages")
    await expect(page.locator("#messages tbody tr")).to_have_count(10)
    await page.get_by_role("link", name="Dead letters").click()
    await expect(page.locator("#dead-letters tbody tr")).to_have_count(1)  # the failed one
    await page.get_by_role("link", name="Alerts").click()
    await expect(page.locator("#firing h2")).to_have_text("Firing now")
    await page.get_by_role("link", name="Partners").click()
    card = page.locator('section.partner[data-partner="chu-montpellier"]')
    await expect(card).to_contain_text("127.0.0.1:7001")
    await expect(card).to_contain_text("connection refused")
    await expect(page.locator("#reload")).to_have_count(0)  # admins only
    await page.screenshot(path=output_dir / "console-partners.png", full_page=True)

    # French, kept across pages.
    await page.get_by_role("link", name="Français").click()
    await expect(page.locator("h1")).to_have_text("Partenaires")
    await page.get_by_role("link", name="Flux").click()
    await expect(page.locator("#total-received_5m")).to_have_text("9")
    await expect(page.locator("#outbound caption")).to_contain_text("Sortants")
    await page.screenshot(path=output_dir / "console-flows-fr.png", full_page=True)

    await page.get_by_role("button", name="Se déconnecter").click()
    await page.wait_for_url("**/console/login")
    await page.goto(f"{console_server.url}/console/flows")
    assert "/console/login" in page.url


async def test_viewer_sees_flows_but_cannot_change_or_administer(
    console_server: Running, browser_context_fr: BrowserContext
) -> None:
    page = await browser_context_fr.new_page()
    await sign_in_with_keyboard(page, f"{console_server.url}/console/partners", "vera")
    # French from Accept-Language, and back to the page asked for.
    await expect(page.locator("h1")).to_have_text("Partenaires")
    await expect(page.locator("#role")).to_have_text("lecteur")
    nav = page.get_by_role("navigation")
    await expect(nav.get_by_role("link")).to_have_count(5)  # no Users for a viewer
    await expect(page.locator("#reload")).to_have_count(0)
    csrf = await page.evaluate("document.body.dataset.csrf")
    # Even with its CSRF token, the viewer's session cannot reload partners or read users.
    reload = await page.request.post(
        f"{console_server.url}/api/partners/reload", headers={"X-CSRF-Token": csrf}
    )
    assert reload.status == 403
    assert (await page.request.get(f"{console_server.url}/api/users")).status == 403
    await page.goto(f"{console_server.url}/console/users")
    await expect(page.locator("#page")).to_contain_text("administrateur")


async def test_admin_reloads_partners_and_adds_a_user(
    console_server: Running, context: BrowserContext, database_url: str
) -> None:
    page = await context.new_page()
    await sign_in_with_keyboard(page, f"{console_server.url}/console/partners", "ada")
    reload = page.locator("#reload")
    await reload.focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("dialog")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")  # cancelling changes nothing
    await expect(dialog).to_have_count(0)
    await expect(page.locator("#action-status")).to_have_text("")
    await reload.click()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#action-status")).to_have_text(
        "Configuration reloaded (no change): 5 partners"
    )

    await page.get_by_role("link", name="Users").click()
    await expect(page.locator('#users tr[data-user="otto"]')).to_contain_text("active")
    await page.fill("#new-name", "nadia")
    await page.select_option("#new-role", "operator")
    await page.fill("#new-password", PASSWORD)
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#action-status")).to_have_text("User added: nadia")
    await expect(page.locator('#users tr[data-user="nadia"]')).to_be_visible()

    # The new user signs in in another browser profile.
    other = await context.browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[union-attr]
    second = await other.new_page()
    await sign_in_with_keyboard(second, f"{console_server.url}/console/flows", "nadia")
    await expect(second.locator("#role")).to_have_text("operator")
    await other.close()
    # And the command line sees the name as taken.
    with pytest.raises(AssertionError, match="already exists"):
        users_add(database_url, "nadia", "viewer")
