"""A running pipeline for MSSanté tests: MLLP in, SMTP out, IMAP notices, ZAMs to a sink.

The roles of ``carebroker up`` (mllp, relay, router, delivery, console)
against this test's database and topics, with the MSSanté settings pointing
at the session's real SMTP and IMAP servers (``tests/mail.py``) and the
application mailbox's client certificate from the test CA. The senders of
the guide's examples (``SIL-Y``/``labo`` for ORU, ``RIS-Y``/``Organisation-Y``
for MDM) are partners whose MLLP endpoints are sinks that receive the ZAMs;
one partner declares an MSSanté endpoint (the application mailbox of
hospital B), one practice is reached over MLLP by its doctor's RPPS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from adapters.hl7v2.mllp import MllpClient
from broker.settings import Settings
from tests.certs import CertificateAuthority
from tests.integration.routing.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.mail import MAILBOX, PASSWORD, ImapServer, SmtpServer
from tests.sinks import FhirSink, MllpSink, partner_sinks

FAST = "retry: {base_s: 0.05, max_s: 0.3, circuit_failures: 50, circuit_open_s: 0.5}"


def partners_yaml(labo: int, ris: int, cabinet: int, fhir: int) -> str:
    return f"""
partners:
  - id: sil-y
    name: Laboratoire Y (SIL)
    kind: lab
    facilities: [labo]
    endpoint: {{type: mllp, host: 127.0.0.1, port: {labo}, ack_timeout_s: 2, {FAST}}}
    accepts: {{format: hl7v2, version: "2.6"}}
  - id: ris-y
    name: Radiologie Y (RIS)
    kind: hospital
    facilities: [Organisation-Y]
    endpoint: {{type: mllp, host: 127.0.0.1, port: {ris}, ack_timeout_s: 2, {FAST}}}
    accepts: {{format: hl7v2, version: "2.6"}}
  - id: hopital-b-appli
    name: Hôpital B, boîte applicative
    kind: hospital
    endpoint: {{type: mssante, address: appliExemple@hopitalB.mssante.fr, {FAST}}}
  - id: cabinet-martin
    name: Cabinet du Dr Martin
    kind: gp
    practitioners:
      - {{system: "urn:oid:1.2.250.1.71.4.2.1", value: "109999999999", name: Dr Martin}}
    endpoint: {{type: mllp, host: 127.0.0.1, port: {cabinet}, ack_timeout_s: 2, {FAST}}}
    accepts: {{format: hl7v2}}
  - id: fhir-unused
    name: FHIR sink (unused)
    kind: other
    endpoint: {{type: fhir, url: "http://127.0.0.1:{fhir}"}}
    accepts: {{format: fhir}}
"""


@dataclass
class MailPipeline:
    """The running roles, the mail servers, the senders' sinks, and an MLLP client."""

    pipeline: Pipeline
    smtp: SmtpServer
    imap: ImapServer
    labo: MllpSink
    ris: MllpSink
    cabinet: MllpSink
    mllp_port: int

    async def send(self, data: bytes) -> str:
        """Send one message over MLLP; return the ACK text."""
        client = MllpClient("127.0.0.1", self.mllp_port, timeout_s=20)
        try:
            answer = await client.send(data)
        finally:
            await client.close()
        return answer.decode("utf-8", "replace")


@pytest.fixture
async def mail_pipeline(
    request: pytest.FixtureRequest,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    mail_ca: CertificateAuthority,
    smtp_server: SmtpServer,
    imap_server: ImapServer,
) -> AsyncIterator[MailPipeline]:
    # Indirect parameters: {"reader": False} leaves the notices to a test's own reader,
    # {"overdue_s": 1.0} makes a missing delivery notice overdue at once.
    options = getattr(request, "param", {}) or {}
    smtp_server.reset()
    imap_server.clear()
    cert, key = mail_ca.issue(MAILBOX, client=True)
    mssante = settings.mssante.model_copy(
        update={
            "smtp_url": smtp_server.url,
            "imap_url": imap_server.tls_url if options.get("reader", True) else None,
            "mailbox": MAILBOX,
            "cert": cert,
            "key": key,
            "ca": mail_ca.cert_path,
            "password": PASSWORD,
            "notice_poll_s": 0.5,
            "reception_overdue_s": options.get("overdue_s", 3600.0),
        }
    )
    mssante = type(mssante).model_validate(mssante.model_dump())
    mllp = settings.mllp.model_copy(update={"port": 0})
    settings = settings.model_copy(update={"mssante": mssante, "mllp": mllp})
    async with partner_sinks() as (labo, ris, fhir):
        cabinet = MllpSink("cabinet")
        await cabinet.start()
        path = tmp_path / "partners.yaml"
        path.write_text(partners_yaml(labo.port, ris.port, cabinet.port, 1))
        sinks: tuple[MllpSink, MllpSink, FhirSink] = (labo, ris, fhir)
        pipeline = await start_pipeline(
            settings,
            pool,
            sinks,
            path,
            roles=("mllp", "relay", "router", "delivery", "console"),
        )
        mllp = next(s for s in pipeline.services if s.name == "mllp")
        port = mllp.server.port  # type: ignore[attr-defined]
        try:
            yield MailPipeline(pipeline, smtp_server, imap_server, labo, ris, cabinet, port)
        finally:
            await stop_pipeline(pipeline)
            await cabinet.stop()
