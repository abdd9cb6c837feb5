"""The message API: find messages, see where one is and why, and its audit timeline.

- ``GET /api/messages`` — the operators' search (:mod:`broker.store.search`):
  by carebroker id, control id, sender, recipient, message type, status,
  delivery status, time range and patient identifier, newest first, a page
  at a time (``next`` is the cursor of the following page); ``POST
  /api/messages/search`` takes the same filters in a JSON body, which keeps
  a patient identifier out of URLs (the console and the CLI use it);
- ``GET /api/messages/{id}`` — one message's status and its deliveries:
  ``recipient``, ``status`` (pending | delivered | failed | dead | blocked),
  ``attempts``, ``last_error``, ``rule`` (the first rule that chose the
  recipient; ``rules`` lists them all and ``fields`` the message fields that
  matched);
- ``GET /api/messages/{id}/audit`` — every audited hop of the message, in
  chain order (``broker.store.audit.timeline``), then the events recorded but
  not chained yet.

Metadata only: ids, codes, statuses and reasons, never payloads or patient
data (design invariant 6), so a ``viewer`` may read all of it. A search by
patient identifier needs ``operator`` and is itself audited
(``patient_searched``, actor ``user:<name>``): the identifier is hashed with
the deployment's pseudonym key to the digest messages carry and is never
stored, logged or echoed; the audit event keeps the assigning authority and
the digest, so an auditor can tell who looked for a given patient. The
console's message browser (issue 7) and ``carebroker messages`` use these
routes; ``docs/openapi.json`` documents them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from broker.console.auth import Principal, Viewer
from broker.console.deps import Ctx
from broker.console.users import UserRole, has_role
from broker.context import Context
from broker.errors import StoreUnavailableError
from broker.events import AuditEvent
from broker.store import audit, search

MessageStatus = Literal["accepted", "rejected", "routed", "unroutable", "blocked"]
DeliveryStatus = Literal["pending", "delivered", "failed", "dead", "blocked"]
PATIENT_SEARCH_ROLE: UserRole = "operator"


class Delivery(BaseModel):
    """One delivery of a message to one recipient."""

    id: uuid.UUID
    recipient: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    rule: str | None = Field(description="The first rule that chose this recipient.")
    rules: list[str] = Field(description="Every rule that chose this recipient.")
    fields: list[str] = Field(description="Message fields that matched, as FIELD=identifier.")
    ack_code: str | None = Field(description="MSA-1, HTTP status or mailbox state of the answer.")
    flags: list[str] = Field(description="What the render changed: ins_stripped, chars_escaped…")
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    flagged: bool = Field(description="Waiting in a mailbox, unacknowledged for too long.")
    replays: int
    created_at: datetime
    updated_at: datetime


class MessageSummary(BaseModel):
    """A message as listed: its status and how its deliveries stand."""

    id: uuid.UUID
    received_at: datetime
    sender: str | None
    control_id: str
    message_type: str
    status: MessageStatus
    reason: str | None
    deliveries: dict[str, int] = Field(description="Number of deliveries per status.")
    recipients: list[str] = Field(default_factory=list, description="Who it is delivered to.")


class MessageList(BaseModel):
    """A page of messages, newest first."""

    messages: list[MessageSummary]
    next: str | None = Field(
        default=None,
        description="Opaque cursor of the next page (pass it as `cursor` with the same "
        "filters); null on the last page.",
    )


class SearchFilters(BaseModel):
    """The filters of a message search: the query of ``GET /api/messages``."""

    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    message_id: uuid.UUID | None = Field(
        default=None, alias="id", description="carebroker id of the message."
    )
    control_id: str | None = Field(
        default=None, description="MSH-10, or the Bundle identifier of FHIR input."
    )
    sender: str | None = Field(default=None, description="Partner id of the sender.")
    recipient: str | None = Field(
        default=None, description="Partner id of a recipient (messages routed to it)."
    )
    message_type: str | None = Field(
        default=None, description="As MSH-9 gives it: `ORU^R01`, `ADT^A08`…"
    )
    status: MessageStatus | None = None
    delivery_status: DeliveryStatus | None = Field(
        default=None,
        description="Only messages with a delivery in this status (with `recipient`: "
        "the delivery to that recipient).",
    )
    since: datetime | None = Field(
        default=None, description="Received at or after (ISO 8601; no offset: UTC)."
    )
    until: datetime | None = Field(
        default=None, description="Received before (ISO 8601; no offset: UTC)."
    )
    patient_authority: str | None = Field(
        default=None,
        description="Assigning authority of a patient identifier (PID-3.4: OID, else "
        "namespace). Needs the operator role; audited.",
    )
    patient_id: str | None = Field(
        default=None,
        description="The patient identifier's value (PID-3.1), with `patient_authority`. "
        "Hashed at once; never stored or logged.",
    )
    cursor: str | None = Field(default=None, description="The `next` value of the previous page.")
    limit: int = Field(default=100, ge=1, le=search.MAX_LIMIT)


class SearchRequest(SearchFilters):
    """The filters of ``POST /api/messages/search``: those of ``GET /api/messages``, in a body.

    A patient identifier sent this way stays out of URLs, and so out of the
    access logs of every proxy on the way. A misspelt filter is refused.
    """

    model_config = ConfigDict(extra="forbid")


class MessageDetail(BaseModel):
    """One message and every delivery of it."""

    id: uuid.UUID
    received_at: datetime
    channel: str
    format: str
    sender: str | None
    control_id: str
    message_type: str
    version: str
    status: MessageStatus
    reason: str | None
    updated_at: datetime
    peer: str | None = Field(
        default=None,
        description="Source address (host:port) of the connection it came over; null when "
        "it did not come over one (or was stored before carebroker recorded it).",
    )
    peer_certificate: str | None = Field(
        default=None,
        description="Subject of the client certificate that connection presented (mutual TLS).",
    )
    deliveries: list[Delivery]


class TimelineEvent(BaseModel):
    """One audited hop of a message."""

    chained: bool = Field(
        description="In the hash chain (day, seq, hash set); false: recorded, waiting for "
        "the audit writer."
    )
    day: str | None = Field(description="The chain (UTC day), ISO date.")
    seq: int | None = Field(description="Position in the day's chain.")
    hash: str | None = Field(description="The event's link in the chain, hex.")
    event_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime | None = Field(description="When the writer chained it.")
    kind: str
    actor: str
    outcome: str
    control_id: str | None
    partner: str | None
    recipient: str | None
    rule: str | None
    detail: dict[str, Any]


class Timeline(BaseModel):
    """A message's whole audit timeline, in order."""

    message_id: uuid.UUID
    events: list[TimelineEvent]


