"""Console accounts in PostgreSQL: users, sessions and single sign-on attempts.

Tables (``0500_console.sql``): ``console_users`` (argon2id hash, role,
lockout counters), ``console_sessions`` (only the SHA-256 of each token;
kinds ``browser``, ``cli``, ``api``; idle timeout and absolute expiry),
``console_oidc_logins`` (hashed state, nonce, PKCE verifier; single use).
Hashing, password policy and token making are the console's
(``broker/console/users.py``, ``sessions.py``); this store keeps rows. An
:class:`AccountStore` hands out an :class:`AccountWork` whose parts share one
transaction, so a sign-in, its session and its audit event commit together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from broker.ids import new_id
from broker.store.db import Connection
from broker.store.unit import AuditPart, UnitStore

SessionKind = Literal["browser", "cli", "api"]


@dataclass(frozen=True)
class UserRow:
    """A console user as stored (without the hash)."""

    name: str
    role: str
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None


@dataclass(frozen=True)
class Credentials:
    """What a sign-in checks: the stored hash and whether the user is disabled."""

    disabled: bool
    password_hash: str | None


@dataclass(frozen=True)
class Session:
    """A live session and who it belongs to."""

    id: uuid.UUID
    user_name: str
    role: str
    kind: SessionKind
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Login:
    """A single sign-on attempt in progress (OpenID Connect state)."""

    nonce: str
    verifier: str
    next: str


class UserRows:
    """``console_users``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, name: str, role: str, password_hash: str | None) -> UserRow | None:
        """Create a user; None when the name is taken."""
        row = await self.conn.fetchrow(
            "INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING"
            " RETURNING name, role, disabled, created_at, last_sign_in_at",
            name,
            role,
            password_hash,
        )
        return UserRow(**dict(row)) if row else None

    async def update(
        self,
        name: str,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> UserRow | None:
        """Change what is given (a new password clears the failure count); None when unknown."""
        row = await self.conn.fetchrow(
            "UPDATE console_users SET role = coalesce($2, role),"
            " disabled = coalesce($3, disabled), password_hash = coalesce($4, password_hash),"
            " failed_sign_ins = CASE WHEN $4::text IS NULL THEN failed_sign_ins ELSE 0 END,"
            " updated_at = now() WHERE name = $1"
            " RETURNING name, role, disabled, created_at, last_sign_in_at",
            name,
            role,
            disabled,
            password_hash,
        )
        return UserRow(**dict(row)) if row else None

    async def list(self) -> list[UserRow]:
        """Return every user, by name."""
        rows = await self.conn.fetch(
            "SELECT name, role, disabled, created_at, last_sign_in_at"
            " FROM console_users ORDER BY name"
        )
        return [UserRow(**dict(r)) for r in rows]

    async def is_active(self, name: str) -> bool:
        """Tell whether the user exists and is not disabled."""
        return bool(
            await self.conn.fetchval("SELECT NOT disabled FROM console_users WHERE name = $1", name)
        )

    async def credentials(self, name: str) -> Credentials | None:
        """Return what a sign-in checks (one read, no lock: hashing follows, unconnected)."""
        row = await self.conn.fetchrow(
            "SELECT disabled, password_hash FROM console_users WHERE name = $1", name
        )
        return Credentials(**dict(row)) if row else None

    async def signed_in(self, name: str, rehash: str | None = None) -> UserRow:
        """Note a successful sign-in (failures forgotten, the hash upgraded if given)."""
        row = await self.conn.fetchrow(
            "UPDATE console_users SET last_sign_in_at = now(), failed_sign_ins = 0,"
            " failed_since = NULL, password_hash = coalesce($2, password_hash)"
            " WHERE name = $1 RETURNING name, role, disabled, created_at, last_sign_in_at",
            name,
            rehash,
        )
        return UserRow(**dict(row))

    async def upsert_external(self, name: str, role: str, role_claimed: bool) -> bool | None:
        """Create or refresh a user an identity provider vouches for.

        Returns whether it was created, or None when the user is disabled. A
        claimed role replaces the stored one; a default role only applies to a
        new user. Notes the sign-in.
        """
        row = await self.conn.fetchrow(
            "INSERT INTO console_users (name, role) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET updated_at = now(),"
            " role = CASE WHEN $3 THEN EXCLUDED.role ELSE console_users.role END"
            " WHERE NOT console_users.disabled"
            " RETURNING (xmax = 0) AS created",
            name,
            role,
            role_claimed,
        )
        if row is None:
            return None
        await self.conn.execute(
            "UPDATE console_users SET last_sign_in_at = now() WHERE name = $1", name
        )
        return bool(row["created"])


class SessionRows:
    """``console_sessions`` (tokens kept as their SHA-256 only)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def open(
        self,
        token_sha256: bytes,
        user_name: str,
        kind: SessionKind,
        *,
        csrf_token: str,
        idle_timeout: timedelta | None,
        lifetime: timedelta,
        label: str = "",
    ) -> Session:
        """Create a session for a token's digest."""
        row = await self.conn.fetchrow(
            "INSERT INTO console_sessions (id, token_sha256, user_name, kind, csrf_token, label,"
            " idle_timeout, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8)"
            " RETURNING id, user_name, kind, csrf_token, expires_at,"
            " (SELECT role FROM console_users WHERE name = $3) AS role",
            new_id(),
            token_sha256,
            user_name,
            kind,
            csrf_token,
            label,
            idle_timeout,
            lifetime,
        )
        return Session(**dict(row))

    async def find(
        self, token_sha256: bytes, touch_every: timedelta, api_max_lifetime: timedelta
    ) -> Session | None:
        """Return the live session of a token's digest; note its use (every ``touch_every``).

        An API token older than ``api_max_lifetime`` is not live, whatever it
        was issued for.
        """
        row = await self.conn.fetchrow(
            "SELECT s.id, s.user_name, u.role, s.kind, s.csrf_token, s.expires_at,"
            " s.last_seen_at < now() - $2::interval AS stale"
            " FROM console_sessions s JOIN console_users u ON u.name = s.user_name"
            " WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
            " AND (s.idle_timeout IS NULL OR s.last_seen_at > now() - s.idle_timeout)"
            " AND (s.kind <> 'api' OR s.created_at > now() - $3::interval)"
            " AND NOT u.disabled",
            token_sha256,
            touch_every,
            api_max_lifetime,
        )
        if row is None:
            return None
        if row["stale"]:
            await self.conn.execute(
                "UPDATE console_sessions SET last_seen_at = now() WHERE id = $1", row["id"]
            )
        fields = dict(row)
        del fields["stale"]
        return Session(**fields)

    async def revoke(self, session_id: uuid.UUID) -> None:
        """End a session (sign-out)."""
        await self.conn.execute(
            "UPDATE console_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            session_id,
        )

    async def revoke_all(self, user_name: str) -> None:
        """End every session of a user (disabled, or a new password)."""
        await self.conn.execute(
            "UPDATE console_sessions SET revoked_at = now()"
            " WHERE user_name = $1 AND revoked_at IS NULL",
            user_name,
        )

    async def purge(self, older_than: timedelta) -> int:
        """Delete sessions ended more than ``older_than`` ago; return how many."""
        result: str = await self.conn.execute(
            "DELETE FROM console_sessions WHERE"
            " coalesce(revoked_at, expires_at) < now() - $1::interval",
            older_than,
        )
        return int(result.split()[-1])


class LoginRows:
    """``console_oidc_logins``: single sign-on attempts, single use, short-lived."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def start(
        self, state_sha256: bytes, nonce: str, verifier: str, next_page: str, ttl_s: int
    ) -> None:
        """Keep a new attempt (forgetting those older than ``ttl_s``)."""
        await self.conn.execute(
            "DELETE FROM console_oidc_logins WHERE created_at < now() - make_interval(secs => $1)",
            ttl_s,
        )
        await self.conn.execute(
            "INSERT INTO console_oidc_logins (state_sha256, nonce, verifier, next)"
            " VALUES ($1, $2, $3, $4)",
            state_sha256,
            nonce,
            verifier,
            next_page,
        )

    async def take(self, state_sha256: bytes, ttl_s: int) -> Login | None:
        """Return and forget the attempt of this state, if younger than ``ttl_s``."""
        row = await self.conn.fetchrow(
            "DELETE FROM console_oidc_logins WHERE state_sha256 = $1"
            " AND created_at > now() - make_interval(secs => $2) RETURNING nonce, verifier, next",
            state_sha256,
            ttl_s,
        )
        return Login(**dict(row)) if row else None


class AccountWork:
    """One transaction (or connection) over the account tables and the audit trail."""

    def __init__(self, conn: Connection) -> None:
        self.users = UserRows(conn)
        self.sessions = SessionRows(conn)
        self.logins = LoginRows(conn)
        self.audit = AuditPart(conn)


class AccountStore(UnitStore[AccountWork]):
    """Console users, sessions and sign-on attempts."""

    def unit(self, conn: Connection) -> AccountWork:
        """Return the account tables' parts on ``conn``."""
        return AccountWork(conn)


__all__ = [
    "AccountStore",
    "AccountWork",
    "Credentials",
    "Login",
    "Session",
    "SessionKind",
    "UserRow",
]
