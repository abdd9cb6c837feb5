"""Passwords that resist guessing, API tokens that end: what an administrator meets."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
import pytest

from broker.console.sessions import Sessions
from broker.store.accounts import AccountStore
from tests.integration.console.conftest import sign_in


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Password2024!", id="common-word-and-year"),
        pytest.param("qwertyuiop1234", id="keyboard-walk"),
        pytest.param("aaaaaaaaaaaaaaaa", id="repeat"),
        pytest.param("Marguerite!2026", id="the-user-name-and-a-year"),
        pytest.param("carebroker2026", id="the-product-name"),
    ],
)
async def test_trivial_passwords_are_refused_whatever_their_length(
    client: httpx.AsyncClient, users: dict[str, str], password: str
) -> None:
    csrf = await sign_in(client, "ada")
    response = await client.post(
        "/api/users",
        json={"name": "marguerite", "role": "viewer", "password": password},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 422, response.text
    assert "password too weak" in response.json()["detail"]
    assert password not in response.text


async def test_a_passphrase_is_accepted(client: httpx.AsyncClient, users: dict[str, str]) -> None:
    csrf = await sign_in(client, "ada")
    response = await client.post(
        "/api/users",
        json={"name": "marguerite", "role": "viewer", "password": "plum lantern orbit 42"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 201, response.text


async def test_an_api_token_older_than_the_maximum_lifetime_is_refused(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    # Issued for a century before the limit existed (one was issued until 2126).
    accounts = AccountStore(pool)
    sessions = Sessions(accounts, idle_timeout_s=60, lifetime_s=300)
    async with accounts.transaction() as work:
        token, _ = await sessions.open(work, "vera", "api", lifetime=timedelta(days=36500))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/flows", headers=headers)).status_code == 200
    await pool.execute("UPDATE console_sessions SET created_at = now() - interval '366 days'")
    assert (await client.get("/api/flows", headers=headers)).status_code == 401
