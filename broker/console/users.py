"""Console users: names, roles, argon2id password hashes, sign-in.

Roles are ordered: ``viewer`` sees flows and metadata but no clinical
content; ``operator`` adds content, replay, dead letters and consent;
``admin`` adds partners and users. Passwords are hashed with argon2id
(argon2-cffi, RFC 9106 parameters), off the event loop because a hash costs
tens of milliseconds of CPU by design, one at a time per process, and with no
PostgreSQL connection held meanwhile: a flood of sign-ins must neither take
the pool from the ingress nor the CPU from it (issue 13). Throttling of
repeated attempts: :mod:`broker.console.throttle`. Every change and every
sign-in of a known user, successful or not, is audited in the transaction that
makes it (design invariant 5); a sign-in with an unknown name is counted in
the strangers' record instead (:mod:`broker.strangers`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from zxcvbn import zxcvbn

from broker.errors import PermanentError
from broker.events import AuditEvent
from broker.store.accounts import AccountStore, Credentials, UserRow

UserRole = Literal["viewer", "operator", "admin"]
USER_ROLES: tuple[UserRole, ...] = get_args(UserRole)
NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,62}$")
MIN_PASSWORD = 10
# zxcvbn's scale: 3 is "safely unguessable: moderate protection from an offline
# slow-hash scenario" (about 10^8 guesses and more).
MIN_PASSWORD_SCORE = 3
# zxcvbn's cost grows with the length; past this, length alone is enough.
_ESTIMATED_LENGTH = 72

# RFC 9106's parameters (t=3, 64 MiB) on one lane: the same work, on one core,
# so that a hash never takes both from the ingress. Hashes made with more lanes
# still verify, and are rehashed at the next sign-in.
_hasher = PasswordHasher(parallelism=1)
# Hashes computed at once per process: argon2 is CPU-bound by design, and a
# flood of sign-ins must leave the other core to the ingress.
_hashing = asyncio.Semaphore(1)
# Verified when the user name is unknown, so that an unknown name costs the
# same time as a wrong password and names cannot be probed by timing.
_DUMMY_HASH = _hasher.hash("carebroker: no such user")


class UserError(PermanentError):
    """A user cannot be created or changed as asked (bad name, weak password, unknown)."""


class SignInError(PermanentError):
    """Sign-in refused; the text is the same whatever the reason, the audit says which."""

    def __init__(self, reason: str) -> None:
        super().__init__("wrong user name or password")
        self.reason = reason


def has_role(role: str, minimum: UserRole) -> bool:
    """Tell whether ``role`` grants at least what ``minimum`` grants."""
    return role in USER_ROLES and USER_ROLES.index(role) >= USER_ROLES.index(minimum)


class ConsoleUser(BaseModel):
    """A console user as the API shows it (never the hash)."""

    name: str
    role: UserRole
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def of(cls, row: UserRow) -> ConsoleUser:
        """Return the API view of a stored user."""
        return cls.model_validate(row, from_attributes=True)


def check_password(password: str, name: str = "") -> None:
    """Refuse passwords that resist no guessing (NIST SP 800-63B §5.1.1.2).

    Length first, then the zxcvbn estimator (Dropbox's, in Python): common
    passwords, words and names, keyboard walks, repeats, dates and l33t
    substitutions, and the user's own name, score low whatever their length.
    The message says why without quoting the password.
    """
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")
    estimate = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=[name, "carebroker"])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        warning = estimate["feedback"].get("warning") or "too easy to guess"
        raise UserError(
            f"password too weak ({warning.rstrip('.').lower()}): "
            "use a longer passphrase of unrelated words"
        )


async def _checked(role: str | None, password: str | None, name: str) -> str | None:
    """Refuse an unknown role or a weak password; return the password's hash, if any."""
    if role is not None and role not in USER_ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(USER_ROLES)}")
    if password is None:
        return None
    check_password(password, name)
    return await _hash(password)


