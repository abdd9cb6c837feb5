"""Requests refused to strangers: counted in memory, written a few times a minute, bounded.

A request refused before anyone was identified (no credentials, an unknown
bearer token or certificate, a throttled sign-in, an unknown user name) is
not a message: it is not stored with its body, it gets no audit event, and it
costs no database write of its own. Each is noted here (client address,
channel, reason, declared size) and the counts are written every few seconds
to ``stranger_refusals`` (:mod:`broker.store.refusals`), one row per address,
channel, reason and minute. Beyond ``max_addresses`` distinct addresses in a
minute, the others are counted together under ``*``: a distributed flood
cannot grow the record either. Rows are kept ``retention_days``.

Operators read it with ``GET /api/refusals`` (the console); ``docs/security.md``
says what is and is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.errors import StoreUnavailableError
from broker.store.refusals import Refusal, RefusalStore

log = logging.getLogger(__name__)


@dataclass
class _Count:
    requests: int
    bytes: int
    first_at: datetime
    last_at: datetime


class StrangerRecorder:
    """Note refusals without I/O; :meth:`flush` writes them aggregated."""

    def __init__(
        self,
        store: RefusalStore,
        *,
        max_addresses: int = 1000,
        interval_s: float = 5.0,
        retention_days: int = 7,
    ) -> None:
        self.store = store
        self.max_addresses = max_addresses
        self.interval_s = interval_s
        self.retention_days = retention_days
        self._pending: dict[tuple[datetime, str, str, str], _Count] = {}
        self._addresses: dict[datetime, set[str]] = {}

    def note(self, address: str, channel: str, reason: str, size: int = 0) -> None:
        """Count one refused request (``size``: its declared body length, 0 if none)."""
        now = datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0)
        seen = self._addresses.setdefault(minute, set())
        if address not in seen:
            if len(seen) >= self.max_addresses:
                address = "*"
            seen.add(address)
        key = (minute, address or "-", channel, reason)
        count = self._pending.get(key)
        if count is None:
            self._pending[key] = _Count(1, max(size, 0), now, now)
        else:
            count.requests += 1
            count.bytes += max(size, 0)
            count.last_at = now

    async def flush(self) -> None:
        """Write what was noted since the last flush; keep it for the next if the store is down."""
        pending, self._pending = self._pending, {}
        current = datetime.now(UTC).replace(second=0, microsecond=0)
        self._addresses = {m: a for m, a in self._addresses.items() if m >= current}
        if not pending:
            return
        batch = [
            Refusal(minute, address, channel, reason, c.requests, c.bytes, c.first_at, c.last_at)
            for (minute, address, channel, reason), c in pending.items()
        ]
        try:
            await self.store.add(batch)
        except StoreUnavailableError:
            for key, count in pending.items():  # bounded: at most one entry per key
                self._pending.setdefault(key, count)
            log.warning("stranger refusals not recorded yet: message store unavailable")
            return
        log.info(
            "stranger refusals recorded",
            extra={"rows": len(batch), "requests": sum(c.requests for c in pending.values())},
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``interval_s`` until ``stop``, then once more; purge old rows hourly."""
        ticks = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stop.wait()
            await self.flush()
            ticks += 1
            if ticks % max(1, int(3600 / self.interval_s)) == 1:
                with contextlib.suppress(StoreUnavailableError):
                    await self.store.purge(self.retention_days)
