"""Console sessions: opaque tokens that expire, stored only as their SHA-256.

Three kinds share one table (``console_sessions``):

- ``browser``: the token travels in an HttpOnly, SameSite=Strict cookie; each
  state-changing request must also carry the session's CSRF token.
- ``cli``: the token comes back in the body of ``POST /api/session`` and is
  sent as ``Authorization: Bearer``; same idle timeout and lifetime.
- ``api``: made by ``carebroker users token NAME`` for scripts; bearer only,
  no idle timeout, a fixed lifetime (90 days unless told otherwise), never
  longer than ``api_token_max_days`` (365): an older token is refused even if
  it was issued for longer, before that limit existed or was lowered.

A session ends at ``expires_at``, after ``idle_timeout`` without use, when
revoked (sign-out), or when its user is disabled. The user's role is read at
each request, so a role change applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from broker.store.accounts import AccountStore, AccountWork, Session, SessionKind

# last_seen_at is written at most this often per session, so polling pages do
# not turn every read into a write.
_TOUCH_EVERY = timedelta(seconds=30)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Sessions:
    """Open, find and revoke sessions (tokens made here, kept in the store as digests)."""

    def __init__(
        self, store: AccountStore, *, idle_timeout_s: int, lifetime_s: int, api_max_days: int = 365
    ) -> None:
        self.store = store
        self.idle_timeout = timedelta(seconds=idle_timeout_s)
        self.lifetime = timedelta(seconds=lifetime_s)
        self.api_max_lifetime = timedelta(days=api_max_days)

    async def open(
        self,
        work: AccountWork,
        user_name: str,
        kind: SessionKind,
        *,
        lifetime: timedelta | None = None,
        label: str = "",
    ) -> tuple[str, Session]:
        """Create a session in the caller's unit of work; return its token (shown once)."""
        token = secrets.token_urlsafe(32)
        session = await work.sessions.open(
            _digest(token),
            user_name,
            kind,
            csrf_token=secrets.token_urlsafe(32),
            idle_timeout=None if kind == "api" else self.idle_timeout,
            lifetime=lifetime or self.lifetime,
            label=label,
        )
        return token, session

    async def find(self, token: str) -> Session | None:
        """Return the live session this token opens, or None (unknown, expired, revoked)."""
        async with self.store.connection() as work:
            return await work.sessions.find(_digest(token), _TOUCH_EVERY, self.api_max_lifetime)

    async def purge(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Delete sessions ended more than ``older_than`` ago; return how many."""
        async with self.store.connection() as work:
            return await work.sessions.purge(older_than)


__all__ = ["Session", "SessionKind", "Sessions"]
