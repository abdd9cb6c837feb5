"""Alerts in PostgreSQL: the facts they are evaluated on, their occurrences, silences, history.

``broker/alerts.py`` evaluates (pure) and the audit role's monitor records
each alert's start and end here (``alerts``, with an ``alert_changed`` audit
event in the same transaction); operators acknowledge an occurrence and
silence an alert (``alert_silences``) from the console
(``broker/console/alert_actions.py``). History is read back from the audit
trail (partial index ``audit_alert_changes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from broker.store.db import Connection
from broker.store.unit import AuditPart, UnitStore

Row = dict[str, Any]
Key = tuple[str, str]  # (alert name, subject)


@dataclass(frozen=True)
class AlertFacts:
    """What the conditions read from the store: last message per sender, queues, dead letters."""

    last_received: dict[str, datetime | None]
    oldest_pending: dict[str, datetime]
    dead: dict[str, int]


class AlertRows:
    """``alerts`` (occurrences, with their acknowledgement) and ``alert_silences``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def facts(self, senders: Sequence[str], since: datetime) -> AlertFacts:
        """Read the facts (index lookups only): one probe per watched sender since ``since``."""
        last = {
            r["sender"]: r["last"]
            for r in await self.conn.fetch(
                # One index probe (messages_sender) per watched sender.
                "SELECT s.sender, (SELECT max(m.received_at) FROM messages m"
                " WHERE m.sender = s.sender AND m.received_at > $2) AS last"
                " FROM unnest($1::text[]) AS s(sender)",
                list(senders),
                since,
            )
        }
        pending = {
            r["recipient"]: r["oldest"]
            for r in await self.conn.fetch(
                "SELECT recipient, min(created_at) AS oldest FROM deliveries"
                " WHERE status = 'pending' GROUP BY recipient"
            )
        }
        dead = {
            r["recipient"]: r["n"]
            for r in await self.conn.fetch(
                "SELECT recipient, count(*) AS n FROM deliveries WHERE status = 'dead'"
                " AND discarded_at IS NULL GROUP BY recipient"  # discarded: operator's decision
            )
        }
        return AlertFacts(last, pending, dead)

    async def firing(self, *, lock: bool = False) -> dict[Key, datetime]:
        """Return the open occurrences, (name, subject) -> since; locked when asked."""
        query = "SELECT name, subject, since FROM alerts WHERE resolved_at IS NULL"
        rows = await self.conn.fetch(f"{query} FOR UPDATE" if lock else query)
        return {(r["name"], r["subject"]): r["since"] for r in rows}

    async def open(self, key: Key, now: datetime, detail: dict[str, Any]) -> None:
        """Record a new occurrence starting ``now``."""
        await self.conn.execute(
            "INSERT INTO alerts (name, subject, since, last_seen, detail)"
            " VALUES ($1, $2, $3, $3, $4)",
            *key,
            now,
            detail,
        )

    async def seen(self, key: Key, since: datetime, now: datetime, detail: dict[str, Any]) -> None:
        """Note an occurrence still firing."""
        await self.conn.execute(
            "UPDATE alerts SET last_seen = $4, detail = $5"
            " WHERE name = $1 AND subject = $2 AND since = $3",
            *key,
            since,
            now,
            detail,
        )

    async def resolve(self, key: Key, since: datetime, now: datetime) -> None:
        """End an occurrence."""
        await self.conn.execute(
            "UPDATE alerts SET resolved_at = $4 WHERE name = $1 AND subject = $2 AND since = $3",
            *key,
            since,
            now,
        )

    async def acknowledgements(self) -> list[Row]:
        """Return the acknowledged open occurrences."""
        return [
            dict(r)
            for r in await self.conn.fetch(
                "SELECT name, subject, acknowledged_by, acknowledged_at, acknowledge_reason"
                " FROM alerts WHERE resolved_at IS NULL AND acknowledged_at IS NOT NULL"
            )
        ]

    async def acknowledge(self, key: Key, by: str, reason: str) -> Row | None:
        """Acknowledge the open occurrence unless it already is; None when nothing changed."""
        row = await self.conn.fetchrow(
            "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $3,"
            " acknowledge_reason = $4"
            " WHERE name = $1 AND subject = $2 AND resolved_at IS NULL"
            " AND acknowledged_at IS NULL"
            " RETURNING acknowledged_by AS by, acknowledged_at AS at, acknowledge_reason AS reason",
            *key,
            by,
            reason,
        )
        return dict(row) if row else None

    async def acknowledgement(self, key: Key) -> Row | None:
        """Return the open occurrence's acknowledgement (fields None if not acknowledged)."""
        row = await self.conn.fetchrow(
            "SELECT acknowledged_by AS by, acknowledged_at AS at, acknowledge_reason AS reason"
            " FROM alerts WHERE name = $1 AND subject = $2 AND resolved_at IS NULL",
            *key,
        )
        return dict(row) if row else None

    async def silences(self, now: datetime) -> list[Row]:
        """Return the silences in force at ``now``."""
        return [
            dict(r)
            for r in await self.conn.fetch(
                "SELECT name, subject, until, reason, silenced_by AS by, silenced_at AS at"
                " FROM alert_silences WHERE until > $1 ORDER BY name, subject",
                now,
            )
        ]

    async def silence(self, key: Key, until: datetime, reason: str, by: str) -> Row:
        """Silence an alert until a time (replacing a silence in force)."""
        row = await self.conn.fetchrow(
            "INSERT INTO alert_silences (name, subject, until, reason, silenced_by)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (name, subject) DO UPDATE SET until = EXCLUDED.until,"
            " reason = EXCLUDED.reason, silenced_by = EXCLUDED.silenced_by, silenced_at = now()"
            " RETURNING name, subject, until, reason, silenced_by AS by, silenced_at AS at",
            *key,
            until,
            reason,
            by,
        )
        return dict(row)

    async def unsilence(self, key: Key) -> bool:
        """End a silence in force; return whether there was one."""
        return bool(
            await self.conn.fetchval(
                "DELETE FROM alert_silences WHERE name = $1 AND subject = $2 AND until > now()"
                " RETURNING true",
                *key,
            )
        )

    async def history(self, since: date, limit: int) -> list[Row]:
        """Return the latest ``alert_changed`` events chained since a day, newest first."""
        return [
            dict(r)
            for r in await self.conn.fetch(
                "SELECT occurred_at, actor, partner, recipient, detail FROM audit"
                " WHERE kind = 'alert_changed' AND day >= $1 ORDER BY day DESC, seq DESC LIMIT $2",
                since,
                limit,
            )
        ]


class AlertWork:
    """One transaction (or connection) over the alert tables and the audit trail."""

    def __init__(self, conn: Connection) -> None:
        self.alerts = AlertRows(conn)
        self.audit = AuditPart(conn)


class AlertStore(UnitStore[AlertWork]):
    """Alerts' facts, occurrences and silences."""

    def unit(self, conn: Connection) -> AlertWork:
        """Return the alert tables' parts on ``conn``."""
        return AlertWork(conn)


__all__ = ["AlertFacts", "AlertStore", "AlertWork"]
