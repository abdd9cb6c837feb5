"""The hash-chained audit trail: the writer that appends to it and the check that proves it.

Roles record events in ``audit_pending`` inside the transaction that makes the
change (``broker.store.events.record``). :class:`AuditWriter` moves them, in
batches and off the hot path, into the append-only ``audit`` table: one
transaction reads a batch, appends it to today's chain, bumps the metric
counters and deletes what it moved. A failure rolls all of it back and the
batch is tried again, so an event is never lost nor chained twice.

The chain (design invariant 5): one per UTC day, the day being the partition.
Each row's ``hash`` is SHA-256 over the previous row's hash followed by the
row's canonical content (its day, its position and every field, as sorted
compact JSON, :func:`canonical`). Updating, deleting, inserting or swapping a
row breaks the link at that row, which :func:`verify` names. A day's first row
links to the last hash of the day before, kept in ``audit_heads`` so that the
link can still be checked after retention dropped that day.

Only one writer appends at a time (a transaction-scoped advisory lock); other
audit role instances wait their turn, so the chain has no forks.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from broker import redact
from broker.events import AuditEvent
from broker.ids import id_time
from broker.redact import label
from broker.store import events as pending_events
from broker.store.db import Connection, Pool, Record, connection, transaction

log = logging.getLogger(__name__)

GENESIS = hashlib.sha256(b"carebroker audit trail").digest()
_WRITER_LOCK = 0x61756474  # "audt"
BATCH = 1000
COLUMNS = (
    "event_id",
    "occurred_at",
    "kind",
    "actor",
    "outcome",
    "message_id",
    "control_id",
    "partner",
    "recipient",
    "rule",
    "detail",
)
# Delivery latency buckets, seconds (the histogram /metrics shows); +Inf is implicit.
LATENCY_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)
# Events counted per partner and message type, and which partner they count for.
_COUNTED_BY_RECIPIENT = frozenset(
    {"routed", "blocked", "delivered", "failed", "dead_lettered", "retried"}
)
_COUNTED = frozenset({"received", "rejected", "duplicate", "unroutable"}).union(
    _COUNTED_BY_RECIPIENT
)


@dataclass(frozen=True)
class Row:
    """One chained audit event as stored."""

    day: date
    seq: int
    event_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    kind: str
    actor: str
    outcome: str
    message_id: uuid.UUID | None
    control_id: str | None
    partner: str | None
    recipient: str | None
    rule: str | None
    detail: dict[str, Any]
    prev_hash: bytes
    hash: bytes

    @classmethod
    def from_record(cls, record: Record) -> Row:
        """Build a row from a ``SELECT * FROM audit`` record."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})


