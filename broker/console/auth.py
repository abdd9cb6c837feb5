"""Who is asking, and may they: sessions, bearer tokens, CSRF, roles.

Every console route depends on :func:`require_role`, which other API modules
reuse as is::

    @router.get("/api/messages/{id}/content")
    async def content(who: Principal = Depends(require_role("operator"))) -> ...

It accepts, in this order:

1. ``Authorization: Bearer <token>`` — a CLI session token (``POST
   /api/session`` with ``"client": "cli"``) or an API token (``carebroker users
   token NAME``). Browsers never add this header on their own, so bearer
   requests need no CSRF token.
2. The ``carebroker_session`` cookie set by a browser sign-in (HttpOnly,
   SameSite=Strict). A state-changing request (POST, PUT, PATCH, DELETE) with
   the cookie must also send the session's CSRF token in ``X-CSRF-Token``
   (synchronizer token pattern, OWASP CSRF cheat sheet), and its ``Origin``,
   when present, must be this server.

Answers: 401 without a live session, 403 with a missing or wrong CSRF token,
403 when the role is too low. Sign-in (``POST /api/session``) is throttled per
client address and per user name (:mod:`broker.console.throttle`): 429 with
``Retry-After`` before any password is checked. The role is read from the user at each request,
so a role change or a disabled user applies at once.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from broker.console.deps import console
from broker.console.sessions import Session, Sessions
from broker.console.settings import ConsoleSettings
from broker.console.throttle import SignInThrottle
from broker.console.users import SignInError, UserRole, Users, has_role
from broker.events import AuditEvent
from broker.pseudonym import Pseudonymizer
from broker.store.accounts import AccountStore
from broker.store.refusals import RefusalStore
from broker.store.throttle import ThrottleStore
from broker.strangers import StrangerRecorder

COOKIE = "carebroker_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_cookie = APIKeyCookie(
    name=COOKIE, auto_error=False, description="Browser session (set by POST /api/session)."
)
_bearer = HTTPBearer(
    auto_error=False,
    description="CLI session token (POST /api/session, client=cli) or API token "
    "(`carebroker users token NAME`).",
)
_csrf = APIKeyHeader(
    name=CSRF_HEADER,
    auto_error=False,
    description="The session's CSRF token (GET /api/session); required with the cookie "
    "on POST, PUT, PATCH and DELETE.",
)


@dataclass(frozen=True)
class Principal:
    """The signed-in user behind a request, and how they proved it."""

    user: str
    role: UserRole
    session: Session
    via: Literal["cookie", "bearer"]

    @property
    def actor(self) -> str:
        """Return the audit actor for this user (``user:<name>``)."""
        return f"user:{self.user}"


class Authenticator:
    """Users and sessions of one process, built once by the console role."""

    def __init__(
        self,
        store: AccountStore,
        settings: ConsoleSettings,
        keys: Pseudonymizer,
        throttle: ThrottleStore,
        refusals: RefusalStore,
    ) -> None:
        self.store = store
        self.settings = settings
        self.users = Users(store)
        self.sessions = Sessions(
            store,
            idle_timeout_s=settings.session_idle_timeout_s,
            lifetime_s=settings.session_lifetime_s,
            api_max_days=settings.api_token_max_days,
        )
        self.throttle = SignInThrottle(throttle, keys, settings)
        self.strangers = StrangerRecorder(refusals)

    def set_cookie(self, response: Response, token: str) -> None:
        """Give a browser its session: HttpOnly, SameSite=Strict, Secure when configured."""
        response.set_cookie(
            COOKIE,
            token,
            max_age=self.settings.session_lifetime_s,
            httponly=True,
            samesite="strict",
            secure=self.settings.cookie_secure,
            path="/",
        )

    async def principal(self, request: Request) -> Principal | None:
        """Return who the request's bearer token or cookie signs in, or None."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        via: Literal["cookie", "bearer"]
        if scheme.lower() == "bearer" and token.strip():
            token, via = token.strip(), "bearer"
        else:
            token, via = request.cookies.get(COOKIE, ""), "cookie"
        if not token:
            return None
        session = await self.sessions.find(token)
        if session is None or (via == "cookie" and session.kind != "browser"):
            return None
        role: UserRole = session.role  # type: ignore[assignment]  # CHECK constraint in 0500
        return Principal(session.user_name, role, session, via)


