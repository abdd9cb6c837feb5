"""``GET /api/flows``: live traffic per partner and direction, from the spine tables.

Inbound (a partner as sender) reads ``messages``: received and rejected per
minute over the last hour. Outbound (a partner as recipient) reads
``deliveries``: delivered and failed per minute, queue depth and the age of
the oldest message waiting (``pending`` or ``failed``, i.e. still to be
delivered), dead letters, and delivery latency (acceptance to the partner's
ACK: ``delivered_at - message_received_at``). "Failed in the last hour" counts
deliveries whose last failure was in that hour.

Every query reads only the last hour through the indexes of migration 0500
(index-only where it can), so the page stays fast on a large store; pollers
within ``flows_cache_s`` of each other share one computation. Only ids,
counts and times leave here: the page shows no clinical content to viewers.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from broker.console.auth import Viewer
from broker.console.deps import Ctx
from broker.directory import Directory
from broker.store.console import ConsoleStore, Traffic

MINUTES = 60
RECENT = 5  # minutes in the "last minutes" columns
BACKLOG_AFTER_S = 300  # oldest pending older than this: the recipient shows "backlog"

FlowState = Literal["idle", "ok", "backlog", "failing", "paused"]


class Totals(BaseModel):
    """Counts across every partner."""

    received_5m: int = 0
    received_1h: int = 0
    rejected_1h: int = 0
    delivered_5m: int = 0
    delivered_1h: int = 0
    failed_1h: int = 0
    queued: int = 0
    dead: int = 0


class Series(BaseModel):
    """Counts per minute over the last hour, oldest first (60 values)."""

    received: list[int]
    rejected: list[int]
    delivered: list[int]
    failed: list[int]


class Inbound(BaseModel):
    """One sender's traffic into carebroker."""

    partner: str = Field(description="Partner id; empty when the sender was not recognised.")
    name: str
    received_5m: int
    received_1h: int
    rejected_1h: int
    received: list[int] = Field(description="Received per minute, oldest first.")


class Outbound(BaseModel):
    """One recipient's deliveries from carebroker."""

    partner: str
    name: str
    endpoint: str = Field(description="mllp | fhir | mailbox")
    state: FlowState
    delivered_5m: int
    delivered_1h: int
    failed_5m: int
    failed_1h: int
    queued: int = Field(description="Deliveries still to make (pending or failed, retrying).")
    oldest_pending_age_s: float | None
    dead: int = Field(description="Dead letters waiting for an operator.")
    latency_p50_s: float | None = Field(description="Acceptance to delivery, last hour.")
    latency_p95_s: float | None
    delivered: list[int] = Field(description="Delivered per minute, oldest first.")
    failed: list[int]


class Flows(BaseModel):
    """The flows page's data."""

    generated_at: datetime
    minutes: int = MINUTES
    totals: Totals
    series: Series
    inbound: list[Inbound]
    outbound: list[Outbound]


def _bucket(series: dict[str, list[int]], key: str, ago: int, count: int) -> None:
    if 0 <= ago < MINUTES:
        series.setdefault(key, [0] * MINUTES)[MINUTES - 1 - ago] += count


async def compute(store: ConsoleStore, directory: Directory, now: datetime | None = None) -> Flows:
    """Read the last hour's traffic and the current queues."""
    now = now or datetime.now(UTC)
    async with store.connection() as work:
        traffic = await work.traffic.last_hour(now, now - timedelta(minutes=MINUTES))
    return _assemble(now, directory, traffic)


