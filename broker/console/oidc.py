"""Sign in through an OpenID Connect provider (authorization code flow with PKCE).

Enabled when ``CAREBROKER_CONSOLE__OIDC_ISSUER`` and ``..._OIDC_CLIENT_ID``
are set. The sign-in page then offers the provider; ``/console/oidc/start``
sends the browser there with a single-use ``state``, a ``nonce`` and a PKCE
challenge (RFC 7636, S256), kept in ``console_oidc_logins`` and bound to the
browser by an HttpOnly cookie. ``/console/oidc/callback`` exchanges the code
at the token endpoint and accepts the ID token only when its signature checks
against the provider's JWKS and ``iss``, ``aud``, ``exp`` and ``nonce`` are
right (OpenID Connect Core 1.0 §3.1.3.7). The user is the
``oidc_name_claim`` (``preferred_username``); the role comes from
``oidc_role_claim`` (a string or a list: the highest known role wins), else
``oidc_default_role``, else the sign-in is refused. A local user of that name
is reused (and refused when disabled); a new one is created without a
password. Every outcome is audited.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from broker.console.auth import Authenticator
from broker.console.deps import console
from broker.console.settings import ConsoleSettings
from broker.console.users import NAME, USER_ROLES, UserRole
from broker.errors import PermanentError
from broker.events import AuditEvent
from broker.store.accounts import AccountWork

log = logging.getLogger(__name__)

STATE_COOKIE = "carebroker_oidc"
LOGIN_TTL_S = 600  # an unfinished sign-in is forgotten after 10 minutes
CACHE_S = 3600  # discovery document and keys are re-read at most hourly (unknown kid: at once)


class OidcError(PermanentError):
    """The provider's answer cannot sign anyone in; the text says why, without claims' values."""


@dataclass(frozen=True)
class Provider:
    """The endpoints of the provider's discovery document (OpenID Connect Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcClient:
    """Talk to one OpenID Connect provider."""

    def __init__(self, settings: ConsoleSettings) -> None:
        assert settings.oidc_issuer
        assert settings.oidc_client_id
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._provider: tuple[float, Provider] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.get(url)
                response.raise_for_status()
                body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"identity provider: cannot read {url}: {type(exc).__name__}") from exc
        return body

    async def provider(self) -> Provider:
        """Return the provider's endpoints (discovery, cached)."""
        if self._provider and time.monotonic() - self._provider[0] < CACHE_S:
            return self._provider[1]
        doc = await self._get(f"{self.issuer}/.well-known/openid-configuration")
        try:
            found = Provider(
                issuer=doc["issuer"],
                authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"],
                jwks_uri=doc["jwks_uri"],
            )
        except KeyError as exc:
            raise OidcError(f"identity provider: discovery lacks {exc.args[0]}") from exc
        if found.issuer.rstrip("/") != self.issuer:
            raise OidcError("identity provider: discovery names another issuer")
        self._provider = (time.monotonic(), found)
        return found

    async def _key(self, kid: str | None, refresh: bool = False) -> jwt.PyJWK:
        if refresh or not self._keys or time.monotonic() - self._keys[0] >= CACHE_S:
            provider = await self.provider()
            try:
                keys = jwt.PyJWKSet.from_dict(await self._get(provider.jwks_uri))
            except jwt.PyJWTError as exc:
                raise OidcError("identity provider: unusable JWKS") from exc
            self._keys = (time.monotonic(), keys)
        for key in self._keys[1].keys:
            if kid is None or key.key_id == kid:
                return key
        if not refresh:
            return await self._key(kid, refresh=True)  # the provider may have rotated keys
        raise OidcError("ID token signed with an unknown key")

    def authorize_url(
        self, provider: Provider, redirect_uri: str, state: str, nonce: str, verifier: str
    ) -> str:
        """Return where to send the browser (OpenID Connect Core 1.0 §3.1.2.1)."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.oidc_client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.oidc_scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": _s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return f"{provider.authorization_endpoint}{separator}{query}"

    async def claims(
        self, code: str, redirect_uri: str, verifier: str, nonce: str
    ) -> dict[str, Any]:
        """Exchange the code and return the ID token's claims, verified."""
        provider = await self.provider()
        client_id = self.settings.oidc_client_id or ""
        secret = self.settings.oidc_client_secret
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.Auth | None = None
        if secret is None:
            form["client_id"] = client_id  # a public client names itself (RFC 6749 §4.1.3)
        else:
            auth = httpx.BasicAuth(client_id, secret.get_secret_value())
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.post(
                    provider.token_endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"identity provider: token endpoint: {type(exc).__name__}") from exc
        if response.status_code != 200 or "id_token" not in body:
            raise OidcError(f"identity provider refused the code ({response.status_code})")
        token = body["id_token"]
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key(header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                audience=self.settings.oidc_client_id,
                issuer=provider.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"ID token refused: {type(exc).__name__}") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("ID token refused: nonce does not match")
        return claims


