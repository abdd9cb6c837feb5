"""Delivery notices and read receipts in the mailbox become ZAM^Z02 / ZAM^Z03 at the sender.

Real servers: the mail goes out over SMTP (aiosmtpd), the notices are placed
in the application mailbox on dovecot as the recipients' servers would
deliver them, the delivery role's reader reads them over IMAP, and the ZAMs
reach the creator's MLLP sink. SMTP refusals at submission (5xx) give a
ZAM^Z02 N with the server's code; 4xx are retried. A reader SIGKILLed between
reading a notice and committing its effect, or between the commit and
marking the mail, loses nothing and queues no second ZAM.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import pytest

from adapters.hl7v2.er7 import Message
from tests.cisis import example
from tests.conftest import REPO, wait_for
from tests.integration.mssante.conftest import MailPipeline
from tests.mail import MAILBOX, PASSWORD, dsn, mdn
from tests.sinks import MllpSink

HODA = "adam.hoda@test-ci-sis.mssante.fr"
APPLI = "appliExemple@hopitalB.mssante.fr"
RADIO = "radiologie@hopitalA.mssante.fr"
PATIENT = "146026322000196@patient.mssante.fr"


async def mail_deliveries(
    pipeline: MailPipeline, control_id: str, count: int, statuses: set[str]
) -> dict[str, uuid.UUID]:
    """Wait until the message's ``count`` mails are in ``statuses``; return address -> id."""

    async def done() -> dict[str, uuid.UUID] | None:
        rows = await pipeline.pipeline.pool.fetch(
            "SELECT d.id, d.recipient, d.status, d.payload FROM deliveries d"
            " JOIN messages m ON m.id = d.message_id"
            " WHERE m.control_id = $1 AND d.kind = 'message'",
            control_id,
        )
        if len(rows) != count or any(r["status"] not in statuses for r in rows):
            return None
        found = {}
        for row in rows:
            head = bytes(row["payload"][:4096]).decode("utf-8", "replace")
            to = next(line[4:] for line in head.split("\r\n") if line.startswith("To: "))
            found[to.strip()] = row["id"]
        return found

    result: dict[str, uuid.UUID] = await wait_for(done, timeout=30)
    return result


def zams(sink: MllpSink) -> list[tuple[str, str, str, str, str]]:
    """Return (event, status, address, OBX-4, ERR-5) of each ZAM the sink processed."""
    found = []
    for received in sink.processed:
        message = Message(received.text)
        assert message.get("MSH-21") == "2.1^CISIS_CDA_HL7_V2"
        assert message.get("MSH-12") == "2.6"
        found.append(
            (
                message.msh.get(9, comp=2),
                message.get("OBX(1)-5.1"),
                message.get("OBX(2)-5.4"),
                message.get("OBX(1)-4"),
                message.segment("ERR").field(5) if message.segment("ERR") else "",  # type: ignore[union-attr]
            )
        )
    return sorted(found)


async def _all_zams_delivered(pipeline: MailPipeline, message: uuid.UUID) -> bool:
    statuses = await pipeline.pipeline.pool.fetch(
        "SELECT status FROM deliveries WHERE message_id = $1 AND kind LIKE 'zam:%'", message
    )
    return len(statuses) == 4 and all(r["status"] == "delivered" for r in statuses)


def message_id(delivery_id: uuid.UUID) -> str:
    return f"<{delivery_id}@carebroker.test>"


