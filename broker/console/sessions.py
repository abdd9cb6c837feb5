"""Console sessions: opaque tokens that expire, stored only as their SHA-256.

Three kinds share one table (``console_sessions``):

- ``browser``: the token travels in an HttpOnly, SameSite=Strict cookie; each
  state-changing request must also carry the session's CSRF token.
- ``cli``: the token comes back in the body of ``POST /api/session`` and is
  sent as ``Authorization: Bearer``; same idle timeout and lifetime.
- ``api``: made by ``carebroker users token NAME`` for scripts; bearer only,
  no idle timeout, a fixed lifetime (90 days unless told otherwise).

A session ends at ``expires_at``, after ``idle_timeout`` without use, when
revoked (sign-out), or when its user is disabled. The user's role is read at
each request, so a role change applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from broker.ids import new_id

SessionKind = Literal["browser", "cli", "api"]

# last_seen_at is written at most this often per session, so polling pages do
# not turn every read into a write.
_TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class Session:
    """A live session and who it belongs to."""

    id: uuid.UUID
    user_name: str
    role: str
    kind: SessionKind
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionStore:
    """Open, find and revoke sessions in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, *, idle_timeout_s: int, lifetime_s: int) -> None:
        self.pool = pool
        self.idle_timeout = timedelta(seconds=idle_timeout_s)
        self.lifetime = timedelta(seconds=lifetime_s)

    async def open(
        self,
        conn: asyncpg.Connection,
        user_name: str,
        kind: SessionKind,
        *,
        lifetime: timedelta | None = None,
        label: str = "",
    ) -> tuple[str, Session]:
        """Create a session in the caller's transaction; return its token (shown once)."""
        token = secrets.token_urlsafe(32)
        row = await conn.fetchrow(
            "INSERT INTO console_sessions (id, token_sha256, user_name, kind, csrf_token, label,"
            " idle_timeout, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8)"
            " RETURNING id, user_name, kind, csrf_token, expires_at,"
            " (SELECT role FROM console_users WHERE name = $3) AS role",
            new_id(),
            _digest(token),
            user_name,
            kind,
            secrets.token_urlsafe(32),
            label,
            None if kind == "api" else self.idle_timeout,
            lifetime or self.lifetime,
        )
        return token, Session(**dict(row))

    async def find(self, token: str) -> Session | None:
        """Return the live session this token opens, or None (unknown, expired, revoked)."""
        row = await self.pool.fetchrow(
            "SELECT s.id, s.user_name, u.role, s.kind, s.csrf_token, s.expires_at,"
            " s.last_seen_at < now() - $2::interval AS stale"
            " FROM console_sessions s JOIN console_users u ON u.name = s.user_name"
            " WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
            " AND (s.idle_timeout IS NULL OR s.last_seen_at > now() - s.idle_timeout)"
            " AND NOT u.disabled",
            _digest(token),
            _TOUCH_EVERY,
        )
        if row is None:
            return None
        if row["stale"]:
            await self.pool.execute(
                "UPDATE console_sessions SET last_seen_at = now() WHERE id = $1", row["id"]
            )
        fields = dict(row)
        del fields["stale"]
        return Session(**fields)

    async def revoke(self, conn: asyncpg.Connection, session_id: uuid.UUID) -> None:
        """End a session (sign-out) in the caller's transaction."""
        await conn.execute(
            "UPDATE console_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            session_id,
        )

    async def purge(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Delete sessions ended more than ``older_than`` ago; return how many."""
        result: str = await self.pool.execute(
            "DELETE FROM console_sessions WHERE"
            " coalesce(revoked_at, expires_at) < now() - $1::interval",
            older_than,
        )
        return int(result.split()[-1])
