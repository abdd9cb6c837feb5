"""Read delivery and read notices from the application mailbox; update mails; send ZAMs back.

One reader at a time (a PostgreSQL advisory lock, held for the IMAP session)
takes the ``multipart/report`` mails of the mailbox not yet marked
``$CarebrokerDone`` (``adapters/mssante/imap.py``), oldest first. For each
notice, ONE transaction:

- records each recipient block in ``mssante_notices`` (unique per notice and
  block: a notice read again after a crash changes nothing, and no second
  ZAM is queued, let alone a different one);
- finds the mail it reports on by the delivery id carebroker put in the
  envelope id and Message-ID (``<delivery id@domain>``);
- a final DSN: closes the mail's overdue alert; a failure marks the delivery
  ``failed`` with the recipient server's words; when the creator asked for
  it (ACK_RECEPTION), queues ``ZAM^Z02`` (Y, or N with the SMTP code);
- an MDN, when the creator asked (ACK_LECTURE_MSS): ``ZAM^Z03`` (Y, or N with
  the consumer's error code);
- records ``notice_received`` (ids, kind, status, code; never an address).

Only then is the mail marked on the server (design invariant 1). A ZAM is a
delivery of its own to the creator's endpoint (``routing/zam.py``): retried,
ordered in the creator's lane for that patient, audited, shown with the
message. Every pass also queues ``ZAM^Z02`` N for mails the SMTP server
refused outright (5xx, or dead after retries) and notes the mails whose
delivery notice has not come within ``reception_overdue_s``
(``mssante_overdue``), from which ``broker/alerts.py`` raises
``mssante_reception_overdue``.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.hl7v2.ack import Header
from adapters.mssante.imap import REPORTS, ImapMailbox, MailboxError
from adapters.mssante.notices import Notice, Report, read_notice
from broker.directory import MailboxEndpoint, MllpEndpoint
from broker.envelope import DeliveryRequest
from broker.errors import StoreRefusedError, StoreUnavailableError
from broker.events import AuditEvent
from broker.ids import new_id
from broker.store.mssante import MailRow, MssanteStore, MssanteWork, zam_kind
from broker.store.outbox import OutboxRow
from broker.store.work import NewDelivery
from routing import app_ack
from routing.lanes import lane_of, partition_of
from routing.render import V2_CONTENT_TYPE
from routing.zam import Zam, build_zam, error_label

if TYPE_CHECKING:
    from broker.context import Context

log = logging.getLogger(__name__)

ACTOR = "mssante"
DONE = "$CarebrokerDone"
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)
_TROUBLE: tuple[type[BaseException], ...] = (
    MailboxError,
    StoreUnavailableError,
    StoreRefusedError,
)


class NoticeReader:
    """Read notices and act on them; the sweeps of owed ZAMs and overdue notices."""

    def __init__(self, ctx: Context, acks: app_ack.Lanes, store: MssanteStore) -> None:
        self.ctx = ctx
        self.acks = acks
        self.store = store
        self.settings = ctx.settings.mssante
        self.applied = 0  # notices whose effect was committed (tests, logs)

    async def run(self) -> None:
        """Read until cancelled; reconnect after trouble, with a pause."""
        pause = 1.0
        while True:
            try:
                await self._session()
                pause = 1.0
            except _TROUBLE as exc:
                log.warning(
                    "mssante: notices not read, retrying", extra={"error": type(exc).__name__}
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.settings.notice_poll_s)

    async def _session(self) -> None:
        async with self.store.reader_lock() as held:
            if not held:
                # Another delivery instance reads the mailbox: wait for it to stop.
                await asyncio.sleep(self.settings.notice_poll_s)
                return
            mailbox = ImapMailbox(self.settings)
            await mailbox.connect()
            try:
                while True:
                    await self.read_once(mailbox)
                    await self.sweep()
                    await mailbox.wait(self.settings.notice_poll_s)
            finally:
                await mailbox.close()

    async def read_once(self, mailbox: ImapMailbox) -> int:
        """Apply every notice waiting in the mailbox, marking each after its commit."""
        done = 0
        for uid in await mailbox.search(f"UNKEYWORD {DONE} {REPORTS}"):
            data = await mailbox.fetch(uid)
            await self.apply(data)
            await mailbox.flag(uid, DONE, "\\Seen")
            done += 1
        return done

    async def apply(self, data: bytes) -> Notice | None:
        """Commit what one notice says (idempotent); return it, or None if it is not one."""
        notice = read_notice(data)
        if notice is None:
            log.info("mssante: a report that is neither a DSN nor an MDN: marked, left aside")
            return None
        directory = self.ctx.directory
        audit: list[AuditEvent] = []
        async with self.store.transaction() as work:
            for part, report in enumerate(notice.reports):
                mail = (
                    await work.mails.mail(report.delivery_id)
                    if report.delivery_id is not None
                    else None
                )
                recorded = await work.mails.record_notice(
                    notice_key=notice.key,
                    part=part,
                    kind=notice.kind,
                    delivery_id=mail.delivery_id if mail else None,
                    message_id=mail.message_id if mail else None,
                    status=report.status,
                    final=report.final,
                    success=report.success,
                    code=report.code,
                    label=report.label,
                    words=report.words,
                )
                if recorded is None:
                    continue  # read before: its effect is committed already
                if mail is None:
                    audit.append(_event(notice, report, None, "minor_failure", matched=False))
                    continue
                audit += await self._act(work, notice, report, mail, recorded, directory)
            await work.audit.record(audit)
        self.applied += 1
        return notice

    async def _act(
        self,
        work: MssanteWork,
        notice: Notice,
        report: Report,
        mail: MailRow,
        recorded: tuple[Any, datetime],
        directory: Any,
    ) -> list[AuditEvent]:
        produced: list[AuditEvent] = []
        detail: dict[str, Any] = {}
        event: str | None = None
        if notice.kind == "dsn" and report.final:
            await work.mails.clear_overdue(mail.delivery_id)
            if not report.success and await work.mails.fail(
                mail.delivery_id, report.code, report.words
            ):
                produced.append(_failed(mail, report))
            if "ack_reception" in mail.flags:
                event = "Z02"
        elif notice.kind == "mdn" and "ack_reading" in mail.flags:
            event = "Z03"
        if event is not None:
            zam = Zam(
                event,  # type: ignore[arg-type]  # "Z02" or "Z03"
                report.success,
                report.recipient or _to(mail),
                code=report.code,
                label=report.label,
            )
            detail["zam"] = await self._queue(work, mail, zam, recorded[1], directory)
        outcome = "success" if report.success or not report.final else "minor_failure"
        produced.insert(0, _event(notice, report, mail, outcome, **detail))
        return produced

    async def _queue(
        self,
        work: MssanteWork,
        mail: MailRow,
        zam: Zam,
        when: datetime,
        directory: Any,
    ) -> str:
        """Queue a ZAM to the mail's sender; return what happened (for the audit event)."""
        sender = directory.partner(mail.sender) if mail.sender else None
        if sender is None or not isinstance(sender.endpoint, MllpEndpoint | MailboxEndpoint):
            return f"{zam.event} not sent: the sender has no MLLP endpoint"
        envelope = mail.envelope
        codec = str(envelope.get("charset") or "utf-8")
        delivery_id = new_id()
        control_id = delivery_id.hex[:20].upper()
        original = Header.read(mail.header.decode(codec, "replace"))
        text = build_zam(zam, original, control_id=control_id, now=when)
        lane = lane_of(sender, str(envelope.get("ordering_key") or mail.message_id))
        partition = partition_of(lane, self.acks.partitions)
        queued = await work.deliveries.add(
            [
                NewDelivery(
                    id=delivery_id,
                    message_id=mail.message_id,
                    message_received_at=mail.message_received_at,
                    recipient=sender.id,
                    lane=lane,
                    partition=partition,
                    payload=text.encode(codec, errors="replace"),
                    content_type=f"{V2_CONTENT_TYPE}; charset={codec}",
                    control_id=control_id,
                    rules=["zam"],
                    reasons=[{"rule": "zam", "field": zam.event, "value": str(mail.delivery_id)}],
                    trace=mail.trace,
                    kind=zam_kind(zam.event, mail.delivery_id),
                )
            ]
        )
        if not queued:
            return f"{zam.event} already queued"
        await work.outbox.publish(
            [
                OutboxRow(
                    self.acks.topic,
                    DeliveryRequest(
                        delivery_id=delivery_id,
                        message_id=mail.message_id,
                        recipient=sender.id,
                        lane=lane,
                        trace=mail.trace or {},
                    )
                    .model_dump_json()
                    .encode(),
                    lane.encode(),
                    partition,
                    headers=mail.trace,
                )
            ]
        )
        return f"{zam.event} queued {'Y' if zam.success else 'N'} ({delivery_id})"

    async def sweep(self) -> None:
        """Queue ZAM^Z02 N for mails refused at submission; alert on overdue delivery notices."""
        directory = self.ctx.directory
        audit: list[AuditEvent] = []
        async with self.store.transaction() as work:
            for delivery_id in await work.mails.failed_without_z02():
                mail = await work.mails.mail(delivery_id)
                if mail is None:
                    continue
                code = mail.ack_code if mail.ack_code and mail.ack_code.isdigit() else "554"
                # The refusal at submission, recorded as the notice it stands for: the sweep
                # decides each mail once, whether or not a ZAM can go to its creator.
                recorded = await work.mails.record_notice(
                    notice_key=f"smtp:{mail.delivery_id}",
                    part=0,
                    kind="dsn",
                    delivery_id=mail.delivery_id,
                    message_id=mail.message_id,
                    status="failed",
                    final=True,
                    success=False,
                    code=code,
                    label="",
                    words="refused by the SMTP server at submission",
                )
                if recorded is None:
                    continue
                zam = Zam("Z02", False, _to(mail), code=code, label=error_label("Z02", code))
                when = recorded[1]
                outcome = await self._queue(work, mail, zam, when, directory)
                audit.append(
                    AuditEvent(
                        kind="notice_received",
                        actor=ACTOR,
                        outcome="minor_failure",
                        message_id=mail.message_id,
                        recipient=mail.recipient,
                        detail={
                            "delivery_id": str(mail.delivery_id),
                            "notice": "smtp",
                            "status": "failed",
                            "code": code,
                            "zam": outcome,
                        },
                    )
                )
            # Noted once each; broker/alerts.py raises mssante_reception_overdue from them.
            overdue = await work.mails.flag_overdue(self.settings.reception_overdue_s)
            await work.audit.record(audit)
        if overdue:
            log.warning("mssante: delivery notices overdue", extra={"count": len(overdue)})


def _to(mail: MailRow) -> str:
    """Return the address a stored mail went to (its To header)."""
    return str(_HEADERS.parsebytes(mail.mail_head).get("To", "")).strip()


def _event(
    notice: Notice,
    report: Report,
    mail: MailRow | None,
    outcome: Any,
    **detail: Any,
) -> AuditEvent:
    return AuditEvent(
        kind="notice_received",
        actor=ACTOR,
        outcome=outcome,
        message_id=mail.message_id if mail else None,
        recipient=mail.recipient if mail else None,
        detail={
            "notice": notice.kind,
            "delivery_id": str(mail.delivery_id) if mail else None,
            "status": report.status,
            "success": report.success,
            "code": report.code or None,
            **detail,
        },
    )


def _failed(mail: MailRow, report: Report) -> AuditEvent:
    return AuditEvent(
        kind="failed",
        actor=ACTOR,
        outcome="serious_failure",
        message_id=mail.message_id,
        recipient=mail.recipient,
        detail={
            "delivery_id": str(mail.delivery_id),
            "ack_code": report.code,
            "reason": f"recipient server: {report.words}",
        },
    )