router = APIRouter(prefix="/api/messages", tags=["messages"])
SEARCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "A patient search by a viewer (it needs operator)."},
    422: {"description": "Invalid filter, a patient identifier without its authority "
          "(or the reverse), or a cursor this API did not hand out."},
    503: {"description": "The message store is unavailable."},
}  # fmt: skip


@router.get(
    "",
    summary="Search messages",
    responses=SEARCH_RESPONSES,
)
async def search_messages(
    who: Viewer, ctx: Ctx, filters: Annotated[SearchFilters, Query()]
) -> MessageList:
    """Return one page of messages matching every filter given, newest first."""
    return await _search(who, ctx, filters)


@router.post(
    "/search",
    summary="Search messages (filters in the body)",
    responses=SEARCH_RESPONSES,
)
async def search_messages_posted(request: SearchRequest, who: Viewer, ctx: Ctx) -> MessageList:
    """The same search as ``GET /api/messages``, its filters in a JSON body.

    Use it for a patient search: the identifier then travels in no URL, so no
    proxy's access log keeps it. A browser session sends its CSRF token, as
    with every POST.
    """
    return await _search(who, ctx, request)


async def _search(who: Principal, ctx: Context, request: SearchFilters) -> MessageList:
    patient = _patient(who, request.patient_authority, request.patient_id)
    filters = search.Filters(
        message_id=request.message_id,
        control_id=request.control_id,
        sender=request.sender,
        recipient=request.recipient,
        message_type=request.message_type,
        status=request.status,
        delivery_status=request.delivery_status,
        since=_utc(request.since),
        until=_utc(request.until),
        patient_digest=ctx.pseudonymizer.digest(*patient) if patient else None,
    )
    cursor, limit = request.cursor, request.limit
    try:
        after = search.Cursor.decode(cursor) if cursor else None
    except search.CursorError as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        async with ctx.stores.console.transaction() as work:
            page, deliveries = await work.messages.search(filters, limit, after)
            if patient is not None:
                # In the search's transaction: no patient search without its audit record.
                await work.audit.record(
                    [_patient_searched(who, patient[0], filters, len(page.rows), after)]
                )
    except StoreUnavailableError as exc:
        raise HTTPException(503, str(exc)) from exc
    empty = search.Deliveries()
    return MessageList(
        messages=[
            MessageSummary(
                **dict(row),
                deliveries=deliveries.get(row["id"], empty).counts,
                recipients=deliveries.get(row["id"], empty).recipients,
            )
            for row in page.rows
        ],
        next=page.next.encode() if page.next else None,
    )