async def test_dsn_and_mdn_become_zam_z02_and_z03_at_the_senders_sink(
    mail_pipeline: MailPipeline,
) -> None:
    assert "MSA|AA|" in await mail_pipeline.send(example("oru_ex0"))
    mails = await mail_deliveries(mail_pipeline, "ORU-EX0", 3, {"delivered"})
    imap = mail_pipeline.imap
    imap.append(
        dsn(
            original_message_id=message_id(mails[HODA]),
            recipient=HODA,
            envelope_id=mails[HODA].hex,
        )
    )
    imap.append(
        dsn(
            original_message_id=message_id(mails[APPLI]),  # matched by the returned headers
            recipient=APPLI,
            action="failed",
            status="5.1.1",
            diagnostic=f"smtp; 550 5.1.1 <{APPLI}>: Recipient address rejected: User unknown",
            notice_id="<dsn-2@mx.hopitalB.mssante.fr>",
        )
    )
    imap.append(mdn(original_message_id=message_id(mails[HODA]), reader=HODA))
    imap.append(
        mdn(
            original_message_id=message_id(mails[PATIENT]),
            reader=PATIENT,
            disposition="automatic-action/MDN-sent-automatically; processed/Error: "
            "902^Identifiant patient inconnu^messageErrorCondition| E^Error^errorSeverity",
            notice_id="<mdn-2@patient.mssante.fr>",
        )
    )
    labo = mail_pipeline.labo
    await wait_for(lambda: len(labo.processed) >= 4, timeout=30)
    label = "Action non effectuée : boîte aux lettres non disponible"
    assert zams(labo) == [
        ("Z02", "N", APPLI, "ORU-EX0", f"550^{label}^SMTPERRORCODE"),
        ("Z02", "Y", HODA, "ORU-EX0", ""),
        (
            "Z03",
            "N",
            PATIENT,
            "ORU-EX0",
            "902^Identifiant patient inconnu^applicationErrorCondition",
        ),
        ("Z03", "Y", HODA, "ORU-EX0", ""),
    ]
    first = Message(labo.processed[0].text)
    # Back to the creator as it addressed the platform: MSH-3..6 swapped.
    assert [first.get(f"MSH-{n}") for n in (3, 4, 5, 6)] == [
        "PFI-X",
        "Organisation-X",
        "SIL-Y",
        "labo",
    ]
    pool = mail_pipeline.pipeline.pool
    failed = await pool.fetchrow(
        "SELECT status, ack_code, last_error FROM deliveries WHERE id = $1", mails[APPLI]
    )
    assert failed is not None and (failed["status"], failed["ack_code"]) == ("failed", "550")
    assert "5.1.1" in failed["last_error"] and APPLI not in failed["last_error"]
    # Each mail is marked on the server once its effect is committed.
    await wait_for(lambda: all("$CarebrokerDone" in f for f in imap.flags()), timeout=10)
    assert len(imap.flags()) == 4
    kinds = await pool.fetch(
        "SELECT event FROM audit_pending WHERE event->>'kind' = 'notice_received'"
    )
    assert len(kinds) == 4 and all(PATIENT not in str(k["event"]) for k in kinds)


@pytest.mark.parametrize("mail_pipeline", [{"overdue_s": 1.0}], indirect=True)
async def test_smtp_refusals_fail_the_mail_with_the_servers_words_and_4xx_are_retried(
    mail_pipeline: MailPipeline,
) -> None:
    recorder = mail_pipeline.smtp.recorder
    recorder.refuse[RADIO] = f"550 5.1.1 <{RADIO}>: Recipient address rejected: User unknown"
    recorder.temporary[HODA] = 2
    assert "MSA|AA|" in await mail_pipeline.send(example("mdm_ex0", control_id="REFUSED-1"))
    mails = await mail_deliveries(mail_pipeline, "REFUSED-1", 4, {"delivered", "failed"})
    pool = mail_pipeline.pipeline.pool
    radio = await pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", mails[RADIO])
    hoda = await pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", mails[HODA])
    assert radio is not None and hoda is not None
    assert radio["status"] == "failed" and radio["ack_code"] == "550"
    assert radio["last_error"] == "550 5.1.1 <(address)>: Recipient address rejected: User unknown"
    assert hoda["status"] == "delivered" and hoda["attempts"] == 3  # two 451, then 250
    # The creator asked for reception notices: the refusal comes back as ZAM^Z02 N.
    ris = mail_pipeline.ris
    await wait_for(lambda: len(ris.processed) >= 1, timeout=30)
    assert [z[:3] for z in zams(ris)] == [("Z02", "N", RADIO)]
    assert zams(ris)[0][4].startswith("550^")
    # The refusal is decided once: recorded as its notice, not looked at again.
    assert await pool.fetchval(
        "SELECT count(*) FROM mssante_notices WHERE notice_key = $1", f"smtp:{mails[RADIO]}"
    )

    # The mails sent asked for delivery notices; none came within the second allowed.
    async def overdue() -> dict[str, str] | None:
        async with mail_pipeline.pipeline.api() as client:
            alerts = (await client.get("/api/alerts")).json()["alerts"]
        found = {
            a["subject"]: a["summary"] for a in alerts if a["name"] == "mssante_reception_overdue"
        }
        return found if len(found) == 3 else None

    assert await wait_for(overdue, timeout=15) == {
        f"mssante:{HODA}": f"mssante:{HODA}: 1 MSSanté mail without the delivery notice "
        "asked for, after 1 s",
        "hopital-b-appli": "hopital-b-appli: 1 MSSanté mail without the delivery notice "
        "asked for, after 1 s",
        "mssante:patient": "patient (MSSanté): 1 MSSanté mail without the delivery notice "
        "asked for, after 1 s",
    }
    refusals = await pool.fetch(
        "SELECT event FROM audit_pending WHERE event->>'kind' = 'notice_received'"
        " AND event->'detail'->>'notice' = 'smtp'"
    )
    assert len(refusals) == 1