def _role(claims: dict[str, Any], settings: ConsoleSettings) -> tuple[UserRole | None, bool]:
    """Return the role the claims grant and whether a claim said it (not the default)."""
    value = claims.get(settings.oidc_role_claim)
    named = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    known = [r for r in USER_ROLES if r in named]
    return (known[-1], True) if known else (settings.oidc_default_role, False)


router = APIRouter(prefix="/console/oidc", include_in_schema=False)


def _redirect_uri(request: Request, settings: ConsoleSettings) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _back_to_login(reason: str) -> RedirectResponse:
    response = RedirectResponse("/console/login?error=sso", status_code=303)
    response.delete_cookie(STATE_COOKIE, path="/console/oidc")
    log.warning("single sign-on refused", extra={"reason": reason})
    return response


@router.get("/start")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the identity provider."""
    from broker.console.ui import safe_next

    state_ = console(request)
    client, auth = state_.oidc, state_.auth
    if client is None:
        return Response("single sign-on is not configured", status_code=404)
    try:
        provider = await client.provider()
    except OidcError as exc:
        return _back_to_login(str(exc))
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    async with auth.store.transaction() as work:
        await work.logins.start(
            hashlib.sha256(state.encode()).digest(), nonce, verifier, safe_next(next), LOGIN_TTL_S
        )
    response = RedirectResponse(
        client.authorize_url(
            provider, _redirect_uri(request, auth.settings), state, nonce, verifier
        ),
        status_code=303,
    )
    # Lax: the provider sends the browser back with a top-level GET from its own site.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=LOGIN_TTL_S,
        httponly=True,
        samesite="lax",
        secure=auth.settings.cookie_secure,
        path="/console/oidc",
    )
    return response


@router.get("/callback", name="oidc_callback")
async def oidc_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """Finish the sign-in: check state, exchange the code, verify the ID token, open a session."""
    state_ = console(request)
    client, auth = state_.oidc, state_.auth
    if client is None:
        return Response("single sign-on is not configured", status_code=404)
    cookie = request.cookies.get(STATE_COOKIE)
    if error or not code or not state or not cookie or not secrets.compare_digest(cookie, state):
        return _back_to_login(f"provider error {error}" if error else "state")
    async with auth.store.transaction() as work:
        login = await work.logins.take(hashlib.sha256(state.encode()).digest(), LOGIN_TTL_S)
    if login is None:
        return _back_to_login("state unknown or expired")
    try:
        claims = await client.claims(
            code, _redirect_uri(request, auth.settings), login.verifier, login.nonce
        )
    except OidcError as exc:
        return _back_to_login(str(exc))
    name = str(claims.get(auth.settings.oidc_name_claim, "")).lower()
    role, claimed = _role(claims, auth.settings)
    reason = None if NAME.match(name) else "user name claim"
    if reason is None and role is None:
        reason = "no role"
    token = ""
    async with auth.store.transaction() as work:
        if reason is None and role is not None:
            reason, token = await _sign_in(work, auth, name, role, claimed, claims)
        if reason is not None:
            await work.audit.record(
                [
                    AuditEvent(
                        kind="user_changed",
                        actor=f"user:{name}" if NAME.match(name) else "anonymous",
                        outcome="minor_failure",
                        detail={"action": "sign_in_refused", "reason": reason, "via": "oidc"},
                    )
                ],
            )
    if reason is not None:
        return _back_to_login(reason)
    response = RedirectResponse(login.next, status_code=303)
    response.delete_cookie(STATE_COOKIE, path="/console/oidc")
    auth.set_cookie(response, token)
    return response


async def _sign_in(
    work: AccountWork,
    auth: Authenticator,
    name: str,
    role: UserRole,
    claimed: bool,
    claims: dict[str, Any],
) -> tuple[str | None, str]:
    """Create or update the user from the provider's word, open a session: (refusal, token).

    A role claim sets the role of an existing user; the default role only
    applies to users carebroker does not know yet.
    """
    created = await work.users.upsert_external(name, role, claimed)
    if created is None:
        return "disabled", ""
    token, _ = await auth.sessions.open(work, name, "browser")
    audit = []
    if created:
        audit.append(
            AuditEvent(
                kind="user_changed",
                actor="oidc",
                detail={"user": name, "action": "created", "role": role},
            )
        )
    audit.append(
        AuditEvent(
            kind="user_changed",
            actor=f"user:{name}",
            detail={"action": "signed_in", "via": "oidc", "subject": str(claims.get("sub"))},
        )
    )
    await work.audit.record(audit)
    return None, token
