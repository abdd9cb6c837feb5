"""CI-SIS document requests through MLLP come out as MSSanté mails (real SMTP server).

Every example of the guide's exemples.md, rebuilt with real CDA documents
(tests/data/cisis), is sent over MLLP: each RCT gets one mail at its address
with the documents, their PDF and a valid IHE_XDM.zip whose METADATA.XML
matches the CDA header, and the headers mapping-mss.md and the MSSanté
client rules require. A document invisible to the patient never reaches a
patient address; a flag combination the rules forbid is refused with the
guide's ERR and kept.
"""

from __future__ import annotations

import email
import hashlib
import uuid
from email import policy
from email.message import EmailMessage

from adapters.mssante.cda import read_cda
from adapters.mssante.xdm import read_package
from tests.cisis import cda, example
from tests.conftest import wait_for
from tests.integration.mssante.conftest import MailPipeline
from tests.mail import MAILBOX, ReceivedMail

HODA = "adam.hoda@test-ci-sis.mssante.fr"
APPLI = "appliExemple@hopitalB.mssante.fr"
RADIO = "radiologie@hopitalA.mssante.fr"
PATIENT = "146026322000196@patient.mssante.fr"
# Example -> (addresses mailed, documents, OBX-11, REPLY given, body start for professionals)
EXPECTED: dict[str, tuple[set[str], list[str], str, bool]] = {
    "oru_ex0": ({HODA, APPLI, PATIENT}, ["cr_bio_n3.xml", "cr_bio_n1.xml"], "F", True),
    "oru_ex1": ({PATIENT}, ["cr_imagerie_n1.xml"], "F", False),
    "oru_ex2": ({RADIO, HODA}, ["cr_imagerie_n1.xml"], "D", False),
    "oru_ex3": ({HODA, PATIENT}, ["cr_imagerie_n1_v2.xml"], "C", False),
    "oru_ex4": ({HODA, APPLI, PATIENT}, ["cr_imagerie_n1_v2.xml"], "C", True),
    "mdm_ex0": ({HODA, APPLI, RADIO, PATIENT}, ["cr_imagerie_n1.xml"], "F", True),
    "mdm_ex1": ({PATIENT}, ["cr_imagerie_n1.xml"], "F", False),
    "mdm_ex2": ({HODA}, ["cr_imagerie_n1.xml"], "D", False),
    "mdm_ex3": ({HODA, PATIENT}, ["cr_imagerie_n1_v2.xml"], "C", False),
    "mdm_ex4": ({HODA, APPLI, PATIENT}, ["cr_imagerie_n1_v2.xml"], "C", True),
}


