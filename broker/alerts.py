"""Alerts carebroker evaluates itself: silent senders, stale queues, dead letters, certificates.

Operators asked for alerts built in rather than bolted on (peer-systems §4.4:
queue depth, a receiver down for long, one alert when it starts and one when
it is resolved) and for silence detection ("failures can be silent",
domain-requirements §5). Conditions, each configurable:

- ``sender_silent``: a partner with ``expected_interval_s`` in the directory
  sent nothing for longer than that;
- ``queue_stale``: a recipient's oldest pending delivery is older than
  ``alert_queue_age_minutes``;
- ``dead_letters``: a recipient has dead-lettered deliveries
  (``alert_dead_letters``);
- ``certificate_expiring``: a certificate carebroker uses (MLLP server and
  client CA, syslog client and CA, Kafka CA, the MSSanté mailbox's and its
  CA) expires within ``alert_certificate_days``, or cannot be read;
- ``mssante_reception_overdue``: MSSanté mails to a recipient asked for a
  delivery notice (ACK_RECEPTION) that has not come within
  ``CAREBROKER_MSSANTE__RECEPTION_OVERDUE_S`` (noted by the notice reader,
  ``routing/notices.py``; the alert ends when the notice comes).

:func:`evaluate` is pure (facts in, alerts out). :class:`AlertMonitor` runs in
the audit role: it gathers the facts, records each alert's start and end in
the ``alerts`` table with an ``alert_changed`` audit event (one event when an
alert starts, one when it is resolved, never a flood), and so feeds
``GET /api/alerts`` and the ``carebroker_alerts_firing`` metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from broker.directory import Directory
from broker.errors import StoreRefusedError, StoreUnavailableError
from broker.events import AuditEvent
from broker.ops_access import OPERATIONS_RESPONSES, require_operations_access
from broker.settings import Settings
from broker.store.alerts import AlertStore
from broker.store.mssante import MailRows

log = logging.getLogger(__name__)

AlertName = Literal[
    "sender_silent",
    "queue_stale",
    "dead_letters",
    "certificate_expiring",
    "mssante_reception_overdue",
]
# Silence is looked for this far back at most: older is "silent" anyway.
_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True)
class Alert:
    """One condition that holds now, about one subject (partner, recipient, file)."""

    name: AlertName
    subject: str
    summary: str
    severity: Literal["warning", "critical"] = "warning"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """What the conditions are evaluated on, read from PostgreSQL and the file system."""

    now: datetime
    watching_since: datetime
    last_received: dict[str, datetime | None]
    oldest_pending: dict[str, datetime]
    dead: dict[str, int]
    certificates: dict[str, datetime | None]
    mssante_overdue: dict[str, int] = field(default_factory=dict)  # recipient -> mails


def evaluate(facts: Facts, directory: Directory, settings: Settings) -> list[Alert]:
    """Return the alerts that hold for these facts (pure: no I/O)."""
    alerts: list[Alert] = []
    for partner in directory.partners.values():
        if partner.expected_interval_s is None:
            continue
        last = facts.last_received.get(partner.id)
        reference = last or facts.watching_since
        silent = (facts.now - reference).total_seconds()
        if silent > partner.expected_interval_s:
            alerts.append(
                Alert(
                    "sender_silent",
                    partner.id,
                    f"{partner.id} has sent nothing for {_duration(silent)} "
                    f"(expected every {_duration(partner.expected_interval_s)})",
                    detail={
                        "last_received": last.isoformat() if last else None,
                        "silent_s": round(silent),
                        "expected_interval_s": partner.expected_interval_s,
                    },
                )
            )
    limit = settings.alert_queue_age_minutes * 60
    for recipient, oldest in sorted(facts.oldest_pending.items()):
        age = (facts.now - oldest).total_seconds()
        if age > limit:
            alerts.append(
                Alert(
                    "queue_stale",
                    recipient,
                    f"{recipient}: oldest pending delivery waits for {_duration(age)}",
                    detail={"oldest_age_s": round(age), "limit_s": limit},
                )
            )
    if settings.alert_dead_letters:
        for recipient, count in sorted(facts.dead.items()):
            if count:
                alerts.append(
                    Alert(
                        "dead_letters",
                        recipient,
                        f"{recipient}: {count} dead-lettered deliver{'y' if count == 1 else 'ies'}",
                        severity="critical",
                        detail={"count": count},
                    )
                )
    for recipient, count in sorted(facts.mssante_overdue.items()):
        shown = "patient (MSSanté)" if recipient.startswith("mssante:patient") else recipient
        alerts.append(
            Alert(
                "mssante_reception_overdue",
                recipient,
                f"{shown}: {count} MSSanté mail{'' if count == 1 else 's'} without the delivery "
                f"notice asked for, after {_duration(settings.mssante.reception_overdue_s)}",
                detail={"mails": count, "after_s": settings.mssante.reception_overdue_s},
            )
        )
    horizon = facts.now + timedelta(days=settings.alert_certificate_days)
    for path, expires in sorted(facts.certificates.items()):
        if expires is None:
            alerts.append(
                Alert(
                    "certificate_expiring",
                    path,
                    f"certificate {path} cannot be read",
                    severity="critical",
                    detail={"expires": None},
                )
            )
        elif expires <= horizon:
            left = (expires - facts.now).total_seconds()
            summary = (
                f"certificate {path} expired {_duration(-left)} ago"
                if left <= 0
                else f"certificate {path} expires in {_duration(left)}"
            )
            alerts.append(
                Alert(
                    "certificate_expiring",
                    path,
                    summary,
                    severity="critical" if left <= 0 else "warning",
                    detail={"expires": expires.isoformat()},
                )
            )
    return alerts


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def watched_certificates(settings: Settings) -> list[Path]:
    """Return the certificate files carebroker is configured with (their expiry is watched)."""
    files = [
        settings.mllp.tls_cert,
        settings.mllp.tls_client_ca,
        settings.audit_syslog_cert,
        settings.audit_syslog_ca,
        settings.kafka_ssl_cafile,
        settings.mssante.cert,
        settings.mssante.ca,
    ]
    return list(dict.fromkeys(f for f in files if f is not None))


def certificate_expiry(path: Path) -> datetime | None:
    """Return when the first certificate in a PEM file (a bundle too) to expire does, or None.

    None means the file cannot be read or holds no certificate: alerted too.
    """
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return None
    return min(c.not_valid_after_utc for c in certificates)


async def gather(
    store: AlertStore,
    directory: Directory,
    settings: Settings,
    *,
    watching_since: datetime,
    now: datetime | None = None,
) -> Facts:
    """Read the facts the conditions need (index lookups only)."""
    now = now or datetime.now(UTC)
    senders = [p.id for p in directory.partners.values() if p.expected_interval_s is not None]
    async with store.connection() as work:
        found = await work.alerts.facts(senders, now - _LOOKBACK)
        overdue = await MailRows(work.alerts.conn).overdue_counts()
    certificates = {str(p): certificate_expiry(p) for p in watched_certificates(settings)}
    return Facts(
        now,
        watching_since,
        found.last_received,
        found.oldest_pending,
        found.dead,
        certificates,
        overdue,
    )


async def record(store: AlertStore, alerts: Iterable[Alert], now: datetime) -> list[AuditEvent]:
    """Open new alerts, refresh firing ones, resolve the rest; audit starts and ends."""
    firing = {(a.name, a.subject): a for a in alerts}
    changes: list[AuditEvent] = []
    async with store.transaction() as work:
        open_keys = await work.alerts.firing(lock=True)
        for key, since in open_keys.items():
            if key in firing:
                await work.alerts.seen(key, since, now, firing[key].detail)
            else:
                await work.alerts.resolve(key, since, now)
                changes.append(_event(key, "resolved"))
        for key, alert in firing.items():
            if key not in open_keys:
                await work.alerts.open(key, now, alert.detail)
                changes.append(_event(key, "firing", alert))
        await work.audit.record(changes)
    return changes


def _event(key: tuple[str, str], state: str, alert: Alert | None = None) -> AuditEvent:
    return AuditEvent(
        kind="alert_changed",
        actor="alerts",
        outcome="minor_failure" if state == "firing" else "success",
        partner=key[1] if key[0] in ("sender_silent",) else None,
        recipient=key[1] if key[0] in ("queue_stale", "dead_letters") else None,
        detail={"alert": key[0], "subject": key[1], "state": state}
        | ({"severity": alert.severity} if alert else {}),
    )


class AlertMonitor:
    """Evaluate the conditions every ``alert_interval_s`` and record what changed."""

    def __init__(
        self, store: AlertStore, directory: Callable[[], Directory], settings: Settings
    ) -> None:
        self.store = store
        self.directory = directory
        self.settings = settings
        self.started = datetime.now(UTC)
        self.current: list[Alert] = []

    async def check(self, now: datetime | None = None) -> list[Alert]:
        """Evaluate once, record changes, and return the alerts firing now."""
        now = now or datetime.now(UTC)
        facts = await gather(
            self.store, self.directory(), self.settings, watching_since=self.started, now=now
        )
        self.current = evaluate(facts, self.directory(), self.settings)
        await record(self.store, self.current, now)
        return self.current

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set; a store outage only delays the next check."""
        while not stop.is_set():
            try:
                await self.check()
            except (StoreUnavailableError, StoreRefusedError) as exc:
                log.warning("alerts not evaluated: store unavailable", exc_info=exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.alert_interval_s):
                    await stop.wait()