def authenticator(request: Request) -> Authenticator:
    """Return the console's authenticator (FastAPI dependency)."""
    return console(request).auth


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by non-browser clients; browsers send it on POST
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def require_role(minimum: UserRole) -> Callable[..., Awaitable[Principal]]:
    """Return a dependency admitting signed-in users whose role is at least ``minimum``."""

    async def dependency(
        request: Request,
        _cookie_value: Annotated[str | None, Security(_cookie)],
        _bearer_value: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        csrf_token: Annotated[str | None, Security(_csrf)],
    ) -> Principal:
        principal = await authenticator(request).principal(request)
        if principal is None:
            raise HTTPException(
                401, "sign in first (no live session)", headers={"WWW-Authenticate": "Bearer"}
            )
        if principal.via == "cookie" and request.method not in SAFE_METHODS:
            if not csrf_token or not hmac.compare_digest(csrf_token, principal.session.csrf_token):
                raise HTTPException(403, f"missing or wrong CSRF token ({CSRF_HEADER} header)")
            if not _same_origin(request):
                raise HTTPException(403, "cross-origin request refused")
        if not has_role(principal.role, minimum):
            raise HTTPException(403, f"this needs the {minimum} role (you are {principal.role})")
        return principal

    dependency.__name__ = f"require_{minimum}"
    return dependency


Viewer = Annotated[Principal, Depends(require_role("viewer"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Auth = Annotated[Authenticator, Depends(authenticator)]


# --- sign-in and sign-out ---------------------------------------------------------

router = APIRouter(prefix="/api/session", tags=["session"])


class SignIn(BaseModel):
    """Credentials for a local user."""

    model_config = ConfigDict(hide_input_in_errors=True)

    name: str = Field(max_length=63)
    password: str = Field(repr=False, max_length=1024)
    client: Literal["browser", "cli"] = Field(
        default="browser",
        description="`browser`: the session is a cookie. `cli`: the token is returned in "
        "the body, to send as `Authorization: Bearer`.",
    )


class SessionInfo(BaseModel):
    """The signed-in user and what a browser needs for state-changing requests."""

    user: str
    role: UserRole
    kind: str
    csrf_token: str = Field(description="Send as X-CSRF-Token with cookie-authenticated changes.")
    expires_at: datetime
    token: str | None = Field(
        default=None, description="Bearer token, only for `client: cli` at sign-in."
    )


def _info(session: Session, token: str | None = None) -> SessionInfo:
    role: UserRole = session.role  # type: ignore[assignment]  # CHECK constraint in 0500
    return SessionInfo(
        user=session.user_name,
        role=role,
        kind=session.kind,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
        token=token,
    )


@router.post(
    "",
    summary="Sign in with a user name and password",
    responses={
        401: {"description": "Wrong name or password, or a disabled user."},
        429: {"description": "Too many failed attempts from this address or for this name: "
              "retry after `Retry-After` seconds."},
    },
)  # fmt: skip
async def sign_in(
    body: SignIn,
    request: Request,
    response: Response,
    auth: Auth,
) -> SessionInfo:
    """Open a session. JSON only: a cross-site HTML form cannot post it (login CSRF)."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    address = request.client.host if request.client else ""
    throttled = await auth.throttle.admit(body.name, address)
    if throttled is not None:
        auth.strangers.note(address, "console", f"sign_in_throttled_by_{throttled.by}")
        wait = throttled.retry_after_s
        raise HTTPException(
            429,
            f"too many failed sign-ins: retry in {wait} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    try:
        user = await auth.users.verify(body.name, body.password, via=body.client)
    except SignInError as exc:
        if exc.reason == "unknown_user":
            auth.strangers.note(address, "console", "unknown_user")
        raise HTTPException(401, str(exc)) from exc
    await auth.throttle.succeeded(body.name, address)
    async with auth.store.transaction() as work:
        token, session = await auth.sessions.open(work, user.name, body.client)
    if body.client == "cli":
        return _info(session, token)
    auth.set_cookie(response, token)
    return _info(session)


@router.get("", summary="Who is signed in, and the CSRF token")
async def whoami(who: Viewer) -> SessionInfo:
    """Return the current session."""
    return _info(who.session)


@router.delete("", status_code=204, summary="Sign out")
async def sign_out(
    response: Response,
    who: Viewer,
    auth: Auth,
) -> None:
    """End the current session (an API token is revoked by this too)."""
    async with auth.store.transaction() as work:
        await work.sessions.revoke(who.session.id)
        await work.audit.record(
            [
                AuditEvent(
                    kind="user_changed",
                    actor=who.actor,
                    detail={"action": "signed_out", "via": who.session.kind},
                )
            ],
        )
    response.delete_cookie(COOKIE, path="/")