def parse(mail: ReceivedMail) -> EmailMessage:
    parsed = email.message_from_bytes(mail.content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def attachments(message: EmailMessage) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = payload
    return found


async def mails_of(pipeline: MailPipeline, control_id: str, count: int) -> list[ReceivedMail]:
    """Wait for ``count`` mails of the message ``control_id``; return them."""
    row = await pipeline.pipeline.pool.fetchrow(
        "SELECT id FROM messages WHERE control_id = $1", control_id
    )
    assert row is not None, f"{control_id} was not accepted"
    ids = await wait_for(lambda: _delivered(pipeline, row["id"], count), timeout=30)
    return [
        m for m in pipeline.smtp.mails if any(str(i) in m.content.decode("latin-1") for i in ids)
    ]


async def _delivered(
    pipeline: MailPipeline, message_id: uuid.UUID, count: int
) -> list[uuid.UUID] | None:
    rows = await pipeline.pipeline.pool.fetch(
        "SELECT id, status FROM deliveries WHERE message_id = $1 AND kind = 'message'", message_id
    )
    if len(rows) == count and all(r["status"] == "delivered" for r in rows):
        return [r["id"] for r in rows]
    return None


async def test_every_example_of_the_guide_is_mailed_to_its_recipients(
    mail_pipeline: MailPipeline,
) -> None:
    sent: dict[str, str] = {}
    for name in EXPECTED:
        answer = await mail_pipeline.send(example(name))
        assert "MSA|AA|" in answer, (name, answer)
        sent[name] = answer
    for name, (addresses, documents, status, reply) in EXPECTED.items():
        control_id = name.upper().replace("_", "-")
        mails = await mails_of(mail_pipeline, control_id, len(addresses))
        assert {m.rcpt_tos[0] for m in mails} == addresses, name
        for mail in mails:
            check_mail(name, mail, documents, status, reply)


def check_mail(
    name: str, mail: ReceivedMail, documents: list[str], status: str, reply: bool
) -> None:
    address = mail.rcpt_tos[0]
    patient = address == PATIENT
    message = parse(mail)
    # Envelope: from the application mailbox, over TLS with its certificate, DSN asked for.
    assert mail.mail_from == MAILBOX and mail.client_cn == MAILBOX
    assert "NOTIFY=SUCCESS,FAILURE,DELAY" in mail.rcpt_options
    assert f"ORCPT=RFC822;{address.upper()}" in mail.rcpt_options
    assert "RET=HDRS" in mail.mail_options
    # Headers (mapping-mss.md, MSSanté client rules).
    assert message["From"] == MAILBOX
    assert message["To"] == address
    assert str(message["Message-ID"]).endswith("@carebroker.test>")
    assert message["Disposition-Notification-To"] == MAILBOX  # ACK_LECTURE(_MSS)=Y
    assert (message["Reply-To"] == HODA) is reply
    headers = [read_cda(cda(d)).header for d in documents]
    assert message["X-MSS-CODECDA"] == ",".join(dict.fromkeys(h.code.code for h in headers))
    assert message["X-MSS-INS"] == "O"  # PID-32 VALI with the INS in PID-3
    assert (message["X-MSS-MES"] == "FIN") is (patient and name == "oru_ex1")
    assert str(message["Subject"]) == "XDM/1.0/DDM+" + headers[0].title
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    if name in ("oru_ex1", "mdm_ex1"):
        assert text.startswith("Bonjour M.Dupont")
    elif not patient and name not in ("oru_ex4", "mdm_ex4"):
        assert text.startswith("Cher confrère")
    elif status == "C":
        assert "remplace" in text
    # Attachments: the documents, their PDF, the XDM package.
    files = attachments(message)
    pdf = cda("cr.pdf")
    for index, document in enumerate(documents, 1):
        assert files[f"DOC{index:04d}.XML"] == cda(document)
    assert sum(1 for f, data in files.items() if f.endswith(".pdf") and data == pdf) == len(
        documents
    )
    package = read_package(files["IHE_XDM.zip"])
    assert {"INDEX.HTM", "README.TXT", "IHE_XDM/SUBSET01/METADATA.XML"} <= set(package.files)
    assert len(package.entries) == len(documents)
    for entry, document, header in zip(package.entries, documents, headers, strict=True):
        data = cda(document)
        assert entry.data == data
        assert entry.unique_id == header.id.xds
        assert entry.patient_id == "146026322000196^^^&1.2.250.1.213.1.4.8&ISO"
        assert entry.type_code == header.code.code
        assert entry.title == header.title
        assert entry.hash == hashlib.sha1(data).hexdigest()  # XDS's hash
        assert entry.size == len(data)
        assert entry.slots["creationTime"] == [header.effective_time[:14]]
        assert entry.slots["languageCode"] == ["fr-FR"]
        assert entry.action == (None if status == "F" else status)
        if status == "C":
            assert entry.slots["parentDocumentId"] == ["1.2.250.1.213.1.1.9.1^IMG-0001"]
    assert package.submission["intendedRecipient"].endswith(address)


async def test_a_document_invisible_to_the_patient_never_reaches_the_patient(
    mail_pipeline: MailPipeline,
) -> None:
    # Visible to professionals only: the patient's RCT is listed but left out.
    data = example(
        "mdm_ex0",
        control_id="HIDDEN-1",
        flags={"INVISIBLE_PATIENT": "Y", "DESTMSSANTEPAT": "N"},
    )
    assert "MSA|AA|" in await mail_pipeline.send(data)
    mails = await mails_of(mail_pipeline, "HIDDEN-1", 3)
    assert {m.rcpt_tos[0] for m in mails} == {HODA, APPLI, RADIO}
    # The forbidden combination: refused AE with the guide's error, kept, nothing mailed.
    data = example("mdm_ex0", control_id="HIDDEN-2", flags={"INVISIBLE_PATIENT": "Y"})
    answer = await mail_pipeline.send(data)
    assert "MSA|AE|HIDDEN-2" in answer
    assert "ERR||OBX^9^5|207^" in answer
    row = await mail_pipeline.pipeline.pool.fetchrow(
        "SELECT status, reason FROM messages WHERE control_id = 'HIDDEN-2'"
    )
    assert row is not None and row["status"] == "rejected"
    assert row["reason"].startswith("invalid_document_request: DESTMSSANTEPAT=Y with")
    assert not await mail_pipeline.pipeline.pool.fetchval(
        "SELECT count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE m.control_id = 'HIDDEN-2'"
    )
    assert all(m.rcpt_tos != [PATIENT] for m in mail_pipeline.smtp.mails)
