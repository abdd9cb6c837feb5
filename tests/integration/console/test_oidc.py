"""Single sign-on against a tiny OpenID Connect provider written here, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from broker.console.auth import COOKIE
from broker.console.settings import ConsoleSettings
from broker.console.users import Users
from broker.http import HttpServer, bind
from broker.store.accounts import AccountStore
from tests.integration.console.conftest import Console, audit, build

CLIENT_ID, CLIENT_SECRET = "carebroker", "s3cret-of-the-client"


class TinyProvider:
    """An OpenID Connect provider that approves every request for ``claims``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sign_with = self.key  # a test may sign with another key
        self.issuer = ""
        self.claims: dict[str, Any] = {}
        self.nonce_override: str | None = None
        self.codes: dict[str, dict[str, str]] = {}
        self.app = FastAPI()
        self.app.get("/.well-known/openid-configuration")(self.discovery)
        self.app.get("/authorize")(self.authorize)
        self.app.post("/token")(self.token)
        self.app.get("/jwks")(self.jwks)

    async def discovery(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
        }

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": q["nonce"],
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
        }
        target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)  # single use
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if (
            grant is None
            or grant["redirect_uri"] != form.get("redirect_uri")
            or grant["challenge"] != challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "248289761001",
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override or grant["nonce"],
            **self.claims,
        }
        token = jwt.encode(claims, self.sign_with, algorithm="RS256", headers={"kid": "k1"})
        return JSONResponse({"id_token": token, "access_token": "x", "token_type": "Bearer"})

    async def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}


@pytest.fixture
async def provider() -> AsyncIterator[TinyProvider]:
    tiny = TinyProvider()
    server = HttpServer(tiny.app, bind("127.0.0.1", 0))
    await server.start()
    tiny.issuer = f"http://127.0.0.1:{server.port}"
    try:
        yield tiny
    finally:
        await server.stop()


@pytest.fixture
async def console(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, provider: TinyProvider
) -> Console:
    settings = ConsoleSettings(
        flows_cache_s=0,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_label="Pro Santé Connect",
    )
    return build(database_url, pool, tmp_path, settings)


async def single_sign_on(client: httpx.AsyncClient, next: str = "/console/partners") -> str:
    """Go through the provider as a browser would; return where carebroker sends it at the end."""
    start = await client.get("/console/oidc/start", params={"next": next})
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    callback = approved.headers["location"]
    assert urlsplit(callback).path == "/console/oidc/callback"
    done = await client.get(callback)
    assert done.status_code == 303
    return done.headers["location"]


async def test_a_new_user_signs_in_with_the_role_the_provider_gives(
    client: httpx.AsyncClient, provider: TinyProvider, pool: asyncpg.Pool
) -> None:
    login = await client.get("/console/login")
    assert "Sign in with Pro Santé Connect" in login.text
    provider.claims = {"preferred_username": "Claire.Martin", "carebroker_role": "operator"}
    assert await single_sign_on(client) == "/console/partners"
    me = (await client.get("/api/session")).json()
    assert (me["user"], me["role"], me["kind"]) == ("claire.martin", "operator", "browser")
    assert (await client.get("/console/partners")).status_code == 200
    row = await pool.fetchrow(
        "SELECT password_hash FROM console_users WHERE name = 'claire.martin'"
    )
    assert row["password_hash"] is None  # cannot sign in with a password
    created, signed_in = (await audit(pool))[-2:]
    assert created["actor"] == "oidc" and created["detail"]["action"] == "created"
    assert signed_in["actor"] == "user:claire.martin"
    assert signed_in["detail"]["via"] == "oidc"


async def test_the_highest_known_role_of_a_list_wins_and_updates_the_user(
    client: httpx.AsyncClient, provider: TinyProvider, pool: asyncpg.Pool
) -> None:
    await Users(AccountStore(pool)).add("paul", "viewer", "a long password", "test")
    provider.claims = {"preferred_username": "paul", "carebroker_role": ["auditor", "admin"]}
    await single_sign_on(client)
    assert (await client.get("/api/session")).json()["role"] == "admin"


async def test_refusals_send_back_to_sign_in_with_a_message(
    client: httpx.AsyncClient, provider: TinyProvider, pool: asyncpg.Pool
) -> None:
    provider.claims = {"preferred_username": "nobody"}  # no role claim, no default role
    assert await single_sign_on(client) == "/console/login?error=sso"
    assert COOKIE not in client.cookies
    page = await client.get("/console/login?error=sso")
    assert "Single sign-on did not succeed" in page.text

    await Users(AccountStore(pool)).add("gone", "admin", "a long password", "test")
    await Users(AccountStore(pool)).update("gone", "test", disabled=True)
    provider.claims = {"preferred_username": "gone", "carebroker_role": "admin"}
    assert await single_sign_on(client) == "/console/login?error=sso"
    refused = [e for e in await audit(pool) if e["detail"].get("action") == "sign_in_refused"]
    assert [(e["actor"], e["detail"]["reason"]) for e in refused] == [
        ("user:nobody", "no role"),
        ("user:gone", "disabled"),
    ]


async def test_forged_tokens_and_replayed_callbacks_sign_nobody_in(
    client: httpx.AsyncClient, provider: TinyProvider
) -> None:
    provider.claims = {"preferred_username": "eve", "carebroker_role": "admin"}
    provider.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await single_sign_on(client) == "/console/login?error=sso"

    provider.sign_with = provider.key
    provider.nonce_override = "another nonce"
    assert await single_sign_on(client) == "/console/login?error=sso"

    provider.nonce_override = None
    start = await client.get("/console/oidc/start")
    async with httpx.AsyncClient() as browser:
        callback = (await browser.get(start.headers["location"])).headers["location"]
    # A callback whose state is not this browser's is refused ...
    client.cookies.set("carebroker_oidc", "someone-else", path="/console/oidc")
    assert (await client.get(callback)).headers["location"] == "/console/login?error=sso"
    assert (await client.get("/api/session")).status_code == 401
    # ... and the genuine one works once, not twice.
    state = parse_qs(urlsplit(callback).query)["state"][0]
    client.cookies.set("carebroker_oidc", state, path="/console/oidc")
    assert (await client.get(callback)).headers["location"] == "/console/flows"
    client.cookies.set("carebroker_oidc", state, path="/console/oidc")
    assert (await client.get(callback)).headers["location"] == "/console/login?error=sso"


async def test_without_oidc_settings_there_is_no_single_sign_on(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    plain = build(database_url, pool, tmp_path, ConsoleSettings())
    transport = httpx.ASGITransport(app=plain.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        assert "oidc" not in (await http.get("/console/login")).text
        assert (await http.get("/console/oidc/start")).status_code == 404
