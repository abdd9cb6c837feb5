"""Find messages by their metadata, newest first, a page at a time (the operators' search).

Every filter is an equality or a range that an index answers on a store of
millions of messages; nothing reads payloads. The query is written for the
filters given, so PostgreSQL plans each combination on its own instead of one
catch-all statement full of ``$n IS NULL OR ...``:

- control id, carebroker id, sender, message type, status: the spine's
  per-partition indexes (``messages_control_id``, ``messages_id``,
  ``messages_sender``, ``messages_type``, ``messages_status``), each ordered
  by ``received_at`` so a page stops after ``limit`` rows;
- recipient, and the delivery statuses few deliveries are in (failed, dead,
  blocked): the deliveries read in their messages' acceptance order through
  ``deliveries_recipient_message`` or ``deliveries_in_trouble``
  (``0310_search.sql``), each joined to its message by primary key; other
  delivery statuses (most deliveries are delivered) are checked per message;
- patient: ``patient_digests`` holds pseudonymous digests
  (:class:`broker.pseudonym.Pseudonymizer`), matched through the GIN index
  ``messages_patient``. A GIN index cannot return rows in time order, so
  that search collects the patient's matches first and sorts them (``OFFSET
  0`` keeps the planner from walking the time index instead, hoping the
  ``LIMIT`` stops it early: it would read the whole store for a patient with
  few messages);
- ``since``/``until``: conditions on the partition key, so PostgreSQL reads
  only the days in range (partition pruning).

Pagination is keyset (seek) pagination over ``(received_at, id)``, the
primary key: a page after the first starts strictly below the cursor's
position, whatever was inserted meanwhile, and costs the same on page 1 and
page 1,000. ``received_at <= cursor`` is stated as well as the row
comparison because only the former is usable by the indexes whose second
column is ``received_at`` (and by partition pruning).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import asyncpg

from broker.errors import PermanentError

MAX_LIMIT = 1000
COLUMNS = (
    "id",
    "received_at",
    "sender",
    "control_id",
    "message_type",
    "status",
    "reason",
)
_COLUMNS = ", ".join(f"m.{c}" for c in COLUMNS)
# Delivery statuses few deliveries are in, kept in order by deliveries_in_trouble (0310).
FEW_DELIVERIES = frozenset({"failed", "dead", "blocked"})
_DELIVERY_OF = (
    "SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.message_received_at = m.received_at"
)


_BAD_CURSOR = "invalid cursor: pass the `next` value of a previous page"


class CursorError(PermanentError):
    """A ``next`` cursor that this search did not hand out (mangled or from elsewhere)."""


@dataclass(frozen=True)
class Filters:
    """What to search for; every field given must match (AND). Empty: every message."""

    message_id: uuid.UUID | None = None
    control_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    message_type: str | None = None
    status: str | None = None
    delivery_status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    patient_digest: str | None = None

    def given(self) -> list[str]:
        """Return the names of the filters given (for the audit trail: names, never values)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the last row of a page."""

    received_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        """Return the opaque, URL-safe form handed out as ``next``."""
        raw = f"{self.received_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Read a cursor made by :meth:`encode`; raise CursorError otherwise."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            when, _, ident = raw.partition("|")
            cursor = cls(datetime.fromisoformat(when), uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise CursorError(_BAD_CURSOR) from exc
        if cursor.received_at.tzinfo is None:
            raise CursorError(_BAD_CURSOR)
        return cursor


@dataclass(frozen=True)
class Query:
    """A statement and its arguments, as :func:`find` runs it (tests EXPLAIN it)."""

    sql: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Page:
    """One page of results and where the next one starts (None: this was the last)."""

    rows: list[asyncpg.Record]
    next: Cursor | None


class _Builder:
    """Collect conditions and their numbered arguments."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def build(filters: Filters, limit: int, after: Cursor | None = None) -> Query:
    """Return the statement finding one page (``limit`` + 1 rows, to tell if more follow).

    The most selective index drives: a control id, carebroker id or patient
    digest pins a few messages, whose deliveries are then checked; else a
    recipient's deliveries, or the few deliveries in trouble (failed, dead,
    blocked), are read in order and each joined to its message; else the
    messages are read in order. Only fixed column names and ``$n``
    placeholders go into the text; every value is an argument.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    pinpointed = (filters.message_id, filters.control_id, filters.patient_digest)
    if all(value is None for value in pinpointed) and (
        filters.recipient is not None or filters.delivery_status in FEW_DELIVERIES
    ):
        return _by_delivery(filters, limit, after)
    return _by_message(filters, limit, after)


def _message_conditions(q: _Builder, filters: Filters) -> list[str]:
    conditions = []
    for column, value in (
        ("id", filters.message_id),
        ("control_id", filters.control_id),
        ("sender", filters.sender),
        ("message_type", filters.message_type),
        ("status", filters.status),
    ):
        if value is not None:
            conditions.append(f"m.{column} = {q.arg(value)}")
    if filters.patient_digest is not None:
        conditions.append(f"m.patient_digests @> ARRAY[{q.arg(filters.patient_digest)}::text]")
    return conditions


def _time_conditions(
    q: _Builder, filters: Filters, after: Cursor | None, time_col: str, id_col: str
) -> list[str]:
    conditions = []
    if filters.since is not None:
        conditions.append(f"{time_col} >= {q.arg(filters.since)}")
    if filters.until is not None:
        conditions.append(f"{time_col} < {q.arg(filters.until)}")
    if after is not None:
        at, ident = q.arg(after.received_at), q.arg(after.id)
        conditions.append(f"{time_col} <= {at}")
        conditions.append(f"({time_col}, {id_col}) < ({at}, {ident})")
    return conditions


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _by_message(filters: Filters, limit: int, after: Cursor | None) -> Query:
    q = _Builder()
    conditions = _message_conditions(q, filters)
    delivery = []
    if filters.recipient is not None:
        delivery.append(f"d.recipient = {q.arg(filters.recipient)}")
    if filters.delivery_status is not None:
        delivery.append(f"d.status = {q.arg(filters.delivery_status)}")
    if delivery:
        conditions.append(f"EXISTS ({_DELIVERY_OF} AND {' AND '.join(delivery)})")
    conditions += _time_conditions(q, filters, after, "m.received_at", "m.id")
    # S608: only the fixed names above and $n placeholders are interpolated.
    select = f"SELECT {_COLUMNS} FROM messages m{_where(conditions)}"  # noqa: S608
    if filters.patient_digest is not None:
        select = f"SELECT * FROM ({select} OFFSET 0) m"  # noqa: S608
    sql = f"{select} ORDER BY m.received_at DESC, m.id DESC LIMIT {q.arg(limit + 1)}"
    return Query(sql, tuple(q.args))


def _by_delivery(filters: Filters, limit: int, after: Cursor | None) -> Query:
    # LATERAL ... LIMIT 1 keeps the join a nested loop in the deliveries'
    # index order, each message found by primary key in its own partition
    # (pruned at run time). Joined plainly, the planner counts a probe into
    # every partition per delivery and prefers hashing the whole store.
    q = _Builder()
    conditions = []
    if filters.recipient is not None:
        conditions.append(f"d.recipient = {q.arg(filters.recipient)}")
    if filters.delivery_status is not None:
        conditions.append(f"d.status = {q.arg(filters.delivery_status)}")
    conditions += _time_conditions(q, filters, after, "d.message_received_at", "d.message_id")
    inner = [
        "m.id = d.message_id AND m.received_at = d.message_received_at",
        *_message_conditions(q, filters),
    ]
    # One delivery per (message, recipient): without a recipient, a message
    # with two dead deliveries must still be listed once.
    once = "" if filters.recipient else "DISTINCT ON (d.message_received_at, d.message_id) "
    sql = (
        f"SELECT {once}m.* FROM deliveries d CROSS JOIN LATERAL (SELECT {_COLUMNS}"  # noqa: S608
        f" FROM messages m{_where(inner)} LIMIT 1) m{_where(conditions)}"
        " ORDER BY d.message_received_at DESC, d.message_id DESC"
        f" LIMIT {q.arg(limit + 1)}"
    )
    return Query(sql, tuple(q.args))


async def find(
    conn: asyncpg.Connection,
    filters: Filters,
    limit: int,
    after: Cursor | None = None,
) -> Page:
    """Return one page of messages matching ``filters``, newest first, from ``after`` on.

    Planned for the values given, every time (``plan_cache_mode``, for this
    transaction only): a plan made once for any value would, for instance,
    walk the whole store looking for a delivery status that is rare but
    could have been common.
    """
    query = build(filters, limit, after)
    async with contextlib.AsyncExitStack() as stack:
        if not conn.is_in_transaction():
            await stack.enter_async_context(conn.transaction())
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = await conn.fetch(query.sql, *query.args)
    if len(rows) <= limit:
        return Page(list(rows), None)
    last = rows[limit - 1]
    return Page(list(rows[:limit]), Cursor(last["received_at"], last["id"]))


@dataclass
class Deliveries:
    """How one message's deliveries stand: a count per status, and to whom."""

    counts: dict[str, int] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)


async def deliveries_of(
    conn: asyncpg.Connection | asyncpg.Pool, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Deliveries]:
    """Return, per message of a page, its deliveries' statuses and recipients (one query)."""
    found: dict[uuid.UUID, Deliveries] = {}
    if not message_ids:
        return found
    for row in await conn.fetch(
        "SELECT message_id, recipient, status FROM deliveries"
        " WHERE message_id = ANY($1::uuid[]) ORDER BY message_id, recipient",
        list(message_ids),
    ):
        summary = found.setdefault(row["message_id"], Deliveries())
        summary.counts[row["status"]] = summary.counts.get(row["status"], 0) + 1
        summary.recipients.append(row["recipient"])
    return found
