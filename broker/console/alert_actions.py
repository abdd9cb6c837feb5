"""The alerts page: alerts with their state and history; acknowledge and silence.

- ``GET /api/alerts/state`` — what ``GET /api/alerts`` evaluates now
  (``broker.alerts``), each alert with its acknowledgement and silence, the
  silences in force, and the history: the ``alert_changed`` events of the
  audit trail (started, resolved, acknowledged, silenced ...), newest first.
- ``POST /api/alerts/acknowledge`` — "someone is on it": marks the alert's
  current occurrence (its open row in ``alerts``, recorded by the audit role's
  monitor). When the alert resolves and fires again, the new occurrence is
  unacknowledged.
- ``POST /api/alerts/silence`` / ``unsilence`` — silence an alert (name and
  subject) for some hours, whatever its occurrences, or end that early. A
  silenced alert is still evaluated and shown, marked silenced: silencing
  hides nothing, it says an operator decided it needs no attention until then
  (peer-systems §4.4: one alert when a problem starts, not a flood).

Changes need the ``operator`` role and a reason, take the CSRF token from a
browser, and are ``alert_changed`` audit events naming the user, recorded in
the transaction that makes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from broker.alerts import AlertName, AlertOut, alerts_now
from broker.console.actions import REASON_CHARS
from broker.console.auth import Operator, Principal, Viewer
from broker.console.deps import Ctx
from broker.events import AuditEvent
from broker.store.alerts import AlertStore

HISTORY_DAYS = 30
HISTORY_MAX = 200
SILENCE_MAX_HOURS = 24 * 30

router = APIRouter(prefix="/api/alerts", tags=["operations"])


class Acknowledgement(BaseModel):
    """Who acknowledged the current occurrence of an alert, when and why."""

    by: str
    at: datetime
    reason: str


class Silence(BaseModel):
    """An alert silenced until a time."""

    name: str
    subject: str
    until: datetime
    reason: str
    by: str
    at: datetime


class AlertState(AlertOut):
    """An alert firing now, with what operators did about it."""

    acknowledged: Acknowledgement | None
    silenced: Silence | None


class AlertChange(BaseModel):
    """One ``alert_changed`` event: an alert started or ended, or an operator acted on it."""

    occurred_at: datetime
    alert: str
    subject: str
    change: str = Field(description="firing | resolved | acknowledged | silenced | unsilenced")
    actor: str
    reason: str | None
    detail: dict[str, Any]


class AlertsState(BaseModel):
    """The alerts page's data."""

    evaluated_at: datetime
    alerts: list[AlertState]
    silences: list[Silence] = Field(description="Silences in force, firing or not.")
    history: list[AlertChange] = Field(description=f"Newest first, last {HISTORY_DAYS} days.")


class AlertRef(BaseModel):
    """Which alert, and why the operator acts on it."""

    model_config = ConfigDict(hide_input_in_errors=True)

    name: AlertName
    subject: str = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=REASON_CHARS)


class SilenceRequest(AlertRef):
    """An alert to silence, and for how long."""

    hours: float = Field(gt=0, le=SILENCE_MAX_HOURS)


class Unsilence(BaseModel):
    """Which alert's silence to end."""

    model_config = ConfigDict(hide_input_in_errors=True)

    name: AlertName
    subject: str = Field(min_length=1, max_length=1000)
    reason: str = Field(default="", max_length=REASON_CHARS)


async def silences(store: AlertStore, now: datetime) -> list[Silence]:
    """Return the silences in force at ``now``."""
    async with store.connection() as work:
        rows = await work.alerts.silences(now)
    return [Silence(**r) for r in rows]


async def history(store: AlertStore, now: datetime) -> list[AlertChange]:
    """Return the latest ``alert_changed`` events (partial index ``audit_alert_changes``)."""
    async with store.connection() as work:
        rows = await work.alerts.history((now - timedelta(days=HISTORY_DAYS)).date(), HISTORY_MAX)
    changes = []
    for r in rows:
        detail = dict(r["detail"])
        changes.append(
            AlertChange(
                occurred_at=r["occurred_at"],
                alert=str(detail.get("alert", "")),
                subject=str(detail.get("subject") or r["recipient"] or r["partner"] or ""),
                change=str(detail.get("action") or detail.get("state") or "firing"),
                actor=r["actor"],
                reason=detail.get("reason"),
                detail=detail,
            )
        )
    return changes