def _assemble(now: datetime, directory: Directory, traffic: Traffic) -> Flows:
    received, delivered, latency = traffic.received, traffic.delivered, traffic.latency
    failed, queued, dead, paused = traffic.failed, traffic.queued, traffic.dead, traffic.paused
    per_minute: dict[str, list[int]] = {}
    for r in received:
        _bucket(per_minute, f"in:{r['partner']}", r["ago"], r["n"])
        _bucket(per_minute, f"rej:{r['partner']}", r["ago"], r["rejected"])
    for r in delivered:
        _bucket(per_minute, f"out:{r['recipient']}", r["ago"], r["n"])
    for r in failed:
        _bucket(per_minute, f"fail:{r['recipient']}", r["ago"], r["n"])
    zeros = [0] * MINUTES

    def row(prefix: str, partner: str) -> list[int]:
        return per_minute.get(f"{prefix}:{partner}", zeros)

    def name(partner: str) -> str:
        found = directory.partner(partner)
        return found.name if found else partner

    senders = sorted(
        {p for p in directory.partners} | {r["partner"] for r in received},
        key=lambda p: (p == "", p),
    )
    inbound = [
        Inbound(
            partner=p,
            name=name(p) if p else "",
            received_5m=sum(row("in", p)[-RECENT:]),
            received_1h=sum(row("in", p)),
            rejected_1h=sum(row("rej", p)),
            received=row("in", p),
        )
        for p in senders
    ]

    lat = {r["recipient"]: (r["p50"], r["p95"]) for r in latency}
    queue = {r["recipient"]: (r["n"], r["oldest"]) for r in queued}
    dead_counts = {r["recipient"]: r["n"] for r in dead}
    recipients = sorted(
        {p.id for p in directory.recipients()}
        | set(queue)
        | set(dead_counts)
        | {r["recipient"] for r in delivered}
        | {r["recipient"] for r in failed}
        | paused
    )
    outbound = []
    for p in recipients:
        depth, oldest = queue.get(p, (0, None))
        age = (now - oldest).total_seconds() if oldest else None
        partner = directory.partner(p)
        out = Outbound(
            partner=p,
            name=name(p),
            endpoint=partner.endpoint.type if partner and partner.endpoint else "",
            state="idle",
            delivered_5m=sum(row("out", p)[-RECENT:]),
            delivered_1h=sum(row("out", p)),
            failed_5m=sum(row("fail", p)[-RECENT:]),
            failed_1h=sum(row("fail", p)),
            queued=depth,
            oldest_pending_age_s=max(age, 0.0) if age is not None else None,
            dead=dead_counts.get(p, 0),
            latency_p50_s=lat.get(p, (None, None))[0],
            latency_p95_s=lat.get(p, (None, None))[1],
            delivered=row("out", p),
            failed=row("fail", p),
        )
        state: FlowState = "paused" if p in paused else _state(out)
        outbound.append(out.model_copy(update={"state": state}))

    def total(prefix: str) -> list[int]:
        rows = [v for k, v in per_minute.items() if k.startswith(f"{prefix}:")]
        return [sum(col) for col in zip(*rows, strict=True)] if rows else list(zeros)

    series = Series(
        received=total("in"), rejected=total("rej"), delivered=total("out"), failed=total("fail")
    )
    totals = Totals(
        received_5m=sum(series.received[-RECENT:]),
        received_1h=sum(series.received),
        rejected_1h=sum(series.rejected),
        delivered_5m=sum(series.delivered[-RECENT:]),
        delivered_1h=sum(series.delivered),
        failed_1h=sum(series.failed),
        queued=sum(o.queued for o in outbound),
        dead=sum(o.dead for o in outbound),
    )
    return Flows(generated_at=now, totals=totals, series=series, inbound=inbound, outbound=outbound)


def _state(out: Outbound) -> FlowState:
    """Summarise a recipient in one word the page shows as text, not only as a colour."""
    if out.failed_5m and not out.delivered_5m:
        return "failing"
    if out.oldest_pending_age_s is not None and out.oldest_pending_age_s > BACKLOG_AFTER_S:
        return "backlog"
    if out.delivered_1h or out.queued:
        return "ok"
    return "idle"


class FlowsCache:
    """Share one computation between pollers arriving within ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = asyncio.Lock()
        self._value: tuple[float, str, Flows] | None = None

    async def get(self, store: ConsoleStore, directory: Directory) -> Flows:
        """Return fresh-enough flows for this directory."""
        async with self._lock:
            cached = self._value
            if cached and cached[1] == directory.digest and time.monotonic() - cached[0] < self.ttl:
                return cached[2]
            flows = await compute(store, directory)
            self._value = (time.monotonic(), directory.digest, flows)
            return flows


router = APIRouter(prefix="/api/flows", tags=["flows"])


@router.get("", summary="Traffic per partner and direction, last hour, and queues")
async def flows(
    _: Viewer,
    ctx: Ctx,
) -> Flows:
    """Return the flows page's data; viewers may read it (counts and ids only)."""
    assert ctx.console is not None  # context() checked it
    return await ctx.console.flows.get(ctx.stores.console, ctx.directory)
