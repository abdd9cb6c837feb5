"""Sign-in, sessions that end, sign-out, throttling, disabled users, CLI and API tokens."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx

from broker.console.auth import COOKIE
from broker.console.sessions import Sessions
from broker.store.accounts import AccountStore
from tests.integration.console.conftest import (
    BASE,
    PASSWORD,
    Console,
    audit,
    cli_token,
    sign_in,
)


async def test_sign_in_sets_a_strict_http_only_cookie_and_audits(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    response = await client.post("/api/session", json={"name": "otto", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "otto" and body["role"] == "operator" and body["token"] is None
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    me = await client.get("/api/session")
    assert me.status_code == 200 and me.json()["user"] == "otto"
    assert me.json()["csrf_token"] == body["csrf_token"]
    events = await audit(pool)
    assert events[-1]["kind"] == "user_changed"
    assert events[-1]["actor"] == "user:otto"
    assert events[-1]["detail"] == {"action": "signed_in", "via": "browser"}


async def test_passwords_are_stored_as_argon2id_hashes(
    users: dict[str, str], pool: asyncpg.Pool
) -> None:
    stored = await pool.fetchval("SELECT password_hash FROM console_users WHERE name = 'otto'")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool, console: Console
) -> None:
    wrong = await client.post("/api/session", json={"name": "otto", "password": "not-it-at-all"})
    unknown = await client.post(
        "/api/session", json={"name": "my secret password", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert COOKIE not in client.cookies
    events = await audit(pool)
    refused = [e for e in events if e["detail"].get("action") == "sign_in_refused"]
    # A known user's failure is audited; an unknown name is a stranger's, counted apart.
    assert [(e["actor"], e["detail"]["reason"]) for e in refused] == [("user:otto", "password")]
    assert console.ctx.console is not None
    await console.ctx.console.auth.strangers.flush()
    strangers = await pool.fetch("SELECT address, channel, reason, requests FROM stranger_refusals")
    assert [tuple(r) for r in strangers] == [("127.0.0.1", "console", "unknown_user", 1)]
    # What was typed as a user name may be a password: it is kept nowhere.
    assert all("my secret password" not in str(e) for e in events)
    kept = await pool.fetch("SELECT * FROM sign_in_throttle")
    assert all("my secret password" not in str(tuple(r)) for r in kept)


async def test_a_malformed_sign_in_is_refused_without_quoting_the_password(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    too_long = "correct horse battery staple " * 40  # over the 1,024 characters allowed
    for body in ({"name": "otto", "password": too_long}, {"name": "otto", "password": 31415926}):
        response = await client.post("/api/session", json=body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "password"]
        assert "correct horse" not in response.text and "31415926" not in response.text


async def test_repeated_failures_delay_the_name_they_never_lock_it(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    stranger = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client._transport.app, client=("198.51.100.7", 4000)),  # type: ignore[attr-defined]
        base_url=BASE,
    )
    # A stranger guesses at vera's password, far beyond the five free failures.
    answers = []
    for _ in range(12):
        response = await stranger.post("/api/session", json={"name": "vera", "password": "guess"})
        answers.append(response.status_code)
        if response.status_code == 429:
            await _pass(pool, float(response.headers["Retry-After"]))
    assert answers[:5] == [401] * 5
    assert 429 in answers, "after five failures each attempt waits"
    # vera, from her own workstation: at most the longest delay (30 s), never 15 minutes.
    mine = await client.post("/api/session", json={"name": "vera", "password": PASSWORD})
    if mine.status_code == 429:
        wait = float(mine.headers["Retry-After"])
        assert wait <= 30, wait
        await _pass(pool, wait)
        mine = await client.post("/api/session", json={"name": "vera", "password": PASSWORD})
    assert mine.status_code == 200, mine.text
    await stranger.aclose()


async def _pass(pool: asyncpg.Pool, seconds: float) -> None:
    """Let ``seconds`` pass for the throttle (every attempt moved back in time)."""
    await pool.execute(
        "UPDATE sign_in_throttle SET last_at = last_at - make_interval(secs => $1),"
        " window_start = window_start - make_interval(secs => $1)",
        seconds,
    )


async def test_sign_out_ends_the_session(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    csrf = await sign_in(client, "vera")
    cookie = client.cookies[COOKIE]
    response = await client.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    # Even a client that kept the cookie is not signed in any more.
    client.cookies.set(COOKIE, cookie)
    assert (await client.get("/api/session")).status_code == 401
    assert (await audit(pool))[-1]["detail"] == {"action": "signed_out", "via": "browser"}


async def test_idle_and_expired_sessions_end(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    await sign_in(client, "vera")
    assert (await client.get("/api/session")).status_code == 200
    await pool.execute("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert (await client.get("/api/session")).status_code == 401

    await sign_in(client, "vera")
    await pool.execute(
        "UPDATE console_sessions SET expires_at = now() - interval '1 second'"
        " WHERE revoked_at IS NULL"
    )
    assert (await client.get("/api/session")).status_code == 401


async def test_disabling_a_user_signs_them_out_and_keeps_them_out(
    client: httpx.AsyncClient, users: dict[str, str], console: object
) -> None:
    token = await cli_token(client, "vera")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/flows", headers=headers)).status_code == 200
    admin_csrf = await sign_in(client, "ada")
    changed = await client.patch(
        "/api/users/vera", json={"disabled": True}, headers={"X-CSRF-Token": admin_csrf}
    )
    assert changed.status_code == 200 and changed.json()["disabled"] is True
    assert (await client.get("/api/flows", headers=headers)).status_code == 401
    again = await client.post("/api/session", json={"name": "vera", "password": PASSWORD})
    assert again.status_code == 401


async def test_a_role_change_applies_to_open_sessions(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    token = await cli_token(client, "otto")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/users", headers=headers)).status_code == 403
    await pool.execute("UPDATE console_users SET role = 'admin' WHERE name = 'otto'")
    assert (await client.get("/api/users", headers=headers)).status_code == 200


async def test_cli_token_is_a_bearer_token_not_a_cookie(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    token = await cli_token(client, "ada")
    assert COOKIE not in client.cookies
    # Bearer requests need no CSRF token: browsers never attach the header themselves.
    response = await client.post(
        "/api/partners/reload", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    # A CLI token presented as the browser cookie is not a browser session.
    client.cookies.set(COOKIE, token)
    assert (await client.get("/api/session")).status_code == 401


async def test_api_tokens_have_no_idle_timeout(
    client: httpx.AsyncClient, users: dict[str, str], pool: asyncpg.Pool
) -> None:
    accounts = AccountStore(pool)
    sessions = Sessions(accounts, idle_timeout_s=60, lifetime_s=300)
    async with accounts.transaction() as work:
        token, _ = await sessions.open(work, "vera", "api", lifetime=timedelta(days=90))
    await pool.execute("UPDATE console_sessions SET last_seen_at = now() - interval '30 days'")
    response = await client.get("/api/flows", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_sign_in_refuses_forms_and_other_origins(
    client: httpx.AsyncClient, users: dict[str, str]
) -> None:
    # A cross-site HTML form can post url-encoded data but never JSON (login CSRF).
    form = await client.post("/api/session", data={"name": "otto", "password": PASSWORD})
    assert form.status_code == 422
    foreign = await client.post(
        "/api/session",
        json={"name": "otto", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert COOKIE not in client.cookies