async def _hash(password: str) -> str:
    async with _hashing:
        return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async with _hashing:
        return await asyncio.to_thread(check)


class Users:
    """Console users: names, roles, passwords (hashed here), sign-in."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store

    async def add(self, name: str, role: UserRole, password: str | None, actor: str) -> ConsoleUser:
        """Create a user; raise UserError when the name is taken or invalid."""
        if not NAME.match(name):
            raise UserError(
                f"invalid user name {name!r}: lower-case letters, digits and . _ @ - "
                "(at most 63, starting with a letter or digit)"
            )
        hashed = await _checked(role, password, name)
        async with self.store.transaction() as work:
            row = await work.users.add(name, role, hashed)
            if row is None:
                raise UserError(f"user {name!r} already exists")
            await work.audit.record([_event(actor, name, {"action": "created", "role": role})])
        return ConsoleUser.of(row)

    async def update(
        self,
        name: str,
        actor: str,
        *,
        role: UserRole | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> ConsoleUser:
        """Change a user's role, state or password; disabling signs the user out everywhere."""
        hashed = await _checked(role, password, name)
        async with self.store.transaction() as work:
            row = await work.users.update(name, role=role, disabled=disabled, password_hash=hashed)
            if row is None:
                raise UserError(f"no user {name!r}")
            if disabled or password is not None:
                await work.sessions.revoke_all(name)
            changes: dict[str, object] = {"action": "updated"}
            if role is not None:
                changes["role"] = role
            if disabled is not None:
                changes["disabled"] = disabled
            if password is not None:
                changes["password_changed"] = True
            await work.audit.record([_event(actor, name, changes)])
        return ConsoleUser.of(row)

    async def list(self) -> list[ConsoleUser]:
        """Return every user, by name."""
        async with self.store.connection() as work:
            rows = await work.users.list()
        return [ConsoleUser.of(r) for r in rows]

    async def verify(self, name: str, password: str, via: str) -> ConsoleUser:
        """Check a password and audit the attempt; raise SignInError when refused.

        The hash is checked with no connection held (one short read before,
        one short transaction after). An unknown name costs the same hash as
        a wrong password, so names cannot be probed by timing; it is not
        audited (people type passwords into it). A known user's refusal is
        raised after its audit event is committed.
        """
        async with self.store.connection() as work:
            row = await work.users.credentials(name)
        stored: str | None = row.password_hash if row else None
        good = await _verify(stored or _DUMMY_HASH, password) and stored is not None
        reason = _refusal(row, good)
        if reason is not None:
            if row is not None:
                async with self.store.transaction() as work:
                    await work.audit.record([_sign_in_event(f"user:{name}", reason, via)])
            raise SignInError(reason)
        assert stored is not None  # a good password implies a stored hash
        return await self._signed_in(name, password, stored, via)

    async def _signed_in(self, name: str, password: str, stored: str, via: str) -> ConsoleUser:
        rehash = await _hash(password) if _hasher.check_needs_rehash(stored) else None
        async with self.store.transaction() as work:
            row = await work.users.signed_in(name, rehash)
            await work.audit.record(
                [
                    AuditEvent(
                        kind="user_changed",
                        actor=f"user:{name}",
                        detail={"action": "signed_in", "via": via},
                    )
                ]
            )
        return ConsoleUser.of(row)


def _refusal(row: Credentials | None, good: bool) -> str | None:
    if row is None:
        return "unknown_user"
    if row.disabled:
        return "disabled"
    return None if good else "password"


def _event(actor: str, name: str, detail: dict[str, object]) -> AuditEvent:
    return AuditEvent(kind="user_changed", actor=actor, detail={"user": name, **detail})


def _sign_in_event(actor: str, reason: str, via: str) -> AuditEvent:
    # The audit trail has no sign-in kind yet; user_changed with an action says
    # what happened until the audit issue adds one.
    return AuditEvent(
        kind="user_changed",
        actor=actor,
        outcome="minor_failure",
        detail={"action": "sign_in_refused", "reason": reason, "via": via},
    )