class AlertOut(BaseModel):
    """One alert as ``GET /api/alerts`` shows it."""

    name: AlertName
    subject: str = Field(description="Partner id, recipient or certificate file.")
    severity: Literal["warning", "critical"]
    summary: str
    since: datetime | None = Field(description="When the audit role first saw it firing.")
    detail: dict[str, Any]


class AlertsOut(BaseModel):
    """The alerts that hold now."""

    evaluated_at: datetime
    alerts: list[AlertOut]


ROUTER = APIRouter(
    tags=["operations"],
    dependencies=[Depends(require_operations_access)],
    responses=OPERATIONS_RESPONSES,
)


@ROUTER.get("/api/alerts", summary="Alerts firing now", response_model=AlertsOut)
async def alerts_now(request: Request) -> AlertsOut:
    """Evaluate the conditions now (``app.state.context``: stores, directory, settings)."""
    ctx = request.app.state.context
    now = datetime.now(UTC)
    started: datetime = getattr(request.app.state, "started", now)
    store: AlertStore = ctx.stores.alerts
    facts = await gather(store, ctx.directory, ctx.settings, watching_since=started, now=now)
    firing = evaluate(facts, ctx.directory, ctx.settings)
    async with store.connection() as work:
        since = await work.alerts.firing()
    return AlertsOut(
        evaluated_at=now,
        alerts=[
            AlertOut(
                name=a.name,
                subject=a.subject,
                severity=a.severity,
                summary=a.summary,
                since=since.get((a.name, a.subject)),
                detail=a.detail,
            )
            for a in firing
        ],
    )


# What a process serves from this module (broker.app mounts them on every process).
ROUTERS = [ROUTER]