@pytest.mark.parametrize("mail_pipeline", [{"reader": False}], indirect=True)
async def test_sigkill_while_reading_notices_loses_nothing_and_sends_one_zam(
    mail_pipeline: MailPipeline,
) -> None:
    assert "MSA|AA|" in await mail_pipeline.send(example("mdm_ex2", control_id="KILL-1"))
    mails = await mail_deliveries(mail_pipeline, "KILL-1", 1, {"delivered"})
    mail_pipeline.imap.append(
        dsn(
            original_message_id=message_id(mails[HODA]), recipient=HODA, envelope_id=mails[HODA].hex
        )
    )
    pool = mail_pipeline.pipeline.pool
    settings = mail_pipeline.pipeline.settings
    delivery = next(s for s in mail_pipeline.pipeline.services if s.name == "delivery")
    partitions = delivery.dispatcher.acks.partitions  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBROKER_")}
    env.update(
        {
            "CAREBROKER_DATABASE_URL": settings.database_dsn() or "",
            "CAREBROKER_CONFIG": str(settings.config),
            "CAREBROKER_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "CAREBROKER_MSSANTE__IMAP_URL": mail_pipeline.imap.url,
            "CAREBROKER_MSSANTE__MAILBOX": MAILBOX,
            "CAREBROKER_MSSANTE__PASSWORD": PASSWORD,
        }
    )

    async def reader(*kill_at: str) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.mssante.notice_once",
            str(partitions),
            *kill_at,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode is not None
        assert process.returncode in (0, -9), err.decode()[-2000:]
        return process.returncode

    async def state() -> tuple[int, int]:
        notices = await pool.fetchval("SELECT count(*) FROM mssante_notices")
        zam_rows = await pool.fetchval("SELECT count(*) FROM deliveries WHERE kind LIKE 'zam:%'")
        return notices, zam_rows

    # Killed after reading, before the commit: nothing recorded, the mail still unmarked.
    assert await reader("commit") == -9
    assert await state() == (0, 0)
    assert "$CarebrokerDone" not in mail_pipeline.imap.flags()[0]
    # Killed after the commit, before marking: its effect is there once, the mail unmarked.
    assert await reader("flag") == -9
    assert await state() == (1, 1)
    first = await pool.fetchrow("SELECT id, payload FROM deliveries WHERE kind LIKE 'zam:%'")
    assert "$CarebrokerDone" not in mail_pipeline.imap.flags()[0]
    # Read again: nothing new, the mail is marked now.
    assert await reader() == 0
    assert await state() == (1, 1)
    again = await pool.fetchrow("SELECT id, payload FROM deliveries WHERE kind LIKE 'zam:%'")
    assert again == first
    assert "$CarebrokerDone" in mail_pipeline.imap.flags()[0]
    # The one ZAM reaches the creator once.
    ris = mail_pipeline.ris
    await wait_for(lambda: len(ris.processed) == 1, timeout=30)
    assert [z[:3] for z in zams(ris)] == [("Z02", "Y", HODA)]
    assert not ris.resent