def canonical(day: date, seq: int, recorded_at: datetime, fields: dict[str, Any]) -> bytes:
    """Return the bytes a row's hash covers: sorted, compact JSON of everything but hashes."""
    content = {
        "day": day.isoformat(),
        "seq": seq,
        "recorded_at": _instant(recorded_at),
        **{
            name: _instant(value) if isinstance(value, datetime) else value
            for name, value in fields.items()
        },
    }
    for name in ("event_id", "message_id"):
        if content.get(name) is not None:
            content[name] = str(content[name])
    # Compact UTF-8 JSON with sorted keys. The form is part of the chain: a
    # change to it is a change of every hash, so it stays fixed.
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: bytes, content: bytes) -> bytes:
    """Return the hash of a row: SHA-256 over the previous hash then the canonical content."""
    return hashlib.sha256(prev_hash + content).digest()


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _fields(event: Any) -> dict[str, Any]:
    """Map a pending event (an AuditEvent as JSON) to columns; never fail on odd input.

    The writer must not stall on an event some role wrote badly: unknown keys
    are kept under ``detail.extra``, missing ones get neutral values, and a
    JSON value that is not an object is kept whole as ``detail.extra``.
    """
    if not isinstance(event, dict):
        event = {"extra": event}
    known = {name: event.get(name) for name in COLUMNS}
    extra = {k: v for k, v in event.items() if k not in COLUMNS}
    detail = known["detail"] if isinstance(known["detail"], dict) else {}
    if extra:
        detail = {**detail, "extra": extra}
    return {
        "event_id": _uuid(known["event_id"]) or uuid.uuid4(),
        "occurred_at": _when(known["occurred_at"]),
        "kind": str(known["kind"] or "unknown"),
        "actor": str(known["actor"] or "unknown"),
        "outcome": str(known["outcome"] or "success"),
        "message_id": _uuid(known["message_id"]),
        "control_id": _text(known["control_id"]),
        "partner": _text(known["partner"]),
        "recipient": _text(known["recipient"]),
        "rule": _text(known["rule"]),
        "detail": detail,
    }


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _when(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class AuditWriter:
    """Drain ``audit_pending`` into the hash-chained ``audit`` table."""

    def __init__(
        self,
        pool: Pool,
        batch: int = BATCH,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.pool = pool
        self.batch = batch
        self.chained = 0
        # PostgreSQL's clock by default, the same for every instance; tests pass one.
        self.clock = clock

    async def drain(self) -> int:
        """Chain one batch of pending events; return how many (0: none, or another writer)."""
        async with transaction(self.pool) as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _WRITER_LOCK):
                return 0
            pending = await conn.fetch(
                "SELECT id, event FROM audit_pending ORDER BY id LIMIT $1", self.batch
            )
            if not pending:
                return 0
            recorded_at: datetime = (
                self.clock() if self.clock else await conn.fetchval("SELECT statement_timestamp()")
            )
            day = recorded_at.astimezone(UTC).date()
            head = await conn.fetchrow(
                "SELECT seq, hash FROM audit_heads WHERE day = $1 FOR UPDATE", day
            )
            if head is not None:
                seq, prev = head["seq"], bytes(head["hash"])
            else:
                before = await conn.fetchval(
                    "SELECT hash FROM audit_heads WHERE day < $1 ORDER BY day DESC LIMIT 1", day
                )
                seq, prev = 0, bytes(before) if before is not None else GENESIS
            rows = []
            for record in pending:
                fields = _fields(record["event"])
                seq += 1
                digest = link(prev, canonical(day, seq, recorded_at, fields))
                rows.append((seq, fields, prev, digest))
                prev = digest
            await _insert(conn, day, recorded_at, rows)
            await conn.execute(
                "INSERT INTO audit_heads (day, seq, hash) VALUES ($1, $2, $3)"
                " ON CONFLICT (day) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash,"
                " updated_at = now()",
                day,
                seq,
                prev,
            )
            await _count(conn, [fields for _, fields, _, _ in rows])
            await conn.execute(
                "DELETE FROM audit_pending WHERE id = ANY($1::bigint[])",
                [r["id"] for r in pending],
            )
        self.chained += len(rows)
        return len(rows)

    async def drain_all(self) -> int:
        """Drain until nothing is pending (or another writer holds the chain); return the count."""
        total = 0
        while moved := await self.drain():
            total += moved
        return total


async def _insert(
    conn: Connection,
    day: date,
    recorded_at: datetime,
    rows: Sequence[tuple[int, dict[str, Any], bytes, bytes]],
) -> None:
    def column(name: str) -> list[Any]:
        return [fields[name] for _, fields, _, _ in rows]

    await conn.execute(
        "INSERT INTO audit (day, seq, recorded_at, prev_hash, hash, event_id, occurred_at, kind,"
        " actor, outcome, message_id, control_id, partner, recipient, rule, detail)"
        " SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::bytea[], $5::bytea[],"
        " $6::uuid[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::uuid[],"
        " $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]::jsonb[])",
        day,
        [seq for seq, _, _, _ in rows],
        [recorded_at] * len(rows),
        [prev for _, _, prev, _ in rows],
        [digest for _, _, _, digest in rows],
        column("event_id"),
        column("occurred_at"),
        column("kind"),
        column("actor"),
        column("outcome"),
        column("message_id"),
        column("control_id"),
        column("partner"),
        column("recipient"),
        column("rule"),
        [orjson.dumps(d).decode() for d in column("detail")],
    )


async def _count(conn: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Add the batch to the counters /metrics shows, in the chaining transaction."""
    counted = [e for e in events if e["kind"] in _COUNTED]
    if not counted:
        return
    types = await _message_types(
        conn,
        [
            e["message_id"]
            for e in counted
            if e["message_id"] and not e["detail"].get("message_type")
        ],
    )
    counts: dict[tuple[str, str, str], int] = {}
    latency: dict[tuple[str, int], tuple[int, float]] = {}
    for event in counted:
        by_recipient = event["kind"] in _COUNTED_BY_RECIPIENT
        partner = label(event["recipient"] if by_recipient else event["partner"])
        message_type = redact.message_type(
            event["detail"].get("message_type") or types.get(event["message_id"], "")
        )
        key = (event["kind"], partner, message_type)
        counts[key] = counts.get(key, 0) + 1
        if event["kind"] == "delivered" and event["message_id"]:
            seconds = max(
                0.0, (event["occurred_at"] - id_time(event["message_id"])).total_seconds()
            )
            bucket = next(
                (i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), len(LATENCY_BUCKETS)
            )
            n, total = latency.get((partner, bucket), (0, 0.0))
            latency[(partner, bucket)] = (n + 1, total + seconds)
    await conn.execute(
        "INSERT INTO audit_counters (kind, partner, message_type, n)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])"
        " ON CONFLICT (kind, partner, message_type)"
        " DO UPDATE SET n = audit_counters.n + EXCLUDED.n",
        [k[0] for k in counts],
        [k[1] for k in counts],
        [k[2] for k in counts],
        list(counts.values()),
    )
    if latency:
        await conn.execute(
            "INSERT INTO delivery_latency (recipient, bucket, n, sum_s)"
            " SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::float8[])"
            " ON CONFLICT (recipient, bucket) DO UPDATE SET n = delivery_latency.n + EXCLUDED.n,"
            " sum_s = delivery_latency.sum_s + EXCLUDED.sum_s",
            [k[0] for k in latency],
            [k[1] for k in latency],
            [v[0] for v in latency.values()],
            [v[1] for v in latency.values()],
        )


async def _message_types(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    unique = list(dict.fromkeys(ids))
    rows = await conn.fetch(
        # received_at is the id's time: one primary-key probe per message.
        "SELECT m.id, m.message_type FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at)"
        " JOIN messages m ON m.received_at = t.at AND m.id = t.id",
        unique,
        [id_time(i) for i in unique],
    )
    return {r["id"]: r["message_type"] for r in rows}


async def _fetch(pool: Pool | Connection, query: str, *args: Any) -> list[Record]:
    """Run a read on a pool (a connection borrowed, errors translated) or a caller's connection."""
    if not isinstance(pool, Pool):
        rows: list[Record] = await pool.fetch(query, *args)
        return rows
    async with connection(pool) as conn:
        found: list[Record] = await conn.fetch(query, *args)
        return found


# --- verification -----------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold, and why."""

    day: date
    seq: int
    event_id: uuid.UUID | None
    reason: str

    def __str__(self) -> str:
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"audit chain broken at {self.day.isoformat()} #{self.seq}{event}: {self.reason}"


@dataclass(frozen=True)
class Verified:
    """What :func:`verify` walked: days, events, and the first break if any."""

    days: int
    events: int
    broken: Break | None = None

    @property
    def intact(self) -> bool:
        """Tell whether every link held."""
        return self.broken is None


async def verify(
    pool: Pool, since: date | None = None, retained_from: date | None = None
) -> Verified:
    """Walk every chain from ``since`` (a day; all days when None) and stop at the first break.

    Checks, row by row in chain order, in one consistent snapshot: positions run
    1, 2, 3 ... without gaps; each row's ``prev_hash`` is the previous row's
    hash (for a day's first row: the previous day's head, or the genesis hash
    on the very first day); each ``hash`` matches the recomputed one; and each
    day ends exactly where its head says (a removed tail is a break too). Days
    older than the oldest one present are taken as dropped by retention,
    unless they are on or after ``retained_from`` (the first day retention
    keeps); any other missing day is a break.
    """
    async with transaction(pool, "repeatable_read", readonly=True) as conn:
        heads = {
            r["day"]: (r["seq"], bytes(r["hash"]))
            for r in await conn.fetch("SELECT day, seq, hash FROM audit_heads ORDER BY day")
        }
        days = [
            r["day"]
            for r in await conn.fetch(
                "SELECT DISTINCT day FROM audit WHERE $1::date IS NULL OR day >= $1 ORDER BY day",
                since,
            )
        ]
        if days or retained_from:
            first_kept = min(days[0] if days else date.max, retained_from or date.max)
            for day in sorted(heads):
                if day >= first_kept and (since is None or day >= since) and day not in days:
                    reason = "the day's events are missing"
                    return Verified(len(days), 0, Break(day, 1, None, reason))
        events = 0
        for day in days:
            earlier = [d for d in heads if d < day]
            expected = heads[max(earlier)][1] if earlier else GENESIS
            last_seq = 0
            query = "SELECT * FROM audit WHERE day = $1 ORDER BY seq"
            async for record in conn.cursor(query, day):
                row = Row.from_record(record)
                events += 1
                broken = _check(row, last_seq, expected)
                if broken:
                    return Verified(len(days), events, broken)
                expected, last_seq = row.hash, row.seq
            head = heads.get(day)
            if head != (last_seq, expected):
                reason = (
                    f"the chain ends at #{last_seq} but its head records #{head[0]}"
                    " (events removed or added at the end)"
                    if head
                    else "the day has no recorded head"
                )
                return Verified(len(days), events, Break(day, last_seq, None, reason))
    return Verified(len(days), events)


def _check(row: Row, last_seq: int, expected: bytes) -> Break | None:
    if row.seq != last_seq + 1:
        reason = f"event #{last_seq + 1} is missing" if row.seq > last_seq + 1 else "out of order"
        return Break(row.day, row.seq, row.event_id, reason)
    if row.prev_hash != expected:
        reason = "does not link to the previous event (deleted, inserted or swapped)"
        return Break(row.day, row.seq, row.event_id, reason)
    fields = {name: getattr(row, name) for name in COLUMNS}
    if link(row.prev_hash, canonical(row.day, row.seq, row.recorded_at, fields)) != row.hash:
        return Break(row.day, row.seq, row.event_id, "content does not match its hash (altered)")
    return None


async def read(
    pool: Pool,
    *,
    since: datetime | None = None,
    after: tuple[date, int] | None = None,
    limit: int = 1000,
) -> list[Row]:
    """Return chained events in chain order, from ``since`` or strictly after ``after``."""
    async with connection(pool) as conn:
        records = await conn.fetch(
            "SELECT * FROM audit"
            " WHERE ($1::timestamptz IS NULL OR (day >= ($1 AT TIME ZONE 'UTC')::date"
            "   AND recorded_at >= $1))"
            " AND ($2::date IS NULL OR (day, seq) > ($2, $3::bigint))"
            " ORDER BY day, seq LIMIT $4",
            since,
            after[0] if after else None,
            after[1] if after else 0,
            limit,
        )
    return [Row.from_record(r) for r in records]


async def timeline(pool: Pool | Connection, message_id: uuid.UUID) -> list[Row]:
    """Return one message's events in the order they were chained (index ``audit_message``).

    A message's events are chained on or after the day it was accepted (its
    UUIDv7 carries that time), so days before are pruned; one day of slack
    covers clocks that disagree around midnight.
    """
    first_day = id_time(message_id).date() - timedelta(days=1) if message_id.version == 7 else None
    records = await _fetch(
        pool,
        "SELECT * FROM audit WHERE message_id = $1 AND ($2::date IS NULL OR day >= $2)"
        " ORDER BY day, seq",
        message_id,
        first_day,
    )
    return [Row.from_record(r) for r in records]


async def pending_timeline(pool: Pool | Connection, message_id: uuid.UUID) -> list[dict[str, Any]]:
    """Return one message's events recorded but not chained yet, in recording order, as columns.

    ``audit_pending`` has no index on the message: it takes a row on every
    hop and the writer empties it continuously, so this reads a backlog that
    is small while the ``audit`` role runs (``carebroker_audit_pending``).
    """
    records = await _fetch(
        pool,
        "SELECT event FROM audit_pending WHERE event->>'message_id' = $1 ORDER BY id",
        str(message_id),
    )
    return [_fields(r["event"]) for r in records]


CURSOR_SYSLOG = "syslog"


class AuditStore:
    """The audit trail as roles and operators use it: chain, verify, read, follow, record."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def writer(
        self, batch: int = BATCH, clock: Callable[[], datetime] | None = None
    ) -> AuditWriter:
        """Return a writer that chains ``audit_pending`` in batches of ``batch``."""
        return AuditWriter(self.pool, batch, clock)

    async def verify(
        self, since: date | None = None, retained_from: date | None = None
    ) -> Verified:
        """Walk the chains from ``since`` and report the first break (:func:`verify`)."""
        return await verify(self.pool, since, retained_from)

    async def read(
        self,
        *,
        since: datetime | None = None,
        after: tuple[date, int] | None = None,
        limit: int = 1000,
    ) -> list[Row]:
        """Return chained events in chain order (:func:`read`)."""
        return await read(self.pool, since=since, after=after, limit=limit)

    async def message_timeline(
        self, message_id: uuid.UUID
    ) -> tuple[list[Row], list[dict[str, Any]], bool]:
        """Return a message's chained events, its pending ones, and whether the message exists.

        In one REPEATABLE READ snapshot: an event the writer moves meanwhile
        is seen once, chained or pending.
        """
        async with transaction(self.pool, "repeatable_read", readonly=True) as conn:
            chained = await timeline(conn, message_id)
            pending = await pending_timeline(conn, message_id)
            exists = bool(chained or pending) or bool(
                await conn.fetchval("SELECT true FROM messages WHERE id = $1", message_id)
            )
        return chained, pending, exists

    async def position(self, name: str) -> tuple[date, int] | None:
        """Return where a follower of the chain (``syslog``) stands: its last (day, seq)."""
        async with connection(self.pool) as conn:
            row = await conn.fetchrow("SELECT day, seq FROM audit_cursors WHERE name = $1", name)
        return (row["day"], row["seq"]) if row else None

    async def advance(self, name: str, day: date, seq: int) -> None:
        """Move a follower's position to (day, seq), once what is before it was sent."""
        async with connection(self.pool) as conn:
            await conn.execute(
                "INSERT INTO audit_cursors (name, day, seq) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO UPDATE SET day = EXCLUDED.day, seq = EXCLUDED.seq,"
                " updated_at = now()",
                name,
                day,
                seq,
            )

    async def record(self, recorded: Sequence[AuditEvent]) -> None:
        """Record events in a transaction of their own (an action that changes nothing else)."""
        async with transaction(self.pool) as conn:
            await pending_events.record(conn, recorded)
