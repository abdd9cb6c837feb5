"""The ``audit`` role: chain pending audit events, watch alerts, apply retention, feed syslog.

Everything here runs off the hot path, in the background of whichever
processes run the role. Several instances are safe: the writer appends under
an advisory lock (one chain, no forks), alert changes are recorded in one
transaction each, and dropping an already dropped partition is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from broker import retention
from broker.alerts import AlertMonitor
from broker.audit_syslog import SyslogSender
from broker.errors import StorePrivilegeError, StoreRefusedError, StoreUnavailableError
from broker.store.audit import AuditWriter

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

# What a store failure looks like here: retried at the next step, never fatal.
_STORE_FAILED = (StoreUnavailableError, StoreRefusedError)
IDLE_POLL_S = 0.5


class AuditRole:
    """Run the audit writer and its companions until the process stops."""

    name = "audit"

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._lines: list[str] = []
        self.writer: AuditWriter | None = None

    async def start(self, ctx: Context) -> None:
        """Start the writer, the alert monitor, retention and (when set) the syslog sender."""
        settings = ctx.settings
        writer = self.writer = ctx.stores.audit.writer(settings.audit_batch)
        monitor = AlertMonitor(ctx.stores.alerts, lambda: ctx.directory, settings)
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "audit-writer": lambda: _write(writer, ctx.stop),
            "alerts": lambda: monitor.run(ctx.stop),
            "retention": lambda: _retain(ctx, settings.retention_interval_s),
        }
        self._lines = [
            "audit: writer chaining audit_pending into the audit trail (one chain per day)",
            f"audit: alerts every {settings.alert_interval_s:g} s; retention payloads "
            f"{settings.retention_payload_days} d, messages {settings.retention_message_days} d,"
            f" audit {settings.retention_audit_days} d",
        ]
        if settings.audit_syslog_host:
            sender = SyslogSender(ctx.stores.audit, settings)
            loops["audit-syslog"] = lambda: sender.run(ctx.stop)
            scheme = "tls" if settings.audit_syslog_tls else "tcp"
            self._lines.append(
                f"audit: syslog {scheme}://{settings.audit_syslog_host}:"
                f"{settings.audit_syslog_port} (ATNA, RFC 5424)"
            )
        self._tasks = [asyncio.create_task(run(), name=name) for name, run in loops.items()]

    async def stop(self) -> None:
        """Let the loops finish their current step (they watch ``ctx.stop``), bounded."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=6)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def endpoints(self) -> list[str]:
        """Return the banner lines."""
        return self._lines


async def _write(writer: AuditWriter, stop: asyncio.Event) -> None:
    """Chain pending events until stopped; on failure, retry (never drop)."""
    backoff = IDLE_POLL_S
    while not stop.is_set():
        try:
            moved = await writer.drain_all()
            backoff = IDLE_POLL_S
        except _STORE_FAILED as exc:
            # The batch rolled back whole: it is still pending and will be chained.
            log.warning("audit writer: batch not chained, retrying", exc_info=exc)
            moved = 0
            backoff = min(backoff * 2, 10.0)
        if moved == 0:
            await _sleep_or_stop(stop, backoff)
    with contextlib.suppress(*_STORE_FAILED):
        await writer.drain_all()  # what was recorded before the stop


async def _retain(ctx: Context, interval: float) -> None:
    while not ctx.stop.is_set():
        try:
            await retention.apply(ctx.stores.partitions, ctx.settings)
        except StorePrivilegeError:
            log.warning("retention not applied: the database role may not drop partitions")
        except _STORE_FAILED as exc:
            log.warning("retention not applied now", exc_info=exc)
        await _sleep_or_stop(ctx.stop, interval)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