def _utc(when: datetime | None) -> datetime | None:
    """Read a time without an offset as UTC, whatever the server's own time zone."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _patient(who: Principal, authority: str | None, value: str | None) -> tuple[str, str] | None:
    """Return the (authority, value) searched for, after checking the caller may."""
    if authority is None and value is None:
        return None
    if not has_role(who.role, PATIENT_SEARCH_ROLE):
        raise HTTPException(
            403, f"a patient search needs the {PATIENT_SEARCH_ROLE} role (you are {who.role})"
        )
    if not (authority or "").strip() or not (value or "").strip():
        # Never echo the value: the message names the parameters only.
        raise HTTPException(422, "patient_authority and patient_id go together, both non-empty")
    return (authority or "").strip(), (value or "").strip()


def _patient_searched(
    who: Principal,
    authority: str,
    filters: search.Filters,
    results: int,
    after: search.Cursor | None,
) -> AuditEvent:
    return AuditEvent(
        kind="patient_searched",
        actor=who.actor,
        detail={
            "authority": authority,
            "patient": filters.patient_digest,
            "filters": [f for f in filters.given() if f != "patient_digest"],
            "results": results,
            "page": "next" if after else "first",
            "via": who.session.kind,
        },
    )


@router.get(
    "/{message_id}",
    summary="One message and its deliveries",
    responses={404: {"description": "No message with this id."}},
)
async def get_message(message_id: uuid.UUID, _: Viewer, ctx: Ctx) -> MessageDetail:
    """Return a message's status and every delivery of it (metadata only)."""
    async with ctx.stores.console.connection() as work:
        # carebroker's ids carry their time: one partition to read, else all of them.
        row = await work.messages.summary(message_id)
        if row is None:
            raise HTTPException(404, f"no message {message_id}")
        deliveries = await work.messages.deliveries(message_id)
    return MessageDetail(**row, deliveries=[_delivery(d) for d in deliveries])


@router.get(
    "/{message_id}/audit",
    summary="A message's audit timeline, in order",
    responses={404: {"description": "No message with this id and no event about it."}},
)
async def get_timeline(message_id: uuid.UUID, _: Viewer, ctx: Ctx) -> Timeline:
    """Return every audited hop of a message: chained events in chain order, then pending ones.

    Kept after the message itself: the audit trail outlives message metadata
    (retention), so a timeline is answered as long as events exist.
    """
    # One snapshot: an event the writer moves meanwhile is seen once, chained or pending.
    chained, pending, known = await ctx.stores.audit.message_timeline(message_id)
    if not known:
        raise HTTPException(404, f"no message {message_id}")
    return Timeline(
        message_id=message_id,
        events=[_chained(r) for r in chained] + [_pending(e) for e in pending],
    )


def _chained(row: audit.Row) -> TimelineEvent:
    return TimelineEvent(
        chained=True,
        day=row.day.isoformat(),
        seq=row.seq,
        hash=row.hash.hex(),
        event_id=row.event_id,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        kind=row.kind,
        actor=row.actor,
        outcome=row.outcome,
        control_id=row.control_id,
        partner=row.partner,
        recipient=row.recipient,
        rule=row.rule,
        detail=row.detail,
    )


def _pending(fields: dict[str, Any]) -> TimelineEvent:
    return TimelineEvent(
        chained=False,
        day=None,
        seq=None,
        hash=None,
        recorded_at=None,
        **{k: v for k, v in fields.items() if k != "message_id"},
    )


def _delivery(row: dict[str, Any]) -> Delivery:
    data: dict[str, Any] = dict(row)
    reasons = data.pop("reasons") or []
    rules = list(data.pop("rules") or [])
    pending = data["status"] == "pending"
    return Delivery(
        **{**data, "next_attempt_at": data["next_attempt_at"] if pending else None},
        rule=rules[0] if rules else None,
        rules=rules,
        fields=[f"{r['field']}={r['value']}" for r in reasons],
    )


ROUTERS = (router,)
