"""Sign-in throttling per user name and per client address: delays that grow, never a lockout.

Before a password is checked, the attempt is counted under two keys, the
client address first, then the user name (:class:`broker.store.throttle.ThrottleStore`):

- a **name** may fail ``sign_in_max_failures`` times (5) within
  ``sign_in_window_s`` (15 min); then each attempt waits 1 s, 2 s, 4 s ... after
  the previous one, at most ``sign_in_max_delay_s`` (30 s). A stranger who
  guesses at someone's name slows them by seconds; the owner is never locked
  out for the window (the lockout this replaces let anyone do that with five
  wrong passwords);
- an **address** may fail ``sign_in_address_max_failures`` times (10), then
  waits likewise, at most ``sign_in_address_max_delay_s`` (120 s): one client
  guessing at many names is slowed down whatever names it tries.

A refused attempt is answered ``429`` with ``Retry-After`` before any password
is hashed or any user looked up, so a flood of sign-ins costs one short
statement each. Keys are HMACs under the deployment's secret: the table
holds neither names (people type passwords into them) nor addresses in clear.
A successful sign-in forgives its name's failures and its own count on the
address. Behind a reverse proxy, the address is the client's only when the
proxy is trusted (``CAREBROKER_HTTP_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from broker.console.settings import ConsoleSettings
from broker.pseudonym import Pseudonymizer
from broker.store.throttle import ThrottleStore


@dataclass(frozen=True)
class Throttled:
    """A sign-in attempt that must wait: how long, and which key held it."""

    retry_after_s: int
    by: str  # "address" | "name"


class SignInThrottle:
    """Decide whether a sign-in attempt may be checked now."""

    def __init__(
        self, store: ThrottleStore, keys: Pseudonymizer, settings: ConsoleSettings
    ) -> None:
        self.store = store
        self.keys = keys
        self.settings = settings

    def _key(self, kind: str, value: str) -> str:
        return f"{kind}:{self.keys.lane('sign-in throttle', kind, value)}"

    async def admit(self, name: str, address: str) -> Throttled | None:
        """Count the attempt; return None when it may be checked, else how long to wait."""
        settings = self.settings
        wait = await self.store.take(
            self._key("address", address),
            free=settings.sign_in_address_max_failures,
            max_delay_s=settings.sign_in_address_max_delay_s,
            window_s=settings.sign_in_window_s,
        )
        if wait is not None:
            return Throttled(math.ceil(wait), "address")
        wait = await self.store.take(
            self._key("name", name.strip().casefold()),
            free=settings.sign_in_max_failures,
            max_delay_s=settings.sign_in_max_delay_s,
            window_s=settings.sign_in_window_s,
        )
        if wait is not None:
            return Throttled(math.ceil(wait), "name")
        return None

    async def succeeded(self, name: str, address: str) -> None:
        """Forgive the name's failures and this attempt of the address."""
        await self.store.forgive(
            self._key("name", name.strip().casefold()), self._key("address", address)
        )

    async def purge(self) -> int:
        """Forget keys idle for longer than the window."""
        return await self.store.purge(self.settings.sign_in_window_s)
