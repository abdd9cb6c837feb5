"""The page shell: sign-in redirect, language choice, navigation by role, safe headers."""

from __future__ import annotations

import httpx
import pytest

from broker.console.i18n import LABELS, choose_language
from tests.integration.console.conftest import sign_in


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, "fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        (None, "en-GB,fr;q=0.5", "en"),
        (None, "de-DE, fr;q=0.3", "fr"),
        (None, "fr;q=0.2, en;q=0.9", "en"),
        (None, "fr;q=0", "en"),
        (None, None, "en"),
        ("fr", "en", "fr"),
        ("xx", "fr", "fr"),
    ],
)
def test_language_from_cookie_then_accept_language(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(cookie, header) == expected


def test_both_languages_label_the_same_things() -> None:
    assert LABELS["en"].keys() == LABELS["fr"].keys()


async def test_pages_send_strangers_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/partners")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/partners"
    assert (await client.get("/")).headers["location"] == "/console/flows"
    login = await client.get("/console/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert login.status_code == 200
    assert '<html lang="fr">' in login.text and "Se connecter" in login.text
    assert login.headers["content-security-policy"].startswith("default-src 'self'")
    assert login.headers["x-content-type-options"] == "nosniff"


async def test_navigation_follows_the_role(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await sign_in(client, "vera")
    page = await client.get("/console/flows")
    assert page.status_code == 200
    for label in ("Flows", "Messages", "Partners", "Alerts"):
        assert f">{label}</a>" in page.text
    assert "/console/users" not in page.text
    assert 'href="/console/flows" aria-current="page"' in page.text
    await sign_in(client, "ada")
    assert 'href="/console/users"' in (await client.get("/console/flows")).text
    assert (await client.get("/console/nowhere")).status_code == 404


async def test_a_message_has_its_own_page(client: httpx.AsyncClient, users: dict[str, str]) -> None:
    message_id = "01a2e0c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b"
    stranger = await client.get(f"/console/messages/{message_id}")
    assert stranger.status_code == 303
    assert stranger.headers["location"] == f"/console/login?next=/console/messages/{message_id}"
    await sign_in(client, "vera")
    page = await client.get(f"/console/messages/{message_id.upper()}")
    assert page.status_code == 200
    assert f'data-message="{message_id}"' in page.text and 'data-page="message"' in page.text
    assert 'href="/console/messages" aria-current="page"' in page.text
    assert f"next=/console/messages/{message_id}" in page.text  # the language switch comes back
    for script in ("app.js", "messages.js", "alerts.js"):
        assert f'<script src="/console/static/{script}" defer></script>' in page.text
    assert (await client.get("/console/messages/not-an-id")).status_code == 404


async def test_language_switch_is_remembered_and_cannot_redirect_away(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    await sign_in(client, "vera")
    switch = await client.get("/console/lang/fr", params={"next": "/console/partners"})
    assert switch.status_code == 303 and switch.headers["location"] == "/console/partners"
    page = await client.get("/console/partners", headers={"Accept-Language": "en"})
    assert '<h1 id="title">Partenaires</h1>' in page.text and 'lang="fr"' in page.text
    for target in ("https://evil.example/", "//evil.example/console/", "/elsewhere"):
        away = await client.get("/console/lang/en", params={"next": target})
        assert away.headers["location"] == "/console/flows"


async def test_static_files_are_served_by_carebroker(client: httpx.AsyncClient) -> None:
    script = await client.get("/console/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "http://" not in script.text.replace("http://www.w3.org/2000/svg", "")
    assert (await client.get("/console/static/../users.py")).status_code == 404
    assert (await client.get("/console/static/secret.txt")).status_code == 404
