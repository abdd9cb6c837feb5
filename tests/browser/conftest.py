"""The console in Debian's headless Chromium, driven by Playwright, against a real carebroker.

carebroker is started as a user starts it (``carebroker run --role console``,
the installed command, in a subprocess) on the test's own database; users are
added with ``carebroker users add``. Playwright never downloads a browser
here: it drives ``/usr/bin/chromium`` (CI installs it with ``apt-get install
chromium``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.e2e.conftest import Running, carebroker
from tests.e2e.console import PASSWORD, start_console, users_add

__all__ = ["PASSWORD", "carebroker", "users_add"]  # carebroker: stops what a test started

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USERS = {"otto": "operator", "vera": "viewer", "ada": "admin"}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def console_server(
    tmp_path: Path,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    carebroker: list[Running],
) -> Running:
    """A ``carebroker run --role console`` serving the example partners, with three users."""
    for name, role in USERS.items():
        users_add(database_url, name, role)
    running = start_console(tmp_path, database_url, kafka_bootstrap, topic_prefix)
    carebroker.append(running)
    running.wait_healthy(60)
    return running


@asynccontextmanager
async def _profile(browser: Browser, locale: str) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile at 1280x800 whose Accept-Language asks for English."""
    async with _profile(browser, "en-GB") as made:
        yield made


@pytest.fixture
async def browser_context_fr(browser: Browser) -> AsyncIterator[BrowserContext]:
    """The same, asking for French."""
    async with _profile(browser, "fr-FR") as made:
        yield made


async def sign_in_with_keyboard(page: Page, url: str, name: str) -> None:
    """Open a console page, get sent to sign in, and sign in using the keyboard only."""
    await page.goto(url)
    assert "/console/login" in page.url
    # The form has focus at once: type the name, Tab to the password, Enter.
    assert await page.evaluate("document.activeElement.id") == "name"
    await page.keyboard.type(name)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(lambda u: "/console/login" not in u)
    # On every page the first Tab reaches the skip link, which moves focus to the content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