@router.get("/state", summary="Alerts now, with acknowledgements, silences and history")
async def alerts_state(request: Request, _: Viewer, ctx: Ctx) -> AlertsState:
    """Evaluate the alerts now (as ``GET /api/alerts``) and add what operators did."""
    now_alerts = await alerts_now(request)
    now = now_alerts.evaluated_at
    store = ctx.stores.alerts
    async with store.connection() as work:
        acknowledged = await work.alerts.acknowledgements()
    acks = {
        (r["name"], r["subject"]): Acknowledgement(
            by=r["acknowledged_by"], at=r["acknowledged_at"], reason=r["acknowledge_reason"]
        )
        for r in acknowledged
    }
    quiet = await silences(store, now)
    by_key = {(s.name, s.subject): s for s in quiet}
    return AlertsState(
        evaluated_at=now,
        alerts=[
            AlertState(
                **a.model_dump(),
                acknowledged=acks.get((a.name, a.subject)),
                silenced=by_key.get((a.name, a.subject)),
            )
            for a in now_alerts.alerts
        ],
        silences=quiet,
        history=await history(store, now),
    )


def _change(who: Principal, name: str, subject: str, action: str, **detail: Any) -> AuditEvent:
    """Return the audit event of an operator's change to an alert (as the monitor's, plus who)."""
    return AuditEvent(
        kind="alert_changed",
        actor=who.actor,
        partner=subject if name == "sender_silent" else None,
        recipient=subject if name in ("queue_stale", "dead_letters") else None,
        detail={"alert": name, "subject": subject, "action": action, **detail},
    )


@router.post(
    "/acknowledge",
    summary="Acknowledge an alert firing now (operator; audited)",
    responses={404: {"description": "The alert is not recorded as firing."}},
)
async def acknowledge_alert(body: AlertRef, who: Operator, ctx: Ctx) -> Acknowledgement:
    """Mark the alert's current occurrence as seen; the first acknowledgement stands."""
    key = (body.name, body.subject)
    async with ctx.stores.alerts.transaction() as work:
        row = await work.alerts.acknowledge(key, who.actor, body.reason)
        if row is not None:
            await work.audit.record(
                [_change(who, body.name, body.subject, "acknowledged", reason=body.reason)]
            )
            return Acknowledgement(**row)
        row = await work.alerts.acknowledgement(key)
    if row is None:
        raise HTTPException(
            404,
            f"no {body.name} alert about {body.subject} is recorded as firing (the audit role "
            "records alerts every alert_interval_s; it may have resolved meanwhile)",
        )
    return Acknowledgement(**row)


@router.post("/silence", summary="Silence an alert for some hours (operator; audited)")
async def silence_alert(body: SilenceRequest, who: Operator, ctx: Ctx) -> Silence:
    """Silence the alert until now + ``hours`` (replacing a silence in force)."""
    until = datetime.now(UTC) + timedelta(hours=body.hours)
    async with ctx.stores.alerts.transaction() as work:
        row = await work.alerts.silence((body.name, body.subject), until, body.reason, who.actor)
        await work.audit.record(
            [
                _change(
                    who,
                    body.name,
                    body.subject,
                    "silenced",
                    reason=body.reason,
                    until=until.isoformat(),
                )
            ],
        )
    return Silence(**row)


@router.post("/unsilence", summary="End an alert's silence (operator; audited)")
async def unsilence_alert(body: Unsilence, who: Operator, ctx: Ctx) -> list[Silence]:
    """End the silence now; return the silences still in force."""
    async with ctx.stores.alerts.transaction() as work:
        ended = await work.alerts.unsilence((body.name, body.subject))
        if ended:
            extra = {"reason": body.reason} if body.reason else {}
            await work.audit.record([_change(who, body.name, body.subject, "unsilenced", **extra)])
    return await silences(ctx.stores.alerts, datetime.now(UTC))
