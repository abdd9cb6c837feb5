"""Sign-in throttling state in PostgreSQL (``sign_in_throttle``), shared by every console instance.

Each key (the HMAC of a user name or of a client address, never either in
clear) counts the sign-in attempts that did not succeed within a window.
Beyond ``free`` of them, each further attempt must wait ``2**(n - free)``
seconds after the previous one, at most ``max_delay_s``: a delay, never a
lockout, so that a stranger who guesses at someone's name slows their
sign-in by seconds but cannot lock them out for the window.

An attempt is counted when it *starts* (one atomic upsert decides and
counts), and forgiven when it succeeds: concurrent guesses cannot all pass
the check before the first of them is counted.
"""

from __future__ import annotations

from broker.store.db import Pool, transaction

_TAKE = """
WITH attempt AS (
    INSERT INTO sign_in_throttle AS t (key, failures, window_start, last_at)
    VALUES ($1, 1, now(), now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_start < now() - make_interval(secs => $4)
                        THEN 1 ELSE t.failures + 1 END,
        window_start = CASE WHEN t.window_start < now() - make_interval(secs => $4)
                            THEN now() ELSE t.window_start END,
        last_at = now()
    WHERE t.window_start < now() - make_interval(secs => $4)
       OR t.failures < $2
       OR t.last_at + make_interval(secs => least($3, power(2, t.failures - $2))) <= now()
    RETURNING failures
)
SELECT (SELECT failures FROM attempt) AS counted,
       (SELECT extract(epoch FROM t.last_at
                       + make_interval(secs => least($3, power(2, t.failures - $2))) - now())
          FROM sign_in_throttle t WHERE t.key = $1) AS wait
"""


class ThrottleStore:
    """Count attempts per key; say how long to wait when there were too many."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def take(
        self, key: str, *, free: int, max_delay_s: float, window_s: float
    ) -> float | None:
        """Count an attempt under ``key``; return None when it may go on, else seconds to wait."""
        async with transaction(self.pool) as conn:
            row = await conn.fetchrow(_TAKE, key, free, float(max_delay_s), float(window_s))
        if row["counted"] is not None:
            return None
        return max(1.0, float(row["wait"] or 0.0))

    async def forgive(self, name_key: str, address_key: str) -> None:
        """Forget a name's failures and this attempt of the address, after a good sign-in.

        The address keeps its other failures: a stranger who owns one account
        must not wipe the count of the guesses made from the same address.
        """
        async with transaction(self.pool) as conn:
            await conn.execute("DELETE FROM sign_in_throttle WHERE key = $1", name_key)
            await conn.execute(
                "UPDATE sign_in_throttle SET failures = greatest(failures - 1, 0) WHERE key = $1",
                address_key,
            )

    async def purge(self, older_than_s: float) -> int:
        """Forget keys untouched for ``older_than_s``; return how many."""
        async with transaction(self.pool) as conn:
            result: str = await conn.execute(
                "DELETE FROM sign_in_throttle WHERE last_at < now() - make_interval(secs => $1)",
                float(older_than_s),
            )
        return int(result.split()[-1])
